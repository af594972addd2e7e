"""The `prepare` command every specialist exposes: flags from PrepareConfig, a summary table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.cli import add_dataclass_args, dataclass_from_args
from data_tools.config import PrepareConfig
from data_tools.prepare import prepare
from data_tools.spec import LanguageSpec


def summary_table(manifest: dict[str, Any]) -> str:
    """Counts per stage, drops by reason and the packed splits, as a one-screen table."""
    lines = [f"{'stage':<30} {'files in':>9} {'files out':>9} {'seconds':>8}"]
    for row in manifest["stages"]:
        lines.append(
            f"{row['stage']:<30} {row['files_in']:>9} {row['files_out']:>9} {row['seconds']:>8.2f}"
        )
    lines.append(
        "dropped: "
        + (
            ", ".join(f"{reason}={count}" for reason, count in manifest["dropped"].items())
            or "none"
        )
    )
    quality = manifest["dedup"]["lsh_quality"]
    lines.append(
        f"near-dedup on a {quality['sample_files']}-file sample: precision "
        f"{quality['precision']:.3f}, recall {quality['recall']:.3f} "
        f"({quality['true_pairs']} pairs at Jaccard >= "
        f"{manifest['dedup']['jaccard_threshold']})"
    )
    for split, info in manifest["splits"].items():
        lines.append(
            f"{split:<11} files {info['files']:>7}  tokens {info['tokens']:>11}  "
            f"rows {info['rows']:>8} x {manifest['row_length']}"
        )
    lines.append(
        f"tokenizer {manifest['tokenizer']['source']} "
        f"(vocab {manifest['tokenizer']['vocab_size']}, hash {manifest['tokenizer']['hash']})"
        + ("  [reused previous result]" if manifest["reused"] else "")
    )
    return "\n".join(lines)


def prepare_main(spec: LanguageSpec, argv: list[str] | None = None) -> int:
    """Parse flags, run `prepare` for `spec`, print the summary; errors are one line, exit 2."""
    parser = argparse.ArgumentParser(
        description=f"Build packed {spec.name} training data: filter, deduplicate, tokenize, pack."
    )
    parser.add_argument("--source", nargs="+", default=[],
                        help="directories, .json/.jsonl/.parquet files or `datasets` hub names "
                        "(default: the specialist's local corpus)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("outputs") / "data" / spec.name,
                        help="output directory (default: %(default)s)")  # fmt: skip
    add_dataclass_args(parser, PrepareConfig)
    args = parser.parse_args(argv)
    try:
        config = dataclass_from_args(PrepareConfig, args)
        manifest = prepare(spec, config, args.out, args.source)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary_table(manifest))
    return 0
