"""End to end with real tiny checkpoints on disk: plan, route, run, validate, combine; the ask CLI."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.inference import load_completer
from core.testing import tiny_run_dir
from orchestrator import ask
from orchestrator.executor import ExecutionConfig
from orchestrator.pipeline import Orchestrator
from orchestrator.registry import build_registry
from orchestrator.rules_planner import RulePlanner

REQUEST = "Build a web scraper in Python that saves to Postgres"
CONFIG = ExecutionConfig(max_new_tokens=16, max_repairs=1, seed=3)


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {
        "python": tiny_run_dir(root / "python", seed=0),
        "sql": tiny_run_dir(root / "sql", seed=1),
    }


@pytest.fixture(scope="module")
def orchestrator(run_dirs):
    models = {language: load_completer(path) for language, path in run_dirs.items()}
    registry = build_registry(models)
    with ThreadPoolExecutor(4) as pool:
        yield Orchestrator(RulePlanner(), registry, pool, CONFIG)


def test_mixed_python_and_sql_request_end_to_end(orchestrator):
    answer = asyncio.run(orchestrator.answer(REQUEST))
    assert answer.startswith("Plan (rules planner, 3 parts):\n1. [sql] PostgreSQL schema for: ")
    plan = RulePlanner().plan(REQUEST).plan
    parts = asyncio.run(orchestrator.executor.run(plan, CONFIG))
    sections = answer.split("\n### ")[1:]
    expected = [
        ("1. schema.sql (sql)", "t2"),
        ("2. db.py (python)", "t3"),
        ("3. web_scraper.py (python)", "t1"),
    ]
    assert [section.splitlines()[0] for section in sections] == [h for h, _ in expected]
    for section, (_, subtask_id) in zip(sections, expected, strict=True):
        part = parts[subtask_id]
        assert part.error is None and part.attempts in (1, 2)
        assert f"```{part.language}\n{part.code.rstrip()}\n```" in section
        # Random weights write gibberish: a part that does not parse is marked, never hidden.
        assert ("> INVALID: still does not parse" in section) == (part.valid is False)


def test_same_seed_gives_the_same_answer(orchestrator):
    first = asyncio.run(orchestrator.answer(REQUEST))
    assert asyncio.run(orchestrator.answer(REQUEST)) == first


def test_ask_cli_prints_the_same_answer(run_dirs, orchestrator, capsys):
    code = ask.main(
        [
            f"--specialist=python={run_dirs['python']}",
            f"--specialist=sql={run_dirs['sql']}",
            "--max-new-tokens=16",
            "--max-repairs=1",
            "--seed=3",
            REQUEST,
        ]
    )
    assert code == 0
    assert capsys.readouterr().out == asyncio.run(orchestrator.answer(REQUEST))


def test_ask_cli_reports_a_missing_run_dir_in_one_line(tmp_path, capsys):
    code = ask.main(["--specialist", f"python={tmp_path / 'missing'}", "anything"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "missing" in err and err.count("\n") == 1
