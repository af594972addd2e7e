"""The planner eval: its labeled set (valid, varied, disjoint from the training requests), the
per-plan metrics, and the side-by-side CLI over rules, fake endpoints and a real tiny model."""

import json

import pytest

from core.testing import tiny_run_dir
from orchestrator import plan_eval
from orchestrator.plan import PlanError, plan_from_data
from orchestrator.plan_data import REQUESTS, read_requests
from orchestrator.plan_eval import (
    EVAL_SET,
    METRICS,
    edges,
    evaluate,
    near_duplicate,
    read_eval_set,
    score_plan,
    table,
)
from orchestrator.rules_planner import RulePlanner
from orchestrator.testing import chat_app, serving

LANGUAGES = {"python", "rust", "js", "sql"}


def plan(*subtasks):
    """A plan from (id, language, depends_on) triples."""
    return plan_from_data(
        {
            "subtasks": [
                {
                    "id": i,
                    "language": lang,
                    "task": f"do {i}",
                    "file": f"{i}.txt",
                    "depends_on": deps,
                }
                for i, lang, deps in subtasks
            ]
        }
    )


GOLD = plan(("schema", "sql", []), ("db", "python", ["schema"]), ("app", "python", ["db"]))


@pytest.fixture(scope="module")
def eval_set():
    return read_eval_set(EVAL_SET, "--eval")


def test_the_eval_set_is_valid_varied_and_labeled_in_our_languages(eval_set):
    assert len(eval_set) >= 60
    requests = [request for request, _ in eval_set]
    assert len(set(requests)) == len(requests)
    gold = [gold for _, gold in eval_set]
    assert all({s.language for s in p.subtasks} <= LANGUAGES for p in gold)
    assert {s.language for p in gold for s in p.subtasks} == LANGUAGES
    assert sum(len(p.subtasks) == 1 for p in gold) >= 15
    assert sum(len({s.language for s in p.subtasks}) > 1 for p in gold) >= 25
    assert sum(bool(edges(p)) for p in gold) >= 30
    assert sum(len(p.subtasks) >= 3 for p in gold) >= 15


def test_no_training_request_is_an_eval_request_or_near_one(eval_set):
    training = read_requests(REQUESTS)
    close = [(t, e) for t in training for e, _ in eval_set if near_duplicate(t, e)]
    assert close == []


def test_near_duplicates_are_the_same_words_give_or_take_a_few():
    request = "Write a Python function that checks whether a string is a valid IPv4 address."
    assert near_duplicate(
        request, "write a python function that checks whether a string is a valid ipv4 address"
    )
    assert near_duplicate(
        request, "Write a Python function that checks if a string is a valid IPv4 address!"
    )
    assert not near_duplicate(
        request, "Write a Rust function that reverses the words of a sentence."
    )


def test_a_plan_matching_the_gold_scores_one_whatever_its_ids_files_and_order():
    renamed = plan(("app", "python", ["x"]), ("s", "sql", []), ("x", "python", ["s"]))
    assert score_plan(renamed, GOLD) == dict.fromkeys(METRICS, 1.0)


def test_partial_plans_score_what_they_get_right():
    # Same languages and count; edges: app -> schema instead of app -> db.
    wrong_edge = plan(
        ("schema", "sql", []), ("db", "python", ["schema"]), ("app", "python", ["schema"])
    )
    scores = score_plan(wrong_edge, GOLD)
    assert scores == {
        "schema_valid": 1.0,
        "languages_exact": 1.0,
        "subtask_count_match": 1.0,
        "edge_f1": 0.5,
        "edges_exact": 0.0,
    }
    one_python = plan(("app", "python", []))
    assert score_plan(one_python, GOLD) == {
        "schema_valid": 1.0,
        "languages_exact": 0.0,
        "subtask_count_match": 0.0,
        "edge_f1": 0.0,
        "edges_exact": 0.0,
    }
    assert score_plan(one_python, plan(("main", "python", [])))["edge_f1"] == 1.0  # none, none


