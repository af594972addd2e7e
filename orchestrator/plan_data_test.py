"""The plan-data builder: the shipped request list, and SFT examples from the rules planner and
from a fake OpenAI-compatible teacher whose answers are real plans, garbage, schema errors and
server errors."""

import json
from collections import Counter

import pytest
from fastapi import HTTPException

from orchestrator import plan_data
from orchestrator.model_planner import plan_target
from orchestrator.plan import plan_from_data, plan_from_text
from orchestrator.plan_data import NEAR_EVAL, REQUESTS, read_requests
from orchestrator.plan_eval import EVAL_SET, read_eval_set
from orchestrator.rules_planner import RulePlanner, named_language
from orchestrator.testing import chat_app, serving

GOOD = "Write a Rust CLI that counts vowels, and a SQL table of the counts it stores"
GOOD_PLAN = plan_from_data(
    {
        "subtasks": [
            {
                "id": "table",
                "language": "sql",
                "task": "Table of vowel counts",
                "file": "counts.sql",
            },
            {
                "id": "cli",
                "language": "Rust",
                "task": "CLI that counts vowels into the table",
                "file": "main.rs",
                "depends_on": ["table"],
            },
        ]
    }
)
GARBAGE = "Write a JavaScript clock widget"
SCHEMA_ERROR = "Write a Python function that squares numbers"
SERVER_ERROR = "Write a SQL view of overdue invoices"
ANSWERS = {
    GOOD: "```json\n" + GOOD_PLAN.model_dump_json() + "\n```",
    GARBAGE: "Happy to help! Here's a clock...",
    SCHEMA_ERROR: json.dumps({"subtasks": [{"id": "a", "language": "python", "task": "x"}]}),
}


def teacher(request: str) -> str:
    if request == SERVER_ERROR:
        raise HTTPException(500, "the teacher is overloaded")
    return ANSWERS[request]


def write_requests(path, requests):
    path.write_text("".join(json.dumps({"request": request}) + "\n" for request in requests))
    return path


def test_the_shipped_request_list_is_large_varied_and_uses_every_language():
    requests = read_requests(REQUESTS)
    assert len(requests) >= 300
    normalized = {" ".join(request.lower().split()) for request in requests}
    assert len(normalized) == len(requests)
    plans = [RulePlanner().plan(request).plan for request in requests]
    named = Counter(lang for request in requests if (lang := named_language(request)))
    assert all(named[language] >= 40 for language in ("python", "rust", "js", "sql")), named
    assert sum(len({s.language for s in plan.subtasks}) > 1 for plan in plans) >= 80
    assert sum("\n" in request for request in requests) >= 20  # lists and code fences
    assert sum(len(request) > 200 for request in requests) >= 15  # long phrasing
    assert sum(len(request) < 40 for request in requests) >= 15  # terse phrasing


def test_a_teacher_endpoints_valid_plans_become_examples_and_the_rest_are_counted(tmp_path):
    near_eval = read_eval_set(EVAL_SET, "--eval")[0][0].upper()  # the same words
    requests = [SERVER_ERROR, GOOD, near_eval, GARBAGE, SCHEMA_ERROR]
    path, out = write_requests(tmp_path / "requests.jsonl", requests), tmp_path / "out"
    with serving(chat_app(teacher, model="qwen-7b")) as url:
        flags = f"--teacher endpoint {url}/v1 --requests {path} --out {out} --concurrency 2"
        assert plan_data.main(flags.split()) == 0
    [example] = [json.loads(line) for line in (out / "plans.jsonl").read_text().splitlines()]
    assert example == {"prompt": GOOD, "target": plan_target(GOOD_PLAN)}
    assert plan_from_text(example["target"]) == GOOD_PLAN
    summary = json.loads((out / "summary.json").read_text())
    assert summary["teacher"] == f"endpoint {url}/v1#qwen-7b"
    assert (summary["requests"], summary["kept"], summary["dropped"]) == (5, 1, 4)
    assert summary["drop_reasons"] == {
        "HTTP error": 1,
        NEAR_EVAL: 1,
        "no JSON object": 1,
        "schema": 1,
    }
    assert [drop["request"] for drop in summary["drops"]] == [
        SERVER_ERROR,
        near_eval,
        GARBAGE,
        SCHEMA_ERROR,
    ]
    assert "subtasks.0.file" in summary["drops"][3]["message"]
    assert summary["subtasks_by_language"] == {"sql": 1, "rust": 1}
    assert summary["plans_by_subtask_count"] == {"2": 1}


def test_the_rules_teacher_writes_its_plans_in_request_order(tmp_path):
    requests = [
        "Build a web scraper in Python that saves to Postgres",
        "sort a list of numbers",
        "Write a Rust CLI and a JavaScript frontend",
    ]
    path = write_requests(tmp_path / "requests.jsonl", requests)
    for run in ("a", "b"):
        assert plan_data.main(["--requests", str(path), "--out", str(tmp_path / run)]) == 0
    written = (tmp_path / "a" / "plans.jsonl").read_text()
    assert written == (tmp_path / "b" / "plans.jsonl").read_text()
    assert [json.loads(line) for line in written.splitlines()] == [
        {"prompt": r, "target": plan_target(RulePlanner().plan(r).plan)} for r in requests
    ]
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["teacher"] == "rules" and summary["drop_reasons"] == {}


@pytest.mark.parametrize(
    ("lines", "flags", "message"),
    [
        (
            ['{"request": "sort a list"}', '{"text": "x"}'],
            [],
            'requests.jsonl:2: expected {"request"',
        ),
        (['{"request": "  "}'], [], "requests.jsonl:1: expected"),
        ([], [], "requests.jsonl: no requests"),
        (['{"request": "sort"}'], ["--teacher", "oracle"], "--teacher oracle: expected rules"),
        (['{"request": "sort"}'], ["--concurrency", "0"], "--concurrency must be >= 1"),
    ],
)
def test_bad_request_files_and_flags_are_one_line_errors(tmp_path, capsys, lines, flags, message):
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    assert plan_data.main(["--requests", str(path), "--out", str(tmp_path), *flags]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and error.count("\n") == 1
