"""Planners named by flags, asked without fallback: parsing, endpoint model discovery, and
many requests at once with a bounded number in flight, answered in request order."""

import json
import threading

import pytest

from core.config import ConfigError
from orchestrator.plan import PlanError
from orchestrator.planner_choice import (
    PlannerChoice,
    PlannerConfig,
    parse_planner_choice,
    propose_all,
    proposer,
)
from orchestrator.rules_planner import RulePlanner
from orchestrator.testing import chat_app, serving

WAIT_S = 60  # a safety net only: every wait ends on an event long before


def plan_json(request: str) -> str:
    """A one-subtask plan whose task is the request, so answers show which request they are."""
    subtask = {"id": "main", "language": "python", "task": request, "file": "main.py"}
    return json.dumps({"subtasks": [subtask]})


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["rules"], PlannerChoice("rules")),
        (["endpoint", "http://h:8001/v1#qwen"], PlannerChoice("endpoint", "http://h:8001/v1#qwen")),
        (["model", "outputs/planner"], PlannerChoice("model", "outputs/planner")),
    ],
)
def test_planner_choices_parse(words, expected):
    assert parse_planner_choice(words, "--planner") == expected
    assert str(expected) == " ".join(words)


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["oracle"], "--planner oracle: expected rules, endpoint URL"),
        (["endpoint"], "--planner endpoint: expected rules"),
        (["rules", "extra"], "--planner rules extra: expected"),
        (["endpoint", "ftp://h/v1"], "--planner endpoint ftp://h/v1: 'ftp://h/v1' is not an http"),
    ],
)
def test_bad_planner_choices_are_one_line_errors_naming_the_flag(words, message):
    with pytest.raises(ValueError, match=message):
        parse_planner_choice(words, "--planner")


def test_bad_config_values_name_their_flag():
    with pytest.raises(ConfigError, match="--concurrency must be >= 1"):
        PlannerConfig(concurrency=0)
    with pytest.raises(ConfigError, match="--planner-timeout-s must be positive"):
        PlannerConfig(planner_timeout_s=0)


def test_rules_proposer_plans_like_the_rules_planner_and_raises_on_an_empty_request():
    rules = proposer(PlannerChoice("rules"), PlannerConfig(default_language="rust"), None)
    request = "reverse a string"
    assert rules.ask(request) == RulePlanner("rust").plan(request).plan
    with pytest.raises(PlanError) as error:
        rules.ask("   ")
    assert error.value.reason == "empty request"


def test_missing_model_run_dir_is_a_one_line_error(tmp_path):
    with pytest.raises(ValueError, match=f"model planner: {tmp_path / 'none'}: no tokenizer"):
        proposer(PlannerChoice("model", str(tmp_path / "none")), PlannerConfig(), None)


def test_endpoint_requests_run_concurrently_up_to_the_bound_and_come_back_in_order():
    bound, lock = 3, threading.Lock()
    in_flight, most = 0, 0
    full = threading.Event()  # set once `bound` requests are in flight together

    def answer(request: str) -> str:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
            if in_flight == bound:
                full.set()
        full.wait(WAIT_S)
        with lock:
            in_flight -= 1
        return plan_json(request)

    requests = [f"write part {i} of the program" for i in range(10)]
    with serving(chat_app(answer, model="teacher-7b")) as url:
        config = PlannerConfig(concurrency=bound)
        endpoint = proposer(PlannerChoice("endpoint", f"{url}/v1"), config, None)
        plans = propose_all(endpoint.ask, requests, bound, "test")
    assert endpoint.label == f"endpoint {url}/v1#teacher-7b"  # the listed model, asked for
    assert full.is_set() and most == bound
    assert [plan.subtasks[0].task for plan in plans] == requests


def test_a_request_without_a_plan_is_its_error_in_place():
    def ask(request: str):
        if request == "bad":
            raise PlanError("invalid plan: no JSON object in the output", "no JSON object")
        return RulePlanner().plan(request).plan

    good, bad, other = propose_all(ask, ["sort a list", "bad", "reverse a string"], 2, "test")
    assert isinstance(bad, PlanError) and bad.reason == "no JSON object"
    assert good == RulePlanner().plan("sort a list").plan
    assert other == RulePlanner().plan("reverse a string").plan
