"""The data pipeline's one-screen summary of a prepare: stages, drops, dedup quality, splits."""

from __future__ import annotations

from typing import Any


def summary_table(manifest: dict[str, Any]) -> str:
    """Counts per stage, drops by reason and the packed splits, as a one-screen table (or where
    the submitted Slurm jobs log, when they have not finished)."""
    if manifest.get("submitted"):
        return (
            f"submitted the pipeline as a chain of Slurm jobs; logs in {manifest['logs']}; "
            "run the same command again once they finish"
        )
    execution = manifest.get("execution") or {}
    seconds = {row["stage"]: row["seconds"] for row in execution.get("stages", [])}
    lines = [f"{'stage':<16} {'files in':>10} {'files out':>10}"]
    for row in manifest["stages"]:
        lines.append(f"{row['stage']:<16} {row['files_in']:>10} {row['files_out']:>10}")
    if seconds:
        lines.append(
            f"{execution['executor']} executor, {execution['tasks']} tasks, "
            f"{execution['workers']} workers: "
            + ", ".join(f"{stage} {value:.1f} s" for stage, value in seconds.items())
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
            f"({info['dtype']}, {len(info['shards'])} shards)"
        )
    lines.append(
        f"tokenizer {manifest['tokenizer']['source']} "
        f"(vocab {manifest['tokenizer']['vocab_size']}, hash {manifest['tokenizer']['hash']})"
        + ("  [reused previous result]" if manifest["reused"] else "")
    )
    return "\n".join(lines)
