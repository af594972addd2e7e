"""The Stack v2 for real: a datatrove reader that fetches file contents from Software Heritage.

The Stack v2 (`bigcode/the-stack-v2`, `-dedup`, `-train-*-ids` on the Hugging Face Hub) lists
files, not their contents: each parquet row has a `blob_id` (the Software Heritage id of the
file), `src_encoding` (the charset the file was detected in), `path`, `content_id`, the repo,
licence and date columns, `language`, `length_bytes`, and so on. The dataset card says the
contents live in Software Heritage's S3 bucket, `s3://softwareheritage/content/{blob_id}`, each
object gzip-compressed, and downloads them with boto3 under the user's own AWS credentials
(`boto3.Session(aws_access_key_id=..., aws_secret_access_key=...)`, then gunzip and
`.decode(src_encoding)`); community code also reads the bucket with unsigned (anonymous)
requests. The card's terms: downloading in bulk needs an agreement with Software Heritage and
INRIA (datasets@softwareheritage.org), training must follow Software Heritage's principles for
language-model training, and every file keeps its own licence (the rows carry its provenance).

`StackV2Reader` turns such a listing into Documents (`id` = `blob_id`, `text` = the decoded
file, `metadata` = the row's other columns, with `src_encoding` as `encoding`), in listing
order, fetching blobs on a thread pool with a bounded number in flight, retrying transient
errors, and keeping every fetched blob in a local cache so a rerun reads the disk, not S3.

Running it on the real bucket (the requests, transfer and any egress are billed to you, the
user; nothing here has network, so this path is exercised only against an emulator):

```python
from datatrove.executor import LocalPipelineExecutor
from data_tools.stack_v2 import StackV2Reader

# 1. Download a listing, e.g. `huggingface-cli download bigcode/the-stack-v2-dedup
#    --repo-type dataset --include "data/Python/*" --local-dir stack-v2` (accept the terms first).
# 2. AWS credentials the usual boto3 way: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or
#    ~/.aws/credentials with `profile_name=...`, or an instance role. `anonymous=True` sends
#    unsigned requests instead; `request_payer="requester"` if the bucket asks for it.
reader = StackV2Reader("stack-v2/data/Python", cache_dir="/scratch/swh-cache", max_workers=64)
LocalPipelineExecutor(pipeline=[reader, ...], tasks=16, workers=16).run()
```

Each task reads the listing files `i` with `i % world_size == rank` (datatrove's sharding),
rows in file order. The tests run the same code against moto's S3 server on 127.0.0.1
(`endpoint_url=...`) and a stub endpoint that answers 500 before it answers 200.

Fetching: botocore's own retries (`botocore_max_attempts`, "standard" mode: 5xx, throttling,
connection errors) and around them `retries` more attempts of our own with exponential
backoff (`retry_backoff_s * 2**attempt`) for the same transient errors, both bounded. A blob
that never arrives is skipped and counted, never fatal; missing AWS credentials are fatal (one
line saying how to give them).

Cache: `cache_dir/<blob_id[:2]>/<blob_id>` holds the object exactly as S3 served it (gzip),
written once through a temporary file and an atomic rename, only after it gunzips; a cached
file that no longer gunzips is fetched again.

Stats (datatrove's, per step): `input_files`, `rows`, `documents` (yielded), `fetched` (from
S3), `cache_hits`, `retries` (our own retry attempts), and one per skipped row, by reason:
`missing_blob` (404 / NoSuchKey), `access_denied` (403; S3 also answers 403 for a missing key
to a requester who may not list the bucket), `fetch_failed` (transient errors past every retry,
or another S3 error), `corrupt_blob` (does not gunzip), `undecodable` (not valid in its
`src_encoding`, or an unknown encoding name), `empty` (no text) and `bad_row` (no usable
`blob_id`, or a listing line that is not JSON).
"""

from __future__ import annotations

import codecs
import collections
import concurrent.futures
import dataclasses
import gzip
import json
import os
import re
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.readers.base import BaseReader
from datatrove.utils.logging import logger

