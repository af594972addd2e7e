"""Summaries, the results file and the table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.harness import SampleResult, TaskResult
from evals.results import format_table, subset_results, summarize, task_records, write_results

PASS = SampleResult("passed", True, 0.1, "")
FAIL = SampleResult("failed", True, 0.1, "AssertionError")
HANG = SampleResult("timeout", False, 3.0, "")


def test_summary_of_several_samples_per_task() -> None:
    results = [TaskResult("a", (PASS, FAIL)), TaskResult("b", (FAIL, HANG))]
    summary = summarize("toy", results, ks=[1, 10])
    assert summary["benchmark"] == "toy"
    assert (summary["n_tasks"], summary["n_samples"], summary["timeouts"]) == (2, 4, 1)
    assert summary["pass@1"] == pytest.approx(0.25)
    assert summary["pass@2"] == pytest.approx(0.5)
    assert "pass@10" not in summary
    assert summary["syntax_valid_rate"] == pytest.approx(0.75)


def test_results_file_and_task_records(tmp_path: Path) -> None:
    results = [TaskResult("a", (PASS, FAIL))]
    path = write_results(tmp_path / "run", {"benchmark": "toy", "tasks": task_records(results)})
    document = json.loads(path.read_text())
    assert path.name == "results.json"
    assert document["tasks"][0]["n_passed"] == 1
    assert [s["passed"] for s in document["tasks"][0]["samples"]] == [True, False]
    assert document["tasks"][0]["samples"][1]["detail"] == "AssertionError"


def test_table_has_a_row_per_benchmark_and_the_union_of_metrics() -> None:
    one = summarize("one", [TaskResult("a", (PASS,))])
    two = summarize("two", [TaskResult("b", (PASS, FAIL))])
    header, rule, first, second = format_table([one, two]).splitlines()
    assert header.split() == [
        "benchmark",
        "tasks",
        "samples",
        "pass@1",
        "pass@2",
        "syntax-valid",
        "timeouts",
    ]
    assert set(rule) == {"-", " "}
    assert first.split() == ["one", "1", "1", "100.00%", "-", "100.00%", "0"]
    assert second.split() == ["two", "1", "2", "50.00%", "100.00%", "100.00%", "0"]


def test_a_subset_of_the_checks_is_scored_on_its_own(tmp_path: Path) -> None:
    both = SampleResult("passed", True, 0.1, "", {"base": True})
    base_only = SampleResult("failed", True, 0.1, "plus: input 3", {"base": True})
    neither = SampleResult("timeout", True, 3.0, "", {"base": False})
    results = [TaskResult("a", (both, base_only)), TaskResult("b", (neither, neither))]
    base = subset_results(results, "base")
    assert [[s.status for s in r.samples] for r in base] == [["passed", "passed"], ["timeout"] * 2]
    assert summarize("x:base", base)["pass@1"] == pytest.approx(0.5)
    assert summarize("x", results)["pass@1"] == pytest.approx(0.25)
    records = task_records(results)
    assert records[0]["samples"][1]["subsets"] == {"base": True}
    assert "subsets" not in task_records([TaskResult("c", (PASS,))])[0]["samples"][0]


def test_exact_matches_are_summarised_recorded_and_shown_where_there_is_a_reference() -> None:
    exact = SampleResult("passed", True, 0.1, "", exact_match=True)
    other = SampleResult("passed", True, 0.1, "", exact_match=False)
    summary = summarize("infill", [TaskResult("a", (exact, other)), TaskResult("b", (other,))])
    assert summary["exact_match"] == pytest.approx(1 / 3) and summary["pass@1"] == 1.0
    assert "exact_match" not in summarize("plain", [TaskResult("a", (PASS,))])
    assert task_records([TaskResult("a", (exact,))])[0]["samples"][0]["exact_match"] is True
    assert "exact_match" not in task_records([TaskResult("a", (PASS,))])[0]["samples"][0]
    header, _, row = format_table([summary]).splitlines()
    assert header.split()[-2:] == ["exact-match", "timeouts"] and row.split()[-2] == "33.33%"
