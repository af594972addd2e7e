"""An orchestrator model trained with this repo's core: its data format and planner (its 3B-class
preset, "orchestrator", sits with the others in core/config.py).

Plan-example data, one JSON object per line of a .jsonl file:

    {"request": "Build a web scraper in Python that saves to Postgres",
     "plan": {"subtasks": [...]}}          # the plan schema of orchestrator/plan.py

Each example becomes one training document, `plan_example_text(request, plan)`:

    <issue_start>{request}<issue_comment>{plan as compact JSON}\n

(StarCoder2 special tokens, which the tokenizer keeps as single ids; documents are packed
EOS-separated like any corpus): the "issue" prompt template of core/template.py around the
request, then the plan. For supervised fine-tuning the examples come split in two,
{"prompt": request, "target": plan_target(plan)} (orchestrator/plan_data.py writes them), and
orchestrator/sft_planner.py trains on them with that template, which the run records. At
inference the planner frames the request with its run's recorded template (the issue template
for a run without one), reads one line, and validates it; anything else falls back to the rules
planner.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from core.completion import Completer, CompletionRequest
from core.inference import load_completer
from core.template import ISSUE, PromptTemplate, recorded_template
from orchestrator.plan import Plan, PlanError, PlanResult, plan_from_data, plan_from_text
from orchestrator.rules_planner import RulePlanner
from orchestrator.sharing import SerialModel

PLAN_TEMPLATE = ISSUE  # how a request reaches a planner model whose run recorded no template


def plan_prompt(request: str) -> str:
    """The text the model continues with a plan."""
    return PLAN_TEMPLATE.prompt(request)


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

    def __init__(
        self,
        model: Completer,
        fallback: RulePlanner,
        max_new_tokens: int = 512,
        template: PromptTemplate = PLAN_TEMPLATE,
    ) -> None:
        self.model = SerialModel(model)
        self.fallback = fallback
        self.max_new_tokens = max_new_tokens
        self.template = template

    def ask(self, request: str) -> Plan:
        """The model's plan (greedy); PlanError when its output is not a valid plan."""
        [outcome] = self.ask_all([request])
        if isinstance(outcome, PlanError):
            raise outcome
        return outcome

    def ask_all(self, requests: Sequence[str]) -> list[Plan | PlanError]:
        """Each request's plan, or the PlanError of its output, from one batched greedy call."""
        prompts = tuple(self.template.prompt(request) for request in requests)
        call = CompletionRequest(prompts, max_new_tokens=self.max_new_tokens, stop=("\n",))
        outcomes: list[Plan | PlanError] = []
        for [output] in self.model.complete(call).texts:
            try:
                outcomes.append(plan_from_text(output))
            except PlanError as error:
                outcomes.append(error)
        return outcomes

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
    """A ModelPlanner over the checkpoint and tokenizer in `run_dir`, framing requests with the
    run's recorded template."""
    template = recorded_template(run_dir) or PLAN_TEMPLATE
    return ModelPlanner(load_completer(run_dir), fallback, max_new_tokens, template)
