"""Benchmark the data pipeline on local trees: files/s per stage, peak RSS per stage (all of the
prepare's processes), RSS as the input grows, and a plain datasketch loop on the same files.

Usage: python -m data_tools.bench --source DIR [DIR ...] [--scales 0.25 1] --json PATH
       [DataConfig flags, e.g. --workers 2 --max-tokens -1]
Each scale runs the whole prepare on that fraction of the listed bytes (a fresh output
directory each time, tokenizer cache included), so "0.25 1" measures memory at 4x the input.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from core.cli import add_dataclass_args, dataclass_from_args, run_main, write_json
from core.config import PRESETS, DataConfig, RunConfig
from data_tools.filters import generic_language
from data_tools.prepare import prepare
from data_tools.readers import write_listing
from data_tools.sources import plan_sources, read_text, walk_tree

_SAMPLE_EVERY_S = 0.05
_DATASKETCH_FILES = 2000


def _tree_rss_bytes(root: int) -> int:
    """Resident memory of `root` and all its descendants, summed."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


class RssSampler:
    """Samples the summed RSS of process `root`'s tree in a thread: (time, bytes) pairs."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(_SAMPLE_EVERY_S):
            self.samples.append((time.time(), _tree_rss_bytes(self.root)))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, start: float = 0.0, end: float = float("inf")) -> int:
        """The largest sample in [start, end]; for a window shorter than the sampling interval,
        the first sample after `start`."""
        inside = [rss for when, rss in self.samples if start <= when <= end]
        if not inside:
            inside = [rss for when, rss in self.samples if when >= start][:1]
        return max(inside, default=0)


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(p.stat().st_size for p in files) / 2**20, 2)


def _listed_bytes(out: Path) -> int:
    with open(out / "work" / "listing.jsonl") as handle:
        return sum(json.loads(line)[1] for line in handle)


def disk_use(out: Path) -> dict[str, float]:
    """MB on disk of each stage's files under a prepared-data directory."""
    (work,) = (path for path in (out / "work").iterdir() if path.is_dir())
    return {
        "listing": _size_mb(out / "work" / "listing.jsonl") + _size_mb(work / "listing"),
        "exact_dedup": _size_mb(work / "exact"),
        "sorted_runs": _size_mb(work / "near" / "runs"),
        "minhash_signatures": _size_mb(work / "near" / "signatures"),
        "lsh_band_files": _size_mb(work / "near" / "buckets"),
        "duplicate_pairs": _size_mb(work / "near" / "dups") + _size_mb(work / "near" / "removed"),
        "logs": _size_mb(work / "logs"),
        "token_shards": round(sum(_size_mb(p) for p in out.glob("*.npy")), 2),
    }