SWH_BUCKET = "softwareheritage"
SWH_KEY_PREFIX = "content/"
LISTING_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".json")
SKIP_REASONS = (
    "missing_blob",
    "access_denied",
    "fetch_failed",
    "corrupt_blob",
    "undecodable",
    "empty",
    "bad_row",
)
_END = object()
_BLOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
_TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
    }
)


class StackV2Error(ValueError):
    """The listing cannot be read, or S3 cannot be reached at all (the message says why)."""


def listing_files(listing: str | Path | Sequence[str | Path]) -> list[Path]:
    """The listing's files in a stable order: each given file, and each directory's
    `.parquet`/`.jsonl`/`.jsonl.gz`/`.json` files (recursively, sorted by path)."""
    entries = [listing] if isinstance(listing, str | Path) else list(listing)
    files: list[Path] = []
    for entry in map(Path, entries):
        if entry.is_dir():
            files += sorted(
                path
                for path in entry.rglob("*")
                if path.is_file() and path.name.endswith(LISTING_SUFFIXES)
            )
        elif entry.is_file():
            if not entry.name.endswith(LISTING_SUFFIXES):
                raise StackV2Error(f"{entry}: not a listing file ({', '.join(LISTING_SUFFIXES)})")
            files.append(entry)
        else:
            raise StackV2Error(f"{entry}: no such listing file or directory")
    return files


@dataclasses.dataclass
class _Fetched:
    """What a worker thread found for one row: text or the reason there is none."""

    text: str | None = None
    reason: str | None = None
    cache_hit: bool = False
    fetched: bool = False
    retries: int = 0


