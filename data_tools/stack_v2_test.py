"""StackV2Reader against S3 emulators on 127.0.0.1: moto's server, and a stub that fails first.

Nothing leaves the machine: each server listens on a free loopback port, started and stopped here.
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import http.server
import json
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto.server import ThreadedMotoServer

from data_tools.stack_v2 import StackV2Error, StackV2Reader, listing_files

# (name, src_encoding, what S3 holds: text to encode and gzip, raw bytes to gzip as they are,
# bytes to store without gzip, or None for no object at all).
BLOBS: list[tuple[str, str, Any]] = [
    ("utf8", "UTF-8", "def naïve():\n    return 'café ☕'\n"),
    ("latin1", "ISO-8859-1", "# François\nname = 'José'\n"),
    ("missing", "UTF-8", None),
    ("utf16", "UTF-16", "x = '中文'  # UTF-16 with its BOM\n"),
    ("corrupt", "UTF-8", ("plain", b"this is not gzip data")),
    ("cp1252", "windows-1252", "s = '\u201cquoted\u201d'\n"),
    ("undecodable", "UTF-8", ("gzip", b"\xff\xfe\xfa not UTF-8")),
    ("unknown_charset", "no-such-charset", ("gzip", b"x = 1\n")),
    ("bom_utf8", "UTF-8", "\ufeffprint('BOM stripped')\n"),
]
GOOD = ("utf8", "latin1", "utf16", "cp1252", "bom_utf8")


def encoded(name: str) -> bytes:
    """The file's bytes in its encoding (what a repository held)."""
    _, encoding, content = next(blob for blob in BLOBS if blob[0] == name)
    if isinstance(content, tuple):
        return content[1]
    return (content or name).encode(encoding)


def blob_id(name: str) -> str:
    """A git blob id (what Software Heritage's sha1_git is) of the file's bytes."""
    data = encoded(name)
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def expected_text(name: str) -> str:
    _, _, content = next(blob for blob in BLOBS if blob[0] == name)
    return content.removeprefix("\ufeff")


def s3_object(name: str) -> bytes | None:
    _, _, content = next(blob for blob in BLOBS if blob[0] == name)
    if content is None:
        return None
    if isinstance(content, tuple) and content[0] == "plain":
        return content[1]
    return gzip.compress(encoded(name), mtime=0)


def row(name: str) -> dict[str, Any]:
    _, encoding, _ = next(blob for blob in BLOBS if blob[0] == name)
    return {
        "blob_id": blob_id(name),
        "src_encoding": encoding,
        "path": f"/src/{name}.py",
        "content_id": "c" + blob_id(name)[1:],
        "repo_name": f"example/{name}",
        "length_bytes": len(encoded(name)),
        "language": "Python",
    }