def test_no_plan_scores_zero_and_its_reason_is_counted():
    error = PlanError("invalid plan: not JSON: Expecting value", "not JSON")
    result = evaluate([("a", GOLD), ("b", GOLD)], [error, GOLD])
    assert result["means"] == dict.fromkeys(METRICS, 0.5)
    assert result["invalid_reasons"] == {"not JSON": 1}
    assert result["per_request"][0]["invalid"]["reason"] == "not JSON"
    assert result["per_request"][1]["plan"] == GOLD.model_dump(mode="json")


def test_side_by_side_rules_and_endpoints_one_real_one_garbage(eval_set, tmp_path):
    gold = {request: p.model_dump_json() for request, p in eval_set}
    out = tmp_path / "results.json"
    with (
        serving(chat_app(lambda request: "Sure! " + gold[request])) as good,
        serving(chat_app(lambda request: "I'm sorry, I can't plan that.")) as garbage,
    ):
        planners = f"--planner rules --planner endpoint {good}/v1#planner-7b --planner endpoint"
        status = plan_eval.main([*planners.split(), f"{garbage}/v1", "--json", str(out)])
    assert status == 0
    results = json.loads(out.read_text())
    assert results["requests"] == len(eval_set)
    columns = results["planners"]
    assert list(columns) == ["rules", "endpoint-1", "endpoint-2"]
    rules = [RulePlanner().plan(request).plan for request, _ in eval_set]
    assert columns["rules"]["means"] == evaluate(eval_set, rules)["means"]
    assert columns["endpoint-1"]["means"] == dict.fromkeys(METRICS, 1.0)
    assert columns["endpoint-1"]["planner"] == f"endpoint {good}/v1#planner-7b"
    assert columns["endpoint-2"]["means"] == dict.fromkeys(METRICS, 0.0)
    assert columns["endpoint-2"]["invalid_reasons"] == {"no JSON object": len(eval_set)}


def test_the_table_has_a_column_per_planner():
    means = {"rules": dict.fromkeys(METRICS, 0.5), "endpoint-1": dict.fromkeys(METRICS, 1.0)}
    header, valid, *rest = table(means).splitlines()
    assert header.split() == ["metric", "rules", "endpoint-1"]
    assert valid.split() == ["schema-valid", "rate", "0.500", "1.000"]
    assert len(rest) == len(METRICS) - 1


def test_the_model_column_scores_a_run_directory(tmp_path):
    """An untrained tiny checkpoint writes no plan: schema-invalid, not a crash."""
    cases = tmp_path / "eval.jsonl"
    cases.write_text(
        "".join(
            json.dumps({"request": request, "plan": GOLD.model_dump(mode="json")}) + "\n"
            for request in ("Build a scraper that saves to Postgres", "Write a SQL view")
        )
    )
    run_dir = tiny_run_dir(tmp_path / "run")
    out = tmp_path / "results.json"
    flags = f"--planner model {run_dir} --planner rules --eval {cases} --max-new-tokens 8"
    assert plan_eval.main([*flags.split(), "--json", str(out)]) == 0
    model = json.loads(out.read_text())["planners"]["model"]
    assert model["planner"] == f"model {run_dir}"
    assert model["means"]["schema_valid"] == 0.0
    assert sum(model["invalid_reasons"].values()) == 2
    assert set(model["invalid_reasons"]) <= {"no JSON object", "not JSON", "schema"}


def test_bad_eval_files_and_flags_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "eval.jsonl"
    bad.write_text(json.dumps({"request": "x", "plan": {"subtasks": []}}) + "\n")
    assert plan_eval.main(["--eval", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {bad}:1: invalid plan: subtasks")
    assert plan_eval.main(["--eval", str(tmp_path / "missing.jsonl")]) == 2
    assert "--eval" in capsys.readouterr().err
    assert plan_eval.main(["--planner", "oracle"]) == 2
    assert capsys.readouterr().err.startswith("error: --planner oracle: expected rules")