class StackV2Reader(BaseReader):
    """Reads a Stack v2 listing and yields its files' contents from Software Heritage's S3.

    Args:
        listing: a listing file (.parquet, .jsonl, .jsonl.gz), a directory of them, or a list.
        cache_dir: where fetched blobs are kept (None: no cache).
        bucket, key_prefix: where the blobs are (`softwareheritage`, `content/`).
        endpoint_url: an S3-compatible endpoint instead of AWS (path-style addressing).
        region_name, profile_name: the boto3 session's region and credentials profile.
        anonymous: unsigned requests instead of the user's credentials.
        request_payer: e.g. "requester" for a requester-pays bucket (None: not sent).
        max_workers: fetching threads; max_in_flight: rows fetched ahead (default 4 per thread).
        botocore_max_attempts: botocore's attempts per request ("standard" retry mode).
        retries, retry_backoff_s: our own retries of transient errors after botocore's.
        connect_timeout_s, read_timeout_s: per request.
        blob_id_key, encoding_key: the listing's column names.
        batch_size: parquet rows read at a time.
        limit: at most this many documents per task (-1: all).
        default_metadata: added to every document's metadata.
    """

    name = "🗄️ The Stack v2 (Software Heritage S3)"
    _requires_dependencies = ("boto3", "pyarrow")

    def __init__(
        self,
        listing: str | Path | Sequence[str | Path],
        cache_dir: str | Path | None = None,
        *,
        bucket: str = SWH_BUCKET,
        key_prefix: str = SWH_KEY_PREFIX,
        endpoint_url: str | None = None,
        region_name: str = "us-east-1",
        profile_name: str | None = None,
        anonymous: bool = False,
        request_payer: str | None = None,
        max_workers: int = 16,
        max_in_flight: int | None = None,
        botocore_max_attempts: int = 5,
        retries: int = 3,
        retry_backoff_s: float = 1.0,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
        blob_id_key: str = "blob_id",
        encoding_key: str = "src_encoding",
        batch_size: int = 1000,
        limit: int = -1,
        default_metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(limit=limit, default_metadata=default_metadata)
        if max_workers < 1 or botocore_max_attempts < 1 or retries < 0:
            raise StackV2Error(
                "max_workers and botocore_max_attempts must be at least 1, retries at least 0"
            )
        self.listing = [str(path) for path in listing_files(listing)]
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.bucket = bucket
        self.key_prefix = key_prefix
        self.endpoint_url = endpoint_url
        self.region_name = region_name
        self.profile_name = profile_name
        self.anonymous = anonymous
        self.request_payer = request_payer
        self.max_workers = max_workers
        self.max_in_flight = max(max_in_flight or 4 * max_workers, 1)
        self.botocore_max_attempts = botocore_max_attempts
        self.retries = retries
        self.retry_backoff_s = retry_backoff_s
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.blob_id_key = blob_id_key
        self.encoding_key = encoding_key
        self.batch_size = batch_size

    # -- the listing -----------------------------------------------------------------------

    def _rows(self, path: Path) -> Iterator[dict[str, Any] | None]:
        """The file's rows in order; None for a line that is not a JSON object."""
        if path.name.endswith(".parquet"):
            import pyarrow.parquet as pq

            with pq.ParquetFile(path) as parquet:
                for batch in parquet.iter_batches(batch_size=self.batch_size):
                    yield from batch.to_pylist()
            return
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    row = None
                yield row if isinstance(row, dict) else None

    # -- S3 ----------------------------------------------------------------------------------

    def _client(self) -> Any:
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config

        options: dict[str, Any] = {
            "retries": {"total_max_attempts": self.botocore_max_attempts, "mode": "standard"},
            "max_pool_connections": self.max_workers,
            "connect_timeout": self.connect_timeout_s,
            "read_timeout": self.read_timeout_s,
        }
        if self.endpoint_url:
            options["s3"] = {"addressing_style": "path"}
        if self.anonymous:
            options["signature_version"] = UNSIGNED
        session = boto3.session.Session(
            profile_name=self.profile_name, region_name=self.region_name
        )
        return session.client("s3", endpoint_url=self.endpoint_url, config=Config(**options))

    @staticmethod
    def _classify(error: Exception) -> str:
        """ "missing_blob", "access_denied", "transient" or "fetch_failed" for an S3 error."""
        from botocore.exceptions import ClientError, HTTPClientError, IncompleteReadError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        if isinstance(error, ClientError):
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if code in ("NoSuchKey", "NotFound", "404") or status == 404:
                return "missing_blob"
            if code in ("AccessDenied", "403") or status == 403:
                return "access_denied"
            if code in _TRANSIENT_CODES or status >= 500:
                return "transient"
            return "fetch_failed"
        transient = BotoConnectionError | HTTPClientError | IncompleteReadError | OSError
        return "transient" if isinstance(error, transient) else "fetch_failed"

    def _download(self, client: Any, blob_id: str) -> tuple[bytes | None, str | None, int]:
        """The object's bytes, or None and the reason; and how many retries it took."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            CredentialRetrievalError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        request: dict[str, str] = {"Bucket": self.bucket, "Key": self.key_prefix + blob_id}
        if self.request_payer:
            request["RequestPayer"] = self.request_payer
        attempt = 0
        while True:
            try:
                response = client.get_object(**request)
                with response["Body"] as body:
                    return body.read(), None, attempt
            except (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError) as error:
                raise StackV2Error(
                    f"no usable AWS credentials ({error}): set AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, or pass profile_name=..., or anonymous=True"
                ) from None
            except (ClientError, BotoCoreError, OSError) as error:
                kind = self._classify(error)
                if kind != "transient":
                    return None, kind, attempt
                if attempt >= self.retries:
                    logger.warning(f"{self.bucket}/{request['Key']}: giving up: {error}")
                    return None, "fetch_failed", attempt
                time.sleep(self.retry_backoff_s * 2**attempt)
                attempt += 1

    # -- the cache -------------------------------------------------------------------------

    def _cache_path(self, blob_id: str) -> Path | None:
        return self.cache_dir / blob_id[:2] / blob_id if self.cache_dir is not None else None

    @staticmethod
    def _store(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    # -- one row -----------------------------------------------------------------------------

    @staticmethod
    def _gunzip(data: bytes) -> bytes | None:
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return None

    @staticmethod
    def _decode(raw: bytes, encoding: str) -> str | None:
        try:
            text = raw.decode(codecs.lookup(encoding).name)
        except (LookupError, UnicodeDecodeError):
            return None
        return text.removeprefix("\ufeff")

    def _fetch(self, client: Any, blob_id: str, encoding: str) -> _Fetched:
        """Runs on a worker thread: the cached or downloaded blob, gunzipped and decoded."""
        result = _Fetched()
        cache = self._cache_path(blob_id)
        raw = None
        if cache is not None and cache.is_file():
            raw = self._gunzip(cache.read_bytes())
            result.cache_hit = raw is not None
        if raw is None:
            data, reason, result.retries = self._download(client, blob_id)
            if data is None:
                result.reason = reason
                return result
            result.fetched = True
            raw = self._gunzip(data)
            if raw is None:
                result.reason = "corrupt_blob"
                return result
            if cache is not None:
                self._store(cache, data)
        text = self._decode(raw, encoding)
        if text is None:
            result.reason = "undecodable"
        elif not text:
            result.reason = "empty"
        else:
            result.text = text
        return result

    def _document(self, row: dict[str, Any], blob_id: str, encoding: str, text: str) -> Document:
        metadata = {
            key: value
            for key, value in row.items()
            if key not in (self.blob_id_key, self.encoding_key)
        }
        metadata["encoding"] = encoding
        if self.default_metadata:
            metadata = self.default_metadata | metadata
        return Document(text=text, id=blob_id, metadata=metadata)

    # -- the step ----------------------------------------------------------------------------

    def _requests(self, files: list[Path]) -> Iterator[tuple[dict[str, Any], str, str] | None]:
        """(row, blob_id, encoding) for every usable row of the files, None for a bad one."""
        for path in files:
            self.stat_update("input_files")
            logger.info(f"Reading Stack v2 listing {path}")
            for row in self._rows(path):
                self.stat_update("rows")
                blob_id = row.get(self.blob_id_key) if row is not None else None
                if not isinstance(blob_id, str) or not _BLOB_ID.fullmatch(blob_id):
                    yield None
                    continue
                encoding = row.get(self.encoding_key) or "utf-8"  # type: ignore[union-attr]
                yield row, blob_id, str(encoding)  # type: ignore[misc]

    def _finish(
        self, row: dict[str, Any], blob_id: str, encoding: str, result: _Fetched
    ) -> Document | None:
        self.stat_update("retries", value=result.retries)
        if result.cache_hit:
            self.stat_update("cache_hits")
        if result.fetched:
            self.stat_update("fetched")
        if result.text is None:
            self.stat_update(result.reason or "fetch_failed")
            return None
        document = self._document(row, blob_id, encoding, result.text)
        self.stat_update("documents")
        self.update_doc_stats(document)
        return document

    def run(
        self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1
    ) -> DocumentsPipeline:
        if data:
            yield from data
        files = [Path(path) for path in self.listing[rank::world_size]]
        if not files:
            logger.warning(f"No Stack v2 listing files for {rank=} of {world_size}")
            return
        self._log_limit_scope(rank, world_size)
        client = self._client()
        pending: collections.deque[Any] = collections.deque()
        produced = 0
        pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.max_workers, thread_name_prefix="stack-v2"
        )
        try:
            requests = self._requests(files)
            exhausted = False
            while not exhausted or pending:
                while not exhausted and len(pending) < self.max_in_flight:
                    request = next(requests, _END)
                    if request is _END:
                        exhausted = True
                    elif request is None:
                        self.stat_update("bad_row")
                    else:
                        pending.append((request, pool.submit(self._fetch, client, *request[1:])))
                if not pending:
                    continue
                request, future = pending.popleft()
                with self.track_time():
                    document = self._finish(*request, future.result())
                if document is not None:
                    yield document
                    produced += 1
                    if self.limit != -1 and produced >= self.limit:
                        return
        finally:
            for _, future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