def write_listing(directory: Path) -> list[str]:
    """Three listing files (sorted: a.parquet, b.jsonl, c.parquet); the names in listing order."""
    directory.mkdir(parents=True, exist_ok=True)
    names = [blob[0] for blob in BLOBS]
    first, second, third = names[:4], names[4:6], names[6:]
    pq.write_table(pa.Table.from_pylist([row(n) for n in first]), directory / "a.parquet")
    with open(directory / "b.jsonl", "w") as out:
        for name in second:
            out.write(json.dumps(row(name)) + "\n")
        out.write("this line is not JSON\n")
        out.write(json.dumps({"path": "/no/blob_id.py", "src_encoding": "UTF-8"}) + "\n")
    pq.write_table(pa.Table.from_pylist([row(n) for n in third]), directory / "c.parquet")
    return first + second + third


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Test credentials only: no real profile, config file or instance metadata is consulted."""
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def start_moto() -> tuple[ThreadedMotoServer, str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


@pytest.fixture(scope="module")
def swh() -> Iterator[str]:
    """A moto S3 on 127.0.0.1 holding the blobs in a bucket named like Software Heritage's.

    moto's state is per process, so a second server started by a test sees the same bucket.
    """
    server, endpoint = start_moto()
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket="softwareheritage")
        for name, _, _ in BLOBS:
            body = s3_object(name)
            if body is not None:
                s3.put_object(Bucket="softwareheritage", Key=f"content/{blob_id(name)}", Body=body)
        yield endpoint
    finally:
        server.stop()


def stats(reader: StackV2Reader) -> collections.Counter[str]:
    return collections.Counter({key: int(value.total) for key, value in reader.stats.stats.items()})


def read_all(reader: StackV2Reader, rank: int = 0, world_size: int = 1) -> list:
    return list(reader.run(rank=rank, world_size=world_size))


def test_reads_contents_in_listing_order_and_counts_every_skip(swh: str, tmp_path: Path) -> None:
    order = write_listing(tmp_path / "listing")
    reader = StackV2Reader(
        tmp_path / "listing", tmp_path / "cache", endpoint_url=swh, max_workers=4
    )
    documents = read_all(reader)

    good = [name for name in order if name in GOOD]
    assert [doc.id for doc in documents] == [blob_id(name) for name in good]
    assert [doc.text for doc in documents] == [expected_text(name) for name in good]
    by_name = dict(zip(good, documents, strict=True))
    assert by_name["utf16"].text == "x = '中文'  # UTF-16 with its BOM\n"
    assert by_name["latin1"].metadata == {
        "path": "/src/latin1.py",
        "encoding": "ISO-8859-1",
        "content_id": row("latin1")["content_id"],
        "repo_name": "example/latin1",
        "length_bytes": len(encoded("latin1")),
        "language": "Python",
    }
    counts = stats(reader)
    assert counts["input_files"] == 3
    assert counts["rows"] == len(BLOBS) + 2
    assert counts["documents"] == len(GOOD)
    assert counts["missing_blob"] == 1
    assert counts["corrupt_blob"] == 1
    assert counts["undecodable"] == 2  # invalid UTF-8, and an unknown charset name
    assert counts["bad_row"] == 2  # a line that is not JSON, a row without a blob_id
    assert counts["fetched"] == len(BLOBS) - 1  # every object S3 has (the corrupt one too)
    assert counts["cache_hits"] == 0
    cached = sorted(path.name for path in (tmp_path / "cache").rglob("*") if path.is_file())
    valid_gzip = [name for name in order if name not in ("missing", "corrupt")]
    assert cached == sorted(blob_id(name) for name in valid_gzip)
    cache_file = tmp_path / "cache" / blob_id("utf8")[:2] / blob_id("utf8")
    assert cache_file.read_bytes() == s3_object("utf8")  # stored as S3 served it


def test_a_rerun_reads_the_cache_when_s3_is_gone(swh: str, tmp_path: Path) -> None:
    write_listing(tmp_path / "listing")
    server, endpoint = start_moto()  # Its own server (same moto state), stopped below.
    try:
        first = StackV2Reader(tmp_path / "listing", tmp_path / "cache", endpoint_url=endpoint)
        documents = [(doc.id, doc.text) for doc in read_all(first)]
    finally:
        server.stop()
    assert len(documents) == len(GOOD)

    rerun = StackV2Reader(
        tmp_path / "listing",
        tmp_path / "cache",
        endpoint_url=endpoint,  # Nothing listens there now.
        botocore_max_attempts=1,
        retries=0,
    )
    assert [(doc.id, doc.text) for doc in read_all(rerun)] == documents
    counts = stats(rerun)
    assert counts["cache_hits"] == len(BLOBS) - 2
    assert counts["fetched"] == 0
    # The two blobs that were never cached cannot be fetched now: counted, not fatal.
    assert counts["fetch_failed"] == 2


def test_files_are_sharded_over_ranks_like_datatrove(swh: str, tmp_path: Path) -> None:
    order = write_listing(tmp_path / "listing")
    files = [path.name for path in listing_files(tmp_path / "listing")]
    assert files == ["a.parquet", "b.jsonl", "c.parquet"]
    per_rank = []
    for rank in range(2):
        reader = StackV2Reader(tmp_path / "listing", tmp_path / "cache", endpoint_url=swh)
        per_rank.append([doc.id for doc in read_all(reader, rank=rank, world_size=2)])
        assert stats(reader)["input_files"] == (2 if rank == 0 else 1)
    first, second, third = order[:4], order[4:6], order[6:]
    ids = {name: blob_id(name) for name in GOOD}
    assert per_rank[0] == [ids[n] for n in first + third if n in ids]
    assert per_rank[1] == [ids[n] for n in second if n in ids]


def test_order_holds_when_fetches_finish_out_of_order(swh: str, tmp_path: Path) -> None:
    """The first row's fetch waits until the last row's has finished: output is still in order."""
    order = write_listing(tmp_path / "listing")
    first_id, last_id = blob_id(order[0]), blob_id(order[-1])
    last_done = threading.Event()
    finished: list[str] = []

    class Reversed(StackV2Reader):
        def _fetch(self, client, blob, encoding):
            if blob == first_id:
                assert last_done.wait(timeout=60)
            result = super()._fetch(client, blob, encoding)
            finished.append(blob)
            if blob == last_id:
                last_done.set()
            return result

    reader = Reversed(tmp_path / "listing", None, endpoint_url=swh, max_workers=len(BLOBS))
    documents = read_all(reader)
    assert finished.index(last_id) < finished.index(first_id)
    assert [doc.id for doc in documents] == [blob_id(n) for n in order if n in GOOD]


def test_in_flight_fetches_are_bounded(swh: str, tmp_path: Path) -> None:
    write_listing(tmp_path / "listing")
    lock = threading.Lock()
    running = [0]
    peak = [0]

    class Counting(StackV2Reader):
        def _fetch(self, client, blob, encoding):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            try:
                return super()._fetch(client, blob, encoding)
            finally:
                with lock:
                    running[0] -= 1

    reader = Counting(tmp_path / "listing", None, endpoint_url=swh, max_workers=8, max_in_flight=2)
    assert len(read_all(reader)) == len(GOOD)
    assert 1 <= peak[0] <= 2


def test_limit_and_pickling(swh: str, tmp_path: Path) -> None:
    write_listing(tmp_path / "listing")
    reader = StackV2Reader(tmp_path / "listing", endpoint_url=swh, limit=2)
    restored = pickle.loads(pickle.dumps(reader))  # What a datatrove executor ships to workers.
    assert [doc.text for doc in read_all(restored)] == [expected_text(n) for n in GOOD[:2]]


def test_anonymous_requests_read_public_objects_and_count_denials(swh: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=swh, region_name="us-east-1")
    s3.create_bucket(Bucket="swh-anonymous")
    for name, acl in (("utf8", "public-read"), ("utf16", "private"), ("latin1", "public-read")):
        key = f"content/{blob_id(name)}"
        s3.put_object(Bucket="swh-anonymous", Key=key, Body=s3_object(name), ACL=acl)
    listing = tmp_path / "listing.jsonl"
    listing.write_text("".join(json.dumps(row(n)) + "\n" for n in ("utf8", "utf16", "latin1")))
    reader = StackV2Reader(listing, bucket="swh-anonymous", endpoint_url=swh, anonymous=True)
    assert [doc.text for doc in read_all(reader)] == [expected_text(n) for n in ("utf8", "latin1")]
    assert stats(reader)["access_denied"] == 1


def test_missing_credentials_are_one_clear_error(
    swh: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_listing(tmp_path / "listing")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    reader = StackV2Reader(tmp_path / "listing", endpoint_url=swh)
    with pytest.raises(StackV2Error, match="no usable AWS credentials"):
        read_all(reader)


def test_a_bad_listing_path_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StackV2Error, match="no such listing"):
        StackV2Reader(tmp_path / "absent")
    (tmp_path / "rows.csv").write_text("blob_id\n")
    with pytest.raises(StackV2Error, match="not a listing file"):
        StackV2Reader(tmp_path / "rows.csv")


class Flaky:
    """An S3 stand-in on 127.0.0.1 answering 500 (InternalError) to the first `failures` GETs
    of each key, then 200 with the object; it counts the requests per key."""

    ERROR = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
        b"<Message>We encountered an internal error. Please try again.</Message></Error>"
    )

    def __init__(self, objects: dict[str, bytes], failures: int) -> None:
        self.objects = objects
        self.failures = failures
        self.requests: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        flaky = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                key = self.path.split("?")[0]
                with flaky.lock:
                    flaky.requests[key] += 1
                    attempt = flaky.requests[key]
                if attempt <= flaky.failures:
                    self.reply(500, flaky.ERROR, "application/xml")
                else:
                    self.reply(200, flaky.objects[key], "application/octet-stream")

            def reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Flaky:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"


def flaky_listing(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    listing = tmp_path / "listing.jsonl"
    listing.write_text(json.dumps(row("utf8")) + "\n")
    return listing, {f"/softwareheritage/content/{blob_id('utf8')}": s3_object("utf8")}


@pytest.mark.parametrize(
    ("botocore_attempts", "retries", "failures", "requests", "our_retries"),
    [
        (3, 0, 1, 2, 0),  # botocore's own retry absorbs one 500
        (1, 2, 2, 3, 2),  # botocore does not retry: ours do, twice
        (2, 1, 3, 4, 1),  # both layers: 2 attempts x 2 tries
    ],
)
def test_transient_errors_are_retried(
    tmp_path: Path,
    botocore_attempts: int,
    retries: int,
    failures: int,
    requests: int,
    our_retries: int,
) -> None:
    listing, objects = flaky_listing(tmp_path)
    with Flaky(objects, failures) as s3:
        reader = StackV2Reader(
            listing,
            tmp_path / "cache",
            endpoint_url=s3.endpoint,
            botocore_max_attempts=botocore_attempts,
            retries=retries,
            retry_backoff_s=0,
        )
        documents = read_all(reader)
    assert [doc.text for doc in documents] == [expected_text("utf8")]
    assert sum(s3.requests.values()) == requests
    assert stats(reader)["retries"] == our_retries


def test_retries_are_bounded_then_the_blob_is_skipped(tmp_path: Path) -> None:
    listing, objects = flaky_listing(tmp_path)
    with Flaky(objects, failures=1000) as s3:
        reader = StackV2Reader(
            listing,
            tmp_path / "cache",
            endpoint_url=s3.endpoint,
            botocore_max_attempts=1,
            retries=2,
            retry_backoff_s=0,
        )
        assert read_all(reader) == []
    assert sum(s3.requests.values()) == 3
    counts = stats(reader)
    assert counts["fetch_failed"] == 1
    assert counts["retries"] == 2
    assert not [path for path in (tmp_path / "cache").rglob("*") if path.is_file()]


def test_prepare_reads_the_stack_v2_through_the_whole_pipeline(swh: str, tmp_path: Path) -> None:
    """`stack-v2:LISTING` as a prepare source: blobs fetched from the S3 emulator, every skip
    counted in the manifest, the decoded texts packed."""
    from core.config import ALL_TOKENS, DataConfig, ModelConfig, RunConfig, TrainConfig
    from core.data import TokenStream
    from core.fim import restore_document
    from core.tokenizer import load_tokenizer
    from data_tools.filters import generic_language
    from data_tools.prepare import prepare

    write_listing(tmp_path / "listing")
    data = DataConfig(
        max_tokens=ALL_TOKENS, min_chars=1, min_code_lines=0, validation_fraction=0.01,
        decontaminate=False, progress=False, workers=2, tasks=2, dedup_eval_sample=10,
        s3_endpoint_url=swh, stack_v2_cache_dir=str(tmp_path / "cache"),
        tokenizer_cache_dir=str(tmp_path / "tokenizers"),
    )  # fmt: skip
    run = RunConfig(ModelConfig(vocab_size=300, max_seq_len=32), TrainConfig(seq_len=32), data)
    language = generic_language("stack", (".py",))
    manifest = prepare(language, run, tmp_path / "out", [f"stack-v2:{tmp_path / 'listing'}"])
    assert manifest["files_kept"] == len(GOOD) and manifest["files_packed"] == len(GOOD)
    dropped = manifest["dropped"]
    assert dropped["missing_blob"] == 1 and dropped["corrupt_blob"] == 1
    assert dropped["undecodable"] == 2 and dropped["bad_row"] == 2
    assert manifest["files_in"] == len(GOOD) + sum(dropped.values())
    tokenizer = load_tokenizer(manifest["tokenizer"]["path"])
    texts = []
    for split, info in manifest["splits"].items():
        tokens = TokenStream(tmp_path / "out", split).read(0, info["tokens"]).tolist()
        sequences = tokenizer.decode(tokens, skip_special_tokens=False).split("<|endoftext|>")
        texts += [restore_document(sequence) for sequence in sequences[:-1]]  # FIM undone
    assert sorted(texts) == sorted(expected_text(name) for name in GOOD)
