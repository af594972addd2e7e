"""Score planners against gold plans, side by side.

    python -m orchestrator.plan_eval --planner rules --planner endpoint http://host:8001/v1#qwen \
        --planner model outputs/orchestrator-run

The eval set (--eval, default orchestrator/data/plan_eval.jsonl) has one {"request", "plan"} per
line, the gold plan in the schema of plan.py. Each planner is asked every request without its
rules fallback; a request it gives no valid plan for (bad JSON, a schema error, a timeout, an
HTTP error) is schema-invalid and scores 0 on every metric. For a valid plan:

- languages: its set of subtask languages equals the gold set;
- subtask count: it has as many subtasks as the gold plan;
- dependency edges: a subtask's key is its language and its rank among that language's subtasks
  in dependency order (plan.dependency_order: dependencies first, then plan order), so ids and
  file names do not matter; an edge is (key of a subtask, key of one it depends on). Edge F1 is
  2|P∩G| / (|P|+|G|) of the predicted and gold edge sets (1 when both are empty); exact: P = G.

Results are means over the requests: a table with one column per planner, and JSON with every
request's scores and plan (--json, default outputs/eval/planner-<time>/planner_eval.json).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.cli import add_dataclass_args, dataclass_from_args, run_main, write_json
from core.layout import default_eval_dir
from orchestrator.model_planner import read_plan_examples
from orchestrator.plan import Plan, PlanError, dependency_order
from orchestrator.planner_choice import (
    PLANNER_USAGE,
    PlannerChoice,
    PlannerConfig,
    add_api_key_flag,
    parse_planner_choice,
    propose_all,
    proposer,
)

_ROOT = Path(__file__).resolve().parent.parent  # the repo, or a pex's site-packages
EVAL_SET = _ROOT / "orchestrator" / "data" / "plan_eval.jsonl"
METRICS = {
    "schema_valid": "schema-valid rate",
    "languages_exact": "language set exact",
    "subtask_count_match": "subtask count match",
    "edge_f1": "dependency edge F1",
    "edges_exact": "dependency edges exact",
}
NEAR_DUPLICATE_JACCARD = 0.7

Key = tuple[str, int]


def shown(path: Path) -> str:
    """`path` as the repo names it when it is one of the repo's files (also inside a pex)."""
    try:
        return str(path.resolve().relative_to(_ROOT))
    except ValueError:
        return str(path)


def read_eval_set(path: Path, flag: str) -> list[tuple[str, Plan]]:
    """The (request, gold plan) pairs of an eval-set file; ValueError names `flag` or the line."""
    try:
        cases = read_plan_examples(path)
    except OSError as error:
        raise ValueError(f"{flag} {path}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{flag} {path}: not UTF-8 text") from None
    if not cases:
        raise ValueError(f"{flag} {path}: no requests")
    return cases


def near_duplicate(a: str, b: str) -> bool:
    """Whether two requests share at least 70% of their distinct lower-cased words (Jaccard):
    the same text up to case, punctuation and spacing always does."""
    words_a, words_b = (set(re.findall(r"[a-z0-9]+", text.lower())) for text in (a, b))
    union = words_a | words_b
    return not union or len(words_a & words_b) >= NEAR_DUPLICATE_JACCARD * len(union)


def subtask_keys(plan: Plan) -> dict[str, Key]:
    """Each subtask id's key: (language, rank among that language's subtasks in dependency
    order)."""
    ranks: Counter[str] = Counter()
    keys = {}
    for subtask in dependency_order(plan):
        keys[subtask.id] = (subtask.language, ranks[subtask.language])
        ranks[subtask.language] += 1
    return keys


def edges(plan: Plan) -> set[tuple[Key, Key]]:
    """(subtask, dependency) pairs of the plan, by key."""
    keys = subtask_keys(plan)
    return {(keys[s.id], keys[d]) for s in plan.subtasks for d in s.depends_on}