def _rate(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def _prepare_in_child(
    sources: list[str], extensions: tuple[str, ...], run: RunConfig, out: Path, results: Any
) -> None:
    results.put(prepare(generic_language("bench", extensions), run, out, sources))


def run_scale(
    sources: list[str], extensions: tuple[str, ...], run: RunConfig, scratch: Path
) -> dict[str, Any]:
    """One whole prepare in a fresh process; its files/s, tokens/s and peak RSS (that process
    and its workers), overall and per stage."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(
        target=_prepare_in_child, args=(sources, extensions, run, scratch / "out", results)
    )
    start = time.time()
    child.start()
    with RssSampler(child.pid) as sampler:
        manifest = results.get()
        child.join()
    seconds = time.time() - start
    if child.exitcode:
        raise RuntimeError(f"the prepare at scale max_bytes={run.data.max_bytes} failed")
    corpus_stages = [row for row in manifest["execution"]["stages"]
                     if not row["stage"].startswith("pack")]  # fmt: skip
    corpus_seconds = sum(row["seconds"] for row in corpus_stages)
    pack = next(row for row in manifest["execution"]["stages"] if row["stage"].startswith("pack"))
    tokens = sum(split["tokens"] for split in manifest["splits"].values())
    return {
        "max_bytes": run.data.max_bytes,
        "files": manifest["files_in"],
        "files_kept": manifest["files_kept"],
        "dropped": manifest["dropped"],
        "seconds": round(seconds, 2),
        "filter_dedup_files_per_s": _rate(manifest["files_in"], corpus_seconds),
        "pack_tokens_per_s": _rate(tokens, pack["seconds"]),
        "tokens": tokens,
        "peak_rss_mb": round(sampler.peak() / 2**20, 1),
        "stages": [
            {
                "stage": row["stage"],
                "seconds": round(row["seconds"], 2),
                "peak_rss_mb": round(
                    sampler.peak(row["start"], row["start"] + row["seconds"]) / 2**20, 1
                ),
            }
            for row in manifest["execution"]["stages"]
        ],
        "input_mb": round(_listed_bytes(scratch / "out") / 2**20, 1),
        "disk_mb": disk_use(scratch / "out"),
        "lsh_quality": manifest["dedup"]["lsh_quality"],
    }


def datasketch_loop(sources: list[str], extensions: tuple[str, ...], config: DataConfig) -> dict:
    """The plain baseline: read, identifier 5-gram shingles, datasketch MinHash, LSH query and
    insert, one process, on the first files of the listing."""
    from datasketch import MinHash, MinHashLSH

    files = [
        entry
        for source in sources
        for entry in walk_tree(Path(source), extensions)
        if entry.reason is None
    ][:_DATASKETCH_FILES]
    lsh = MinHashLSH(threshold=config.jaccard_threshold, num_perm=config.num_perm)
    start = time.perf_counter()
    for index, entry in enumerate(files):
        text, _ = read_text(entry, config.max_chars)
        tokens = re.findall(r"[A-Za-z_0-9]+", text or "")
        minhash = MinHash(num_perm=config.num_perm)
        for i in range(max(len(tokens) - config.shingle_size + 1, 1)):
            minhash.update(" ".join(tokens[i : i + config.shingle_size]).encode())
        if not lsh.query(minhash):
            lsh.insert(str(index), minhash)
    seconds = time.perf_counter() - start
    return {"files": len(files), "seconds": round(seconds, 2),
            "files_per_s": _rate(len(files), seconds)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", nargs="+", required=True, help="directories to read")
    parser.add_argument("--extensions", nargs="+", default=[".py"], help="file extensions")
    parser.add_argument(
        "--scales", nargs="+", type=float, default=[1.0],
        help="fractions of the listed bytes to prepare, each a whole run (default: 1)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the results here")
    add_dataclass_args(parser, DataConfig)
    args = parser.parse_args(argv)
    return run_main(lambda: _bench(args))


def _bench(args: argparse.Namespace) -> int:
    config = dataclasses.replace(dataclass_from_args(DataConfig, args), progress=False)
    extensions = tuple(args.extensions)
    with tempfile.TemporaryDirectory() as scratch:
        plans = plan_sources(args.source, config.dataset_config, config.dataset_split)
        listed = write_listing(plans, extensions, config, Path(scratch) / "listing.jsonl")
        scales = []
        for scale in args.scales:
            budget = int(listed["bytes"] * scale)
            run = dataclasses.replace(
                PRESETS["test"], data=dataclasses.replace(
                    config, max_bytes=budget, tokenizer_cache_dir=f"{scratch}/tokenizers-{scale}"
                ),
            )  # fmt: skip
            result = run_scale(args.source, extensions, run, Path(scratch) / f"scale-{scale}")
            scales.append({"scale": scale, **result})
            print(
                f"scale {scale:<5} {result['files']:>7} files  {result['seconds']:>7.1f} s  "
                f"filters+dedup {result['filter_dedup_files_per_s']:>8.1f} files/s  "
                f"pack {result['pack_tokens_per_s']:>10.0f} tokens/s  "
                f"peak RSS {result['peak_rss_mb']:>7.1f} MB"
            )
            for row in result["stages"]:
                print(
                    f"  {row['stage']:<22} {row['seconds']:>8.2f} s {row['peak_rss_mb']:>8.1f} MB"
                )
    baseline = datasketch_loop(args.source, extensions, config)
    pipeline_rate = scales[-1]["filter_dedup_files_per_s"]
    workers = config.workers or len(os.sched_getaffinity(0))
    result = {
        "sources": args.source,
        "workers": workers,
        "scales": scales,
        "datasketch_loop": baseline,
        # per core: the pipeline's files/s over its workers against the one-process loop
        "speedup_per_core_vs_datasketch": round(
            pipeline_rate / workers / baseline["files_per_s"], 2
        ),
    }
    if len(scales) > 1:
        result["rss_growth"] = round(scales[-1]["peak_rss_mb"] / scales[0]["peak_rss_mb"] - 1, 3)
        print(f"peak RSS growth from scale {scales[0]['scale']} to {scales[-1]['scale']}: "
              f"{result['rss_growth']:+.1%}")  # fmt: skip
    print(
        f"datasketch loop: {baseline['files_per_s']:.1f} files/s on one process; pipeline "
        f"{result['speedup_per_core_vs_datasketch']:.1f}x per core"
    )
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
