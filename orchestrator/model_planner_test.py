"""The model planner: the 3B preset, the plan-example format, parsing and falling back."""

import json

import pytest

from core.model import count_params
from orchestrator.model_planner import (
    ORCHESTRATOR,
    ModelPlanner,
    plan_example_text,
    plan_prompt,
    read_plan_examples,
)
from orchestrator.plan import PlanError
from orchestrator.rules_planner import RulePlanner

REQUEST = "Build a web scraper in Python that saves to Postgres"


class FixedModel:
    """Returns `output` for every prompt; remembers the prompts and stop strings."""

    def __init__(self, output):
        self.output = output
        self.seen = []

    def complete(self, prompts, n_samples, max_new_tokens, temperature, top_p, stop, seed):
        self.seen.append((prompts, stop, temperature))
        return [[self.output] for _ in prompts]


def test_orchestrator_preset_is_3b_class():
    assert count_params(ORCHESTRATOR) == 3_005_930_496
    assert ORCHESTRATOR.vocab_size == 49152 and ORCHESTRATOR.num_kv_heads == 1


def test_a_trained_model_continuing_its_training_format_gives_the_plan():
    plan = RulePlanner().plan(REQUEST).plan
    document = plan_example_text(REQUEST, plan)
    assert document.startswith(plan_prompt(REQUEST)) and document.endswith("}\n")
    model = FixedModel(document[len(plan_prompt(REQUEST)) :].rstrip("\n"))
    result = ModelPlanner(model, RulePlanner()).plan(REQUEST)
    assert result.planner == "model" and result.plan == plan
    assert model.seen == [([plan_prompt(REQUEST)], ["\n"], 0.0)]


def test_unusable_model_output_falls_back_to_rules():
    result = ModelPlanner(FixedModel('{"subtasks": [}'), RulePlanner()).plan(REQUEST)
    assert result.planner == "rules" and result.plan == RulePlanner().plan(REQUEST).plan
    assert result.notes[0].startswith("model planner output unusable (invalid plan: not JSON")


def test_plan_example_files_are_validated_line_by_line(tmp_path):
    plan = RulePlanner().plan(REQUEST).plan.model_dump(mode="json")
    path = tmp_path / "plans.jsonl"
    path.write_text(json.dumps({"request": REQUEST, "plan": plan}) + "\n\n")
    [(request, parsed)] = read_plan_examples(path)
    assert request == REQUEST and parsed.model_dump(mode="json") == plan
    path.write_text(json.dumps({"request": REQUEST, "plan": plan}) + "\n" + '{"plan": {}}\n')
    with pytest.raises(PlanError, match=r"plans.jsonl:2: "):
        read_plan_examples(path)
