"""Benchmark the language-agnostic corpus stage (list, filters, exact + near dedup) on a tree.

Usage: python -m data_tools.bench --source DIR [DIR ...] --json PATH [config flags]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from core.cli import add_dataclass_args, dataclass_from_args, run_main, write_json
from core.config import DataConfig
from data_tools.corpus import build_corpus
from data_tools.filters import generic_language


def _rate(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def run(sources: list[str], extensions: tuple[str, ...], config: DataConfig) -> dict[str, Any]:
    """Time `build_corpus` over `sources`; files/s and MB/s overall and per stage."""
    language = generic_language("bench", extensions)
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        stats = build_corpus(language, sources, config, Path(scratch))
        seconds = time.perf_counter() - start
    stages = [
        {
            **row,
            "files_per_s": _rate(row["files_in"], row["seconds"]),
            "mb_per_s": _rate(row["bytes_in"] / 1e6, row["seconds"]),
        }
        for row in stats["stages"]
    ]
    return {
        "sources": sources,
        "workers": config.workers,
        "files": stats["files_in"],
        "megabytes": round(stats["bytes_in"] / 1e6, 1),
        "seconds": round(seconds, 2),
        "files_per_s": _rate(stats["files_in"], seconds),
        "mb_per_s": _rate(stats["bytes_in"] / 1e6, seconds),
        "files_kept": stats["files_kept"],
        "dropped": stats["dropped"],
        "lsh_quality": stats["dedup"]["lsh_quality"],
        "stages": stages,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", nargs="+", required=True, help="directories to read")
    parser.add_argument("--extensions", nargs="+", default=[".py"], help="file extensions")
    parser.add_argument("--json", type=Path, help="write the results here")
    add_dataclass_args(parser, DataConfig)
    args = parser.parse_args(argv)
    return run_main(lambda: _bench(args))


def _bench(args: argparse.Namespace) -> int:
    result = run(args.source, tuple(args.extensions), dataclass_from_args(DataConfig, args))
    for row in result["stages"]:
        print(
            f"{row['stage']:<28} {row['files_in']:>8} files {row['seconds']:>8.2f} s "
            f"{row['files_per_s']:>10.1f} files/s {row['mb_per_s']:>8.1f} MB/s"
        )
    print(
        f"{'total':<28} {result['files']:>8} files {result['seconds']:>8.2f} s "
        f"{result['files_per_s']:>10.1f} files/s {result['mb_per_s']:>8.1f} MB/s"
    )
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
