"""An orchestrator model trained with this repo's core: its data format and planner (its 3B-class
preset, "orchestrator", sits with the others in core/config.py).

Plan-example data, one JSON object per line of a .jsonl file:

    {"request": "Build a web scraper in Python that saves to Postgres",
     "plan": {"subtasks": [...]}}          # the plan schema of orchestrator/plan.py

Each example becomes one training document, `plan_example_text(request, plan)`:

    <issue_start>{request}<issue_comment>{plan as compact JSON}\n

(StarCoder2 special tokens, which the tokenizer keeps as single ids; documents are packed
EOS-separated like any corpus). For supervised fine-tuning the same document comes split in two,
{"prompt": plan_prompt(request), "target": plan_target(plan)} (orchestrator/plan_data.py writes
them). At inference the planner sends the text up to <issue_comment>, reads one line, and
validates it; anything else falls back to the rules planner.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.completion import Completer, CompletionRequest
from core.inference import load_completer
from orchestrator.plan import Plan, PlanError, PlanResult, plan_from_data, plan_from_text
from orchestrator.rules_planner import RulePlanner
from orchestrator.sharing import SerialModel

_REQUEST_START = "<issue_start>"
_PLAN_START = "<issue_comment>"


def plan_prompt(request: str) -> str:
    """The text the model continues with a plan."""
    return f"{_REQUEST_START}{request}{_PLAN_START}"


def plan_target(plan: Plan) -> str:
    """What the model writes after the prompt: the plan as one line of compact JSON (every field,
    in schema order), then the newline it stops at."""
    return json.dumps(plan.model_dump(mode="json"), separators=(",", ":")) + "\n"


def plan_example_text(request: str, plan: Plan) -> str:
    """One training document: the prompt, then the plan's target."""
    return plan_prompt(request) + plan_target(plan)


def read_plan_examples(path: str | Path) -> list[tuple[str, Plan]]:
    """Validated (request, plan) pairs of a plan-example .jsonl file; errors name the line."""
    examples = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            examples.append((str(record["request"]), plan_from_data(record["plan"])))
        except (json.JSONDecodeError, KeyError, TypeError, PlanError) as error:
            raise PlanError(f"{path}:{number}: {error}") from error
    return examples


class ModelPlanner:
    """Plans with a checkpoint trained on plan examples; falls back to the rules planner."""

    name = "model"

    def __init__(self, model: Completer, fallback: RulePlanner, max_new_tokens: int = 512) -> None:
        self.model = SerialModel(model)
        self.fallback = fallback
        self.max_new_tokens = max_new_tokens

    def ask(self, request: str) -> Plan:
        """The model's plan (greedy); PlanError when its output is not a valid plan."""
        [[output]] = self.model.complete(
            CompletionRequest(
                (plan_prompt(request),), max_new_tokens=self.max_new_tokens, stop=("\n",)
            )
        ).texts
        return plan_from_text(output)

    def plan(self, request: str) -> PlanResult:
        """The model's plan, or the rules planner's with a note saying why."""
        try:
            return PlanResult(self.ask(request), self.name)
        except PlanError as error:
            note = f"model planner output unusable ({error}); used rules"
            return self.fallback.plan(request).noted(note)


def load_model_planner(
    run_dir: str | Path, fallback: RulePlanner, max_new_tokens: int = 512
) -> ModelPlanner:
    """A ModelPlanner over the checkpoint and tokenizer in `run_dir`."""
    return ModelPlanner(load_completer(run_dir), fallback, max_new_tokens)
