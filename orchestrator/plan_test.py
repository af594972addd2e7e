"""The plan schema: validation messages, levels, dependency order, JSON extraction."""

import json

import pytest

from orchestrator.plan import (
    PLAN_JSON_SCHEMA,
    PlanError,
    PlanResult,
    dependency_order,
    levels,
    plan_from_data,
    plan_from_text,
)


def subtask(subtask_id, depends_on=(), language="python"):
    return {
        "id": subtask_id,
        "language": language,
        "task": f"do {subtask_id}",
        "file": f"{subtask_id}.py",
        "depends_on": list(depends_on),
    }


def test_levels_group_by_dependency_depth_in_plan_order():
    plan = plan_from_data(
        {
            "subtasks": [
                subtask("app", ["db"]),
                subtask("db", ["schema"]),
                subtask("schema"),
                subtask("cli"),
            ]
        }
    )
    assert [[s.id for s in level] for level in levels(plan)] == [["schema", "cli"], ["db"], ["app"]]
    assert [s.id for s in dependency_order(plan)] == ["schema", "cli", "db", "app"]


def test_language_aliases_become_canonical():
    plan = plan_from_data({"subtasks": [subtask("ui", language="JS")]})
    assert plan.subtasks[0].language == "js"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "subtasks: Field required"),
        ({"subtasks": []}, "subtasks: .*at least 1 item"),
        ({"subtasks": [subtask("a", ["b"])]}, "depends on unknown or itself"),
        ({"subtasks": [subtask("a", ["b"]), subtask("b", ["a"])]}, "dependency cycle"),
        ({"subtasks": [subtask("a"), subtask("a")]}, "duplicate subtask id"),
        ({"subtasks": [subtask("a") | {"file": "../../etc/passwd x"}]}, "subtasks.0.file"),
        ({"subtasks": [subtask("a") | {"file": "../up.py"}]}, "subtasks.0.file"),
        ({"subtasks": [subtask("a") | {"extra": 1}]}, "subtasks.0.extra"),
    ],
)
def test_invalid_plans_name_the_problem(data, message):
    with pytest.raises(PlanError, match=message):
        plan_from_data(data)


def test_plan_from_text_finds_json_inside_prose_and_fences():
    text = "Here is the plan:\n```json\n" + json.dumps({"subtasks": [subtask("a")]}) + "\n```"
    assert plan_from_text(text).subtasks[0].id == "a"
    with pytest.raises(PlanError, match="no JSON object") as error:
        plan_from_text("I cannot help with that")
    assert error.value.reason == "no JSON object"
    with pytest.raises(PlanError, match="not JSON") as error:
        plan_from_text("{subtasks: [}")
    assert error.value.reason == "not JSON"
    with pytest.raises(PlanError, match="subtasks.0.file") as error:
        plan_from_text(json.dumps({"subtasks": [subtask("a") | {"file": ""}]}))
    assert error.value.reason == "schema"


def test_a_noted_result_keeps_its_plan_and_adds_the_note_last():
    result = PlanResult(plan_from_data({"subtasks": [subtask("a")]}), "rules", ("first",))
    assert result.noted("second") == PlanResult(result.plan, "rules", ("first", "second"))


def test_json_schema_describes_the_subtask_fields():
    subtask_schema = PLAN_JSON_SCHEMA["$defs"]["Subtask"]
    assert set(subtask_schema["required"]) == {"id", "language", "task", "file"}
    assert {"depends_on", "code"} <= set(subtask_schema["properties"])
