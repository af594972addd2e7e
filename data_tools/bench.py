"""Benchmark the language-agnostic corpus stage (list, filters, exact + near dedup) on a tree.

Usage: python -m data_tools.bench --source DIR [DIR ...] --json PATH [config flags]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from core.cli import add_dataclass_args, dataclass_from_args
from data_tools.config import PrepareConfig
from data_tools.corpus import build_corpus
from data_tools.spec import LanguageSpec


def keep_all(text: str) -> None:
    """The benchmark's language filter: keeps every file (generic stages only)."""
    return None


def _rate(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def run(sources: list[str], extensions: tuple[str, ...], config: PrepareConfig) -> dict[str, Any]:
    """Time `build_corpus` over `sources`; files/s and MB/s overall and per stage."""
    spec = LanguageSpec("bench", extensions, "#", keep_all, list)
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        stats = build_corpus(spec, sources, config, Path(scratch))
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
    add_dataclass_args(parser, PrepareConfig)
    args = parser.parse_args(argv)
    try:
        config = dataclass_from_args(PrepareConfig, args)
        result = run(args.source, tuple(args.extensions), config)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
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
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
