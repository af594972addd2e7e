"""sql-eval through the eval CLI: every gold query scores, wrong and hostile queries do not."""

from __future__ import annotations

import json
from pathlib import Path

from evals.shared_data import shared_data_dir
from specialists.cli import main
from specialists.sql.benchmarks import load_sql_eval, split_statements


def eval_main(argv: list[str]) -> int:
    """The SQL specialist's eval command."""
    return main(["eval", "--language", "sql", *argv])


def test_split_statements_respects_string_literals() -> None:
    assert split_statements("SELECT ';' FROM t;SELECT 2;") == ["SELECT ';' FROM t", "SELECT 2"]


def test_prompt_holds_schema_notes_and_question() -> None:
    task = load_sql_eval(shared_data_dir() / "defog-sql-eval-sqlite")[0]
    assert task.prompt.startswith("-- Database: academic (SQLite)\nCREATE TABLE ")
    assert "Machine Learning" in task.prompt and task.prompt.endswith("answers the question:\n")
    assert len(task.golds) == 3 and task.category == "group_by"


def test_gold_queries_all_score(tmp_path: Path) -> None:
    gold = tmp_path / "gold.jsonl"
    assert eval_main(["--write-canonical", str(gold)]) == 0
    out = tmp_path / "run"
    assert eval_main(["--samples", str(gold), "--out", str(out)]) == 0
    document = json.loads((out / "results.json").read_text())
    assert (document["n_tasks"], document["pass@1"]) == (210, 1.0)
    assert {group["benchmark"]: group["n_tasks"] for group in document["groups"]} == {
        f"sql-eval/{category}": 35
        for category in (
            "date_functions",
            "group_by",
            "instruct",
            "order_by",
            "ratio",
            "table_join",
        )
    }


def test_wrong_and_hostile_queries_fail(tmp_path: Path) -> None:
    first = load_sql_eval(shared_data_dir() / "defog-sql-eval-sqlite")[0]
    completions = [
        first.golds[1] + ";",  # another acceptable gold
        "SELECT author.name FROM author",  # too many rows
        "DELETE FROM author",  # read-only database
        "SELECT 1; DROP TABLE author",  # one statement only
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT max(x) FROM n",
    ]
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"id": 0, "completion": c}) + "\n" for c in completions))
    out = tmp_path / "run"
    args = ["--samples", str(samples), "--limit", "1", "--timeout", "2", "--out", str(out)]
    assert eval_main(args) == 0
    samples_out = json.loads((out / "results.json").read_text())["tasks"][0]["samples"]
    assert [sample["status"] for sample in samples_out] == [
        "passed", "failed", "failed", "failed", "timeout",
    ]  # fmt: skip
