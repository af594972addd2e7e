"""The data pipeline's one-screen summary of a manifest: stages, drops, dedup quality, splits."""

from __future__ import annotations

from typing import Any


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
