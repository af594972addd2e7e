"""Benchmark summaries, the results file and the on-screen table."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evals.harness import SampleResult, TaskResult
from evals.metrics import pass_at_k, reportable_ks

DEFAULT_KS = (1, 10, 100)


def summarize(
    benchmark: str, results: Sequence[TaskResult], ks: Iterable[int] = DEFAULT_KS
) -> dict[str, Any]:
    """Task and sample counts, pass@k for every reportable k, the syntax-valid rate and, for a
    benchmark with reference completions (infilling), the exact-match rate."""
    num_samples = [len(result.samples) for result in results]
    num_correct = [result.n_passed for result in results]
    samples = [sample for result in results for sample in result.samples]
    summary: dict[str, Any] = {
        "benchmark": benchmark,
        "n_tasks": len(results),
        "n_samples": len(samples),
    }
    for k in reportable_ks(num_samples, ks):
        summary[f"pass@{k}"] = pass_at_k(num_samples, num_correct, k)
    summary["syntax_valid_rate"] = sum(sample.syntax_valid for sample in samples) / len(samples)
    if all(sample.exact_match is not None for sample in samples):
        summary["exact_match"] = sum(bool(sample.exact_match) for sample in samples) / len(samples)
    summary["timeouts"] = sum(sample.status == "timeout" for sample in samples)
    return summary


def subset_results(results: Sequence[TaskResult], subset: str) -> list[TaskResult]:
    """`results` scored on one subset of the checks (harness.Benchmark.subsets): a sample passes
    when that subset's checks did."""
    return [
        TaskResult(
            result.task_id,
            tuple(
                dataclasses.replace(
                    sample,
                    status="passed"
                    if sample.subsets[subset]
                    else ("failed" if sample.passed else sample.status),
                )
                for sample in result.samples
            ),
        )
        for result in results
    ]


def task_records(results: Sequence[TaskResult]) -> list[dict[str, Any]]:
    """Per-task results for the results file (a sample's `subsets` where its benchmark has any)."""
    return [
        {
            "task_id": result.task_id,
            "n_passed": result.n_passed,
            "samples": [_sample_record(sample) for sample in result.samples],
        }
        for result in results
    ]


def _sample_record(sample: SampleResult) -> dict[str, Any]:
    record = {**dataclasses.asdict(sample), "passed": sample.passed}
    if not sample.subsets:
        del record["subsets"]
    if sample.exact_match is None:
        del record["exact_match"]
    return record


def write_results(directory: Path, document: Mapping[str, Any]) -> Path:
    """Write `document` to DIRECTORY/results.json; returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "results.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def format_table(summaries: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table with one row per summary; pass@k columns are the union over rows."""
    metric_columns = sorted(
        {key for summary in summaries for key in summary if key.startswith("pass@")},
        key=lambda key: int(key.removeprefix("pass@")),
    )
    exact = ["exact_match"] if any("exact_match" in summary for summary in summaries) else []
    header = ["benchmark", "tasks", "samples", *metric_columns, "syntax-valid"]
    header += [*(["exact-match"] if exact else []), "timeouts"]
    rows = [
        [
            str(summary["benchmark"]),
            str(summary["n_tasks"]),
            str(summary["n_samples"]),
            *(f"{summary[key]:.2%}" if key in summary else "-" for key in metric_columns),
            f"{summary['syntax_valid_rate']:.2%}",
            *(f"{summary[key]:.2%}" if key in summary else "-" for key in exact),
            str(summary["timeouts"]),
        ]
        for summary in summaries
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
