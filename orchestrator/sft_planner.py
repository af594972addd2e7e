"""Fine-tune a model planner: supervised fine-tuning (core/sft.py) on plan examples, scored on the
planner eval's held-out requests while it trains.

    python -m orchestrator.plan_data --out outputs/plan_data          # the rules teacher, offline
    python -m orchestrator.sft_planner --init-from DIR --data outputs/plan_data/plans.jsonl
    ./pants run orchestrator:sft_planner -- --init-from DIR --data outputs/plan_data/plans.jsonl

The flags are core/sft.py's, with the planner's prompt template (model_planner.PLAN_TEMPLATE) by
default and the run in outputs/orchestrator-sft. Every --eval-every steps and at the end, the
live parameters plan the requests of the planner eval set (--eval; plan_data keeps their
near-duplicates out of the training data) in one batched greedy call, and plan_eval's scores land
in the run's metrics as eval/planner/<metric>: schema_valid, languages_exact,
subtask_count_match, edge_f1, edges_exact. `python -m orchestrator.plan_eval --planner rules
--planner model RUN` then puts the trained planner beside the rules.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tokenizers import Tokenizer

from core.config import ModelConfig
from core.hooks import Hook, StepInfo
from core.inference import live_completer
from core.layout import default_run_dir
from core.sft import SFTRun, sft_main
from core.template import PromptTemplate
from orchestrator.model_planner import PLAN_TEMPLATE, ModelPlanner
from orchestrator.plan import Plan
from orchestrator.plan_eval import EVAL_SET, evaluate, read_eval_set, shown
from orchestrator.planner_choice import PlannerConfig
from orchestrator.rules_planner import RulePlanner


def planner_metric(metric: str) -> str:
    """The metrics record key of one of plan_eval's scores."""
    return f"eval/planner/{metric}"


class PlannerEvalHook(Hook):
    """plan_eval's mean scores of the live parameters on `cases`, every `every` steps and at the
    end (not when a signal stops the run); on several processes each plans with the gathered
    parameters."""

    kind = "eval"

    def __init__(
        self,
        model: ModelConfig,
        tokenizer: Tokenizer,
        template: PromptTemplate,
        cases: Sequence[tuple[str, Plan]],
        every: int,
        max_new_tokens: int,
    ) -> None:
        self.model, self.tokenizer, self.template = model, tokenizer, template
        self.cases, self.every, self.max_new_tokens = list(cases), every, max_new_tokens

    def run(self, info: StepInfo) -> None:
        if info.stopping is not None:
            return
        completer = live_completer(self.model, info.state.params, self.tokenizer)
        planner = ModelPlanner(completer, RulePlanner(), self.max_new_tokens, self.template)
        outcomes = planner.ask_all([request for request, _ in self.cases])
        for metric, value in evaluate(self.cases, outcomes)["means"].items():
            info.metrics[planner_metric(metric)] = value


def _add_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("planner eval")
    group.add_argument(
        "--eval",
        type=Path,
        default=EVAL_SET,
        help=f"planner eval set scored while training (default: {shown(EVAL_SET)})",
    )
    group.add_argument(
        "--eval-requests",
        type=int,
        default=0,
        help="score only its first N requests (default: 0, all)",
    )
    group.add_argument(
        "--eval-new-tokens",
        type=int,
        default=PlannerConfig.max_new_tokens,
        help="the most tokens of one plan, at most what the model's context leaves beside the "
        "longest eval request (default: %(default)s)",
    )


def _hooks(run: SFTRun, args: argparse.Namespace) -> list[Hook]:
    if args.eval_requests < 0 or args.eval_new_tokens < 1:
        raise ValueError("--eval-requests must be >= 0 and --eval-new-tokens positive")
    cases = read_eval_set(args.eval, "--eval")[: args.eval_requests or None]
    prompts = run.tokenizer.encode_batch([run.template.prompt(request) for request, _ in cases])
    room = run.model.max_seq_len - max(len(prompt.ids) for prompt in prompts)
    if room < 1:
        raise ValueError(f"--eval {args.eval}: a request does not fit the model's context")
    new_tokens = min(args.eval_new_tokens, room)
    every = run.train.eval_every
    return [PlannerEvalHook(run.model, run.tokenizer, run.template, cases, every, new_tokens)]


def main(argv: Sequence[str] | None = None) -> int:
    """Fine-tune a model planner; one-line errors exit 2."""
    return sft_main(
        argv,
        "python -m orchestrator.sft_planner",
        default_out=default_run_dir("orchestrator", "sft"),
        default_template=PLAN_TEMPLATE.name,
        extend=_add_flags,
        hooks=_hooks,
    )


if __name__ == "__main__":
    sys.exit(main())
