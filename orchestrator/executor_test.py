"""Execution with stub specialists that record their calls: batching, concurrency, dependencies,
timeouts, failures, repairs and determinism. Concurrency is shown with barriers and gates, never
with sleeps or clocks."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.completion import Completions, SamplingConfig
from orchestrator.executor import ExecutionConfig, Executor
from orchestrator.pipeline import Orchestrator
from orchestrator.plan import plan_from_data
from orchestrator.registry import build_registry
from orchestrator.rules_planner import RulePlanner

VALID = {"python": "x = 1\n", "sql": "SELECT 1;\n"}
WAIT_S = 60  # a safety net only: every wait ends on an event long before


class RecordingModel:
    """Answers every prompt with `answers` in turn (the last repeats) and records each call;
    counts a character as a token.

    `barrier`: every call first meets the other models' calls there (they must be concurrent).
    `gate`: every call blocks until it is set. `running`/`max_running` count overlapping calls.
    """

    def __init__(self, answers, error=None, barrier=None, gate=None):
        self.answers = answers
        self.error = error
        self.barrier = barrier
        self.gate = gate
        self.calls = []
        self.running = 0
        self.max_running = 0
        self.lock = threading.Lock()

    def complete(self, request):
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            answer = self.answers[min(len(self.calls), len(self.answers) - 1)]
            self.calls.append(request)
        try:
            if self.barrier is not None:
                self.barrier.wait(WAIT_S)
            if self.gate is not None:
                assert self.gate.wait(WAIT_S)
            if self.error:
                raise self.error
            texts = [[answer] * request.n_samples for _ in request.prompts]
            # A character is a token here: each prompt once, its samples together.
            written = [len(answer) * request.n_samples] * len(texts)
            return Completions(texts, [len(p) for p in request.prompts], written)
        finally:
            with self.lock:
                self.running -= 1


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
    registry = build_registry(models)
    plan = plan_from_data({"subtasks": subtasks})
    with ThreadPoolExecutor(8) as pool:
        return asyncio.run(Executor(registry, pool).run(plan, config or ExecutionConfig()))


def test_same_specialist_subtasks_share_one_batched_call():
    python = RecordingModel([VALID["python"]])
    parts = run({"python": python}, [subtask(f"p{i}", "python") for i in range(3)])
    assert len(python.calls) == 1 and len(python.calls[0].prompts) == 3
    assert all(part.valid and part.attempts == 1 for part in parts.values())


def test_different_specialists_run_at_the_same_time():
    both = threading.Barrier(2)  # passed only when both calls are running at once
    python = RecordingModel([VALID["python"]], barrier=both)
    sql = RecordingModel([VALID["sql"]], barrier=both)
    parts = run({"python": python, "sql": sql}, [subtask("p", "python"), subtask("s", "sql")])
    assert parts["p"].error is None and parts["s"].error is None
    assert len(python.calls) == len(sql.calls) == 1


def test_sequential_mode_runs_one_subtask_per_call_one_at_a_time():
    python, sql = RecordingModel([VALID["python"]]), RecordingModel([VALID["sql"]])
    shared = {"python": python, "sql": sql}
    subtasks = [subtask("p0", "python"), subtask("s0", "sql"), subtask("p1", "python")]
    run(shared, subtasks, ExecutionConfig(sequential=True))
    assert [call.prompts for call in python.calls] == [
        (python.calls[0].prompts[0],),
        (python.calls[1].prompts[0],),
    ]
    assert "# p0.py" in python.calls[0].prompts[0] and "# p1.py" in python.calls[1].prompts[0]
    assert python.max_running == 1 and len(sql.calls) == 1


def test_dependents_run_after_and_see_their_dependencies_code():
    python, sql = RecordingModel([VALID["python"]]), RecordingModel(["CREATE TABLE t (id INT);"])
    parts = run(
        {"python": python, "sql": sql},
        [subtask("app", "python", ["schema"]), subtask("schema", "sql")],
    )
    prompt = python.calls[0].prompts[0]  # written after the schema, which it includes
    assert "# schema.sql, which this file uses:" in prompt
    assert "# CREATE TABLE t (id INT);" in prompt
    assert prompt.index("schema.sql") < prompt.index("# app.py")
    assert parts["app"].valid and parts["schema"].valid


def test_timeout_fails_only_the_slow_specialists_subtasks():
    stuck = threading.Event()
    slow = RecordingModel([VALID["python"]], gate=stuck)
    fast = RecordingModel([VALID["sql"]])
    registry = build_registry({"python": slow, "sql": fast})
    plan = plan_from_data({"subtasks": [subtask("p", "python"), subtask("s", "sql")]})
    pool = ThreadPoolExecutor(2)
    try:
        parts = asyncio.run(Executor(registry, pool).run(plan, ExecutionConfig(timeout_s=0.3)))
        assert slow.running == 1  # answered while the slow call was still stuck: it did not wait
    finally:
        stuck.set()
        pool.shutdown()
    assert parts["p"].error == "timed out after 0.3 s" and parts["p"].valid is False
    assert parts["p"].prompt_tokens == parts["p"].completion_tokens == 0  # no attempt returned
    assert parts["s"].error is None and parts["s"].valid


def test_a_failing_model_fails_its_parts_and_dependents_still_run():
    broken = RecordingModel([""], error=RuntimeError("device lost"))
    python = RecordingModel([VALID["python"]])
    parts = run(
        {"python": python, "sql": broken},
        [subtask("schema", "sql"), subtask("app", "python", ["schema"])],
    )
    assert parts["schema"].error == "RuntimeError: device lost"
    assert parts["app"].valid and "schema.sql" not in python.calls[0].prompts[0]


def test_invalid_parts_are_resampled_in_batches_until_they_parse():
    python = RecordingModel(["def (", "def (", "x = 2\n"])
    parts = run(
        {"python": python},
        [subtask("a", "python"), subtask("b", "python")],
        ExecutionConfig(max_repairs=3, repair_temperature=0.5, sampling=SamplingConfig(top_k=5)),
    )
    assert [len(c.prompts) for c in python.calls] == [2, 2, 2]
    assert [c.sampling for c in python.calls] == [
        SamplingConfig(top_k=5), SamplingConfig(0.5, top_k=5), SamplingConfig(0.5, top_k=5)
    ]  # fmt: skip
    assert len({c.seed for c in python.calls}) == 3
    assert all(
        part.valid and part.attempts == 3 and part.code == "x = 2\n" for part in parts.values()
    )
    # Every attempt counts: the prompt read three times, the two repairs' tokens written too.
    prompt = python.calls[0].prompts[0]
    assert parts["a"].prompt_tokens == 3 * len(prompt)
    assert parts["a"].completion_tokens == len("def (") * 2 + len("x = 2\n")


def test_parts_still_invalid_after_the_repairs_are_marked():
    python = RecordingModel(["def ("])
    parts = run({"python": python}, [subtask("a", "python")], ExecutionConfig(max_repairs=2))
    assert len(python.calls) == 3
    assert parts["a"].valid is False and parts["a"].attempts == 3 and parts["a"].error is None


@pytest.fixture
def orchestrator():
    models = {
        "python": RecordingModel([VALID["python"]]),
        "sql": RecordingModel(["CREATE TABLE pages (url TEXT);"]),
    }
    with ThreadPoolExecutor(4) as pool:
        yield Orchestrator(RulePlanner(), build_registry(models), pool)


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
    models = {"python": RecordingModel(['s = """\n```\n"""\n'])}
    with ThreadPoolExecutor(1) as pool:
        orchestrator = Orchestrator(RulePlanner(), build_registry(models), pool)
        answer = asyncio.run(orchestrator.answer("Write a Python constant"))
    assert '````python\ns = """\n```\n"""\n````' in answer
