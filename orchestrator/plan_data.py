"""Supervised fine-tuning data for the model planner: a teacher planner's plans for many requests.

    python -m orchestrator.plan_data --teacher endpoint http://localhost:8001/v1#Qwen2.5-7B-Instruct
    python -m orchestrator.plan_data                   # the rules planner, offline

--requests (default orchestrator/data/plan_requests.jsonl) holds one {"request": ...} per line.
The teacher (rules, any OpenAI-compatible chat endpoint, or a model run directory) is asked each
request without its rules fallback, --concurrency at a time. Every plan is validated against the
schema of plan.py; requests without a valid plan are dropped and counted by reason, and so are
requests that near-duplicate one of the planner eval's (--eval), which are never asked. Writes,
in request order, OUT/plans.jsonl: {"prompt": ..., "target": ...} per kept request, the prompt
the request itself (supervised fine-tuning frames it with the planner's template, which the run
records and the model planner frames requests with at inference: orchestrator/sft_planner.py)
and the target the plan as it writes it (model_planner.plan_target: compact JSON, then a
newline); and OUT/summary.json: the teacher, counts, drop reasons and every drop.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.cli import add_dataclass_args, dataclass_from_args, read_lines, run_main, write_json
from core.layout import OUTPUTS
from orchestrator.model_planner import plan_target
from orchestrator.plan import Plan, PlanError, plan_from_data
from orchestrator.plan_eval import EVAL_SET, near_duplicate, read_eval_set, shown
from orchestrator.planner_choice import (
    PLANNER_USAGE,
    PlannerConfig,
    add_api_key_flag,
    parse_planner_choice,
    propose_all,
    proposer,
)

REQUESTS = EVAL_SET.with_name("plan_requests.jsonl")
NEAR_EVAL = "near-duplicate of an eval request"


def read_requests(path: Path) -> list[str]:
    """The requests of a JSONL file of {"request": "..."} lines; ValueError names the line."""
    lines = read_lines(path, "--requests")
    requests = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            request = json.loads(line)["request"]
        except (json.JSONDecodeError, KeyError, TypeError):
            request = None
        if not isinstance(request, str) or not request.strip():
            raise ValueError(f'{path}:{number}: expected {{"request": "non-empty text"}}')
        requests.append(request)
    if not requests:
        raise ValueError(f"--requests {path}: no requests")
    return requests


def _validated(outcome: Plan | PlanError) -> Plan:
    """The teacher's plan validated again from its JSON; its PlanError if it had none."""
    if isinstance(outcome, PlanError):
        raise outcome
    return plan_from_data(outcome.model_dump(mode="json"))


def make_plan_data(
    requests: Sequence[str],
    ask: Callable[[str], Plan],
    eval_requests: Sequence[str],
    concurrency: int,
) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """SFT examples of the requests `ask` plans validly, in request order, and their summary;
    requests near an eval request are dropped without asking."""
    near_eval = [any(near_duplicate(r, e) for e in eval_requests) for r in requests]
    asked = [request for request, near in zip(requests, near_eval, strict=True) if not near]
    answers = iter(propose_all(ask, asked, concurrency, "planning"))
    examples, plans, drops = [], [], []
    for request, near in zip(requests, near_eval, strict=True):
        try:
            if near:
                raise PlanError("not asked: the planner eval has a request like it", NEAR_EVAL)
            plan = _validated(next(answers))
        except PlanError as error:
            drops.append({"request": request, "reason": error.reason, "message": str(error)})
            continue
        plans.append(plan)
        examples.append({"prompt": request, "target": plan_target(plan)})
    languages = Counter(s.language for plan in plans for s in plan.subtasks)
    sizes = Counter(len(plan.subtasks) for plan in plans)
    summary = {
        "requests": len(requests),
        "kept": len(examples),
        "dropped": len(drops),
        "drop_reasons": dict(Counter(drop["reason"] for drop in drops).most_common()),
        "subtasks_by_language": dict(languages.most_common()),
        "plans_by_subtask_count": {str(n): sizes[n] for n in sorted(sizes)},
        "drops": drops,
    }
    return examples, summary


def _run(args: argparse.Namespace) -> int:
    config = dataclass_from_args(PlannerConfig, args)
    choice = parse_planner_choice(args.teacher, "--teacher")
    requests = read_requests(args.requests)
    eval_requests = [request for request, _ in read_eval_set(args.eval, "--eval")]
    teacher = proposer(choice, config, args.planner_api_key)
    examples, summary = make_plan_data(requests, teacher.ask, eval_requests, config.concurrency)
    examples_path, summary_path = args.out / "plans.jsonl", args.out / "summary.json"
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        with examples_path.open("w") as file:
            file.writelines(json.dumps(example) + "\n" for example in examples)
    except OSError as error:
        raise ValueError(f"--out {args.out}: cannot write: {error.strerror}") from None
    sources = {"teacher": teacher.label, "requests_file": shown(args.requests)}
    write_json(summary_path, sources | summary | {"examples_file": str(examples_path)})
    reasons = ", ".join(f"{reason} {n}" for reason, n in summary["drop_reasons"].items())
    print(
        f"teacher {teacher.label}: kept {summary['kept']} of {summary['requests']} requests, "
        f"dropped {summary['dropped']}" + (f" ({reasons})" if reasons else "")
    )
    print(f"wrote {examples_path} and {summary_path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Build plan SFT data with the --teacher planner; one-line errors exit 2."""
    parser = argparse.ArgumentParser(
        prog="orchestrator.plan_data", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--teacher",
        nargs="+",
        default=["rules"],
        metavar=("KIND", "SOURCE"),
        help=f"the planner whose plans are the targets: {PLANNER_USAGE} (default: rules)",
    )
    parser.add_argument(
        "--requests",
        type=Path,
        default=REQUESTS,
        help=f"request JSONL (default: {shown(REQUESTS)})",
    )
    parser.add_argument(
        "--eval",
        type=Path,
        default=EVAL_SET,
        help="planner eval set whose requests (and near-duplicates) are left out "
        f"(default: {shown(EVAL_SET)})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=OUTPUTS / "plan_data",
        help="writes plans.jsonl and summary.json here (default: %(default)s)",
    )
    add_dataclass_args(parser, PlannerConfig)
    add_api_key_flag(parser)
    args = parser.parse_args(argv)
    return run_main(lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
