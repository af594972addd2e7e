"""Execution with stub specialists that record their calls: batching, concurrency, dependencies,
timeouts, failures, repairs and determinism."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from orchestrator.executor import ExecutionConfig, Executor
from orchestrator.pipeline import Orchestrator
from orchestrator.plan import plan_from_data
from orchestrator.registry import build_registry
from orchestrator.rules_planner import RulePlanner

VALID = {"python": "x = 1\n", "sql": "SELECT 1;\n"}


class RecordingModel:
    """Answers every prompt with `answers` in turn (the last repeats); records each call."""

    def __init__(self, answers, seconds=0.2, error=None):
        self.answers = answers
        self.seconds = seconds
        self.error = error
        self.calls = []
        self.lock = threading.Lock()

    def complete(self, prompts, n_samples, max_new_tokens, temperature, top_p, stop, seed):
        start = time.perf_counter()
        time.sleep(self.seconds)
        with self.lock:
            answer = self.answers[min(len(self.calls), len(self.answers) - 1)]
            self.calls.append(
                {
                    "prompts": prompts,
                    "start": start,
                    "end": time.perf_counter(),
                    "temperature": temperature,
                    "seed": seed,
                }
            )
        if self.error:
            raise self.error
        return [[answer] * n_samples for _ in prompts]


def subtask(subtask_id, language, depends_on=()):
    extension = {"python": "py", "sql": "sql"}[language]
    return {
        "id": subtask_id,
        "language": language,
        "task": f"write {subtask_id}",
        "file": f"{subtask_id}.{extension}",
        "depends_on": list(depends_on),
    }


def run(models, subtasks, config=None):
    registry = build_registry(models, {})
    plan = plan_from_data({"subtasks": subtasks})
    with ThreadPoolExecutor(8) as pool:
        return asyncio.run(Executor(registry, pool).run(plan, config or ExecutionConfig()))


def test_same_specialist_subtasks_share_one_batched_call():
    python = RecordingModel([VALID["python"]])
    parts = run({"python": python}, [subtask(f"p{i}", "python") for i in range(3)])
    assert len(python.calls) == 1 and len(python.calls[0]["prompts"]) == 3
    assert all(part.valid and part.attempts == 1 for part in parts.values())


def test_different_specialists_run_at_the_same_time():
    python, sql = RecordingModel([VALID["python"]], 0.5), RecordingModel([VALID["sql"]], 0.5)
    run({"python": python, "sql": sql}, [subtask("p", "python"), subtask("s", "sql")])
    [p], [s] = python.calls, sql.calls
    assert p["start"] < s["end"] and s["start"] < p["end"]  # the calls overlap


def test_sequential_mode_runs_one_subtask_per_call_one_at_a_time():
    python = RecordingModel([VALID["python"]], 0.1)
    run(
        {"python": python},
        [subtask(f"p{i}", "python") for i in range(3)],
        ExecutionConfig(sequential=True),
    )
    assert [len(call["prompts"]) for call in python.calls] == [1, 1, 1]
    assert all(a["end"] <= b["start"] for a, b in zip(python.calls, python.calls[1:], strict=False))


def test_dependents_run_after_and_see_their_dependencies_code():
    python, sql = RecordingModel([VALID["python"]]), RecordingModel(["CREATE TABLE t (id INT);"])
    parts = run(
        {"python": python, "sql": sql},
        [subtask("app", "python", ["schema"]), subtask("schema", "sql")],
    )
    assert sql.calls[0]["end"] <= python.calls[0]["start"]
    prompt = python.calls[0]["prompts"][0]
    assert "# schema.sql, which this file uses:" in prompt
    assert "# CREATE TABLE t (id INT);" in prompt
    assert prompt.index("schema.sql") < prompt.index("# app.py")
    assert parts["app"].valid and parts["schema"].valid


def test_timeout_fails_only_the_slow_specialists_subtasks():
    slow, fast = RecordingModel([VALID["python"]], 2.0), RecordingModel([VALID["sql"]], 0.0)
    parts = run(
        {"python": slow, "sql": fast},
        [subtask("p", "python"), subtask("s", "sql")],
        ExecutionConfig(timeout_s=0.3),
    )
    assert parts["p"].seconds < 1.0  # gave up on the slow model instead of waiting for it
    assert parts["p"].error == "timed out after 0.3 s" and parts["p"].valid is False
    assert parts["s"].error is None and parts["s"].valid


def test_a_failing_model_fails_its_parts_and_dependents_still_run():
    broken = RecordingModel([""], 0.0, error=RuntimeError("device lost"))
    python = RecordingModel([VALID["python"]], 0.0)
    parts = run(
        {"python": python, "sql": broken},
        [subtask("schema", "sql"), subtask("app", "python", ["schema"])],
    )
    assert parts["schema"].error == "RuntimeError: device lost"
    assert parts["app"].valid and "schema.sql" not in python.calls[0]["prompts"][0]


def test_invalid_parts_are_resampled_in_batches_until_they_parse():
    python = RecordingModel(["def (", "def (", "x = 2\n"], 0.0)
    parts = run(
        {"python": python},
        [subtask("a", "python"), subtask("b", "python")],
        ExecutionConfig(max_repairs=3, repair_temperature=0.5),
    )
    assert [len(c["prompts"]) for c in python.calls] == [2, 2, 2]
    assert [c["temperature"] for c in python.calls] == [0.0, 0.5, 0.5]
    assert len({c["seed"] for c in python.calls}) == 3
    assert all(
        part.valid and part.attempts == 3 and part.code == "x = 2\n" for part in parts.values()
    )


def test_parts_still_invalid_after_the_repairs_are_marked():
    python = RecordingModel(["def ("], 0.0)
    parts = run({"python": python}, [subtask("a", "python")], ExecutionConfig(max_repairs=2))
    assert len(python.calls) == 3
    assert parts["a"].valid is False and parts["a"].attempts == 3 and parts["a"].error is None


@pytest.fixture
def orchestrator():
    models = {
        "python": RecordingModel([VALID["python"]], 0.0),
        "sql": RecordingModel(["CREATE TABLE pages (url TEXT);"], 0.0),
    }
    with ThreadPoolExecutor(4) as pool:
        yield Orchestrator(RulePlanner(), build_registry(models, {}), pool)


def test_answer_lists_the_plan_then_one_block_per_part_in_dependency_order(orchestrator):
    answer = asyncio.run(
        orchestrator.answer("Build a web scraper in Python that saves to Postgres")
    )
    assert answer.startswith("Plan (rules planner, 3 parts):\n1. [sql]")
    blocks = [
        answer.index(f"### {i}. {file}")
        for i, file in enumerate(
            ["schema.sql (sql)", "db.py (python)", "web_scraper.py (python)"], 1
        )
    ]
    assert blocks == sorted(blocks)
    assert "```sql\nCREATE TABLE pages (url TEXT);\n```" in answer
    assert answer.count("```python\nx = 1\n```") == 2
    assert (
        asyncio.run(orchestrator.answer("Build a web scraper in Python that saves to Postgres"))
        == answer
    )


def test_language_without_specialist_falls_back_and_the_answer_says_so(orchestrator):
    answer = asyncio.run(orchestrator.answer("Write a Ruby script that renames files"))
    assert "Note: no ruby specialist: ruby parts are written by the python specialist" in answer
    assert "### 1. renames_files.py (python)" in answer


def test_code_containing_a_fence_gets_a_longer_fence():
    models = {"python": RecordingModel(['s = """\n```\n"""\n'], 0.0)}
    with ThreadPoolExecutor(1) as pool:
        orchestrator = Orchestrator(RulePlanner(), build_registry(models, {}), pool)
        answer = asyncio.run(orchestrator.answer("Write a Python constant"))
    assert '````python\ns = """\n```\n"""\n````' in answer