def score_plan(predicted: Plan | PlanError, gold: Plan) -> dict[str, float]:
    """The metrics of one predicted plan (or the error it has instead) against its gold plan."""
    if isinstance(predicted, PlanError):
        return dict.fromkeys(METRICS, 0.0)
    got, want = edges(predicted), edges(gold)
    languages = [{s.language for s in plan.subtasks} for plan in (predicted, gold)]
    return {
        "schema_valid": 1.0,
        "languages_exact": float(languages[0] == languages[1]),
        "subtask_count_match": float(len(predicted.subtasks) == len(gold.subtasks)),
        "edge_f1": 2 * len(got & want) / (len(got) + len(want)) if got or want else 1.0,
        "edges_exact": float(got == want),
    }


def evaluate(cases: Sequence[tuple[str, Plan]], outcomes: Sequence[Plan | PlanError]) -> dict:
    """Mean metrics, reasons for invalid plans, and each request's scores and plan or error."""
    per_request: list[dict[str, Any]] = []
    for (request, gold), outcome in zip(cases, outcomes, strict=True):
        entry: dict[str, Any] = {"request": request, "scores": score_plan(outcome, gold)}
        if isinstance(outcome, PlanError):
            entry["invalid"] = {"reason": outcome.reason, "message": str(outcome)}
        else:
            entry["plan"] = outcome.model_dump(mode="json")
        per_request.append(entry)
    reasons = Counter(o.reason for o in outcomes if isinstance(o, PlanError))
    return {
        "means": {m: statistics.fmean(e["scores"][m] for e in per_request) for m in METRICS},
        "invalid_reasons": dict(reasons.most_common()),
        "per_request": per_request,
    }


def column_names(choices: Sequence[PlannerChoice]) -> list[str]:
    """A table column per planner: its kind, numbered when several planners share it."""
    kinds = Counter(choice.kind for choice in choices)
    seen: Counter[str] = Counter()
    names = []
    for choice in choices:
        seen[choice.kind] += 1
        numbered = kinds[choice.kind] > 1
        names.append(f"{choice.kind}-{seen[choice.kind]}" if numbered else choice.kind)
    return names


def table(means: dict[str, dict[str, float]]) -> str:
    """Metrics as rows, planners as columns."""
    width = max(len(title) for title in METRICS.values())
    widths = {name: max(len(name), 5) for name in means}
    rows = [f"{'metric':<{width}}" + "".join(f"  {n:>{w}}" for n, w in widths.items())]
    for metric, title in METRICS.items():
        values = "".join(f"  {means[n][metric]:>{w}.3f}" for n, w in widths.items())
        rows.append(f"{title:<{width}}{values}")
    return "\n".join(rows)


def _run(args: argparse.Namespace) -> int:
    config = dataclass_from_args(PlannerConfig, args)
    choices = [parse_planner_choice(words, "--planner") for words in args.planner or [["rules"]]]
    cases = read_eval_set(args.eval, "--eval")
    requests = [request for request, _ in cases]
    results: dict[str, Any] = {}
    for name, choice in zip(column_names(choices), choices, strict=True):
        planner = proposer(choice, config, args.planner_api_key)
        outcomes = propose_all(planner.ask, requests, config.concurrency, name)
        results[name] = {"planner": planner.label, **evaluate(cases, outcomes)}
    print(f"{len(cases)} requests of {shown(args.eval)}")
    print(table({name: result["means"] for name, result in results.items()}))
    for name, result in results.items():
        reasons = ", ".join(f"{r} {n}" for r, n in result["invalid_reasons"].items())
        print(f"{name}: {result['planner']}" + (f" (invalid: {reasons})" if reasons else ""))
    out = args.json or default_eval_dir("planner") / "planner_eval.json"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"cannot write --json {out}: {error.strerror}") from None
    write_json(out, {"eval_set": shown(args.eval), "requests": len(cases), "planners": results})
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Score the --planner choices on the eval set; one-line errors exit 2."""
    parser = argparse.ArgumentParser(
        prog="orchestrator.plan_eval", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--planner",
        action="append",
        nargs="+",
        metavar=("KIND", "SOURCE"),
        help=f"{PLANNER_USAGE}; repeat for one column each (default: rules)",
    )
    parser.add_argument(
        "--eval", type=Path, default=EVAL_SET, help=f"eval-set JSONL (default: {shown(EVAL_SET)})"
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    add_dataclass_args(parser, PlannerConfig)
    add_api_key_flag(parser)
    args = parser.parse_args(argv)
    return run_main(lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
