"""Benchmark: a tiny model planner fine-tuned here, on the CPU, learns the plan format.

    python -m orchestrator.bench_sft_planner [--steps 200] [--out outputs/bench/sft_planner]
    ./pants run orchestrator:bench_sft_planner

The rules teacher plans the requests of orchestrator/data/plan_requests.jsonl (as plan_data does,
leaving out near-duplicates of the eval set's requests); a tiny base (orchestrator/tiny_planner.py:
random weights and a BPE trained on those examples, as a Hugging Face Llama directory) is
fine-tuned on them by orchestrator/sft_planner.py, which scores the live model on the held-out
planner eval (orchestrator/data/plan_eval.jsonl) every --eval-every steps; then plan_eval puts
the rules planner and the trained one side by side. Prints the curve and the table; writes
OUT/bench.json (the eval/planner/* curve and validation loss by step, the seconds taken) and
OUT/plan_eval.json. A run already in OUT/run resumes: a rerun with more --steps trains further.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from core.cli import run_main, write_json
from core.layout import OUTPUTS, RunLayout
from core.tracking import read_metrics
from orchestrator import plan_eval, sft_planner
from orchestrator.plan_data import REQUESTS, read_requests
from orchestrator.plan_eval import EVAL_SET, METRICS, read_eval_set
from orchestrator.tiny_planner import TINY_PLANNER, write_rules_plan_data, write_tiny_base

# The most tokens of one plan: what the tiny planner's context leaves beside a long request (a
# completer keeps only a prompt's last tokens when the two do not fit together).
PLAN_TOKENS = TINY_PLANNER.max_seq_len - 96


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.bench_sft_planner", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=OUTPUTS / "bench" / "sft_planner")
    parser.add_argument("--steps", type=int, default=200, help="(default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=16, help="(default: %(default)s)")
    parser.add_argument("--peak-lr", type=float, default=1e-2, help="(default: %(default)s)")
    parser.add_argument("--eval-every", type=int, default=50, help="(default: %(default)s)")
    return parser.parse_args(argv)


def _curve(run_dir: Path) -> list[dict[str, float]]:
    """The planner eval's scores and the validation loss at each step they were measured."""
    keys = {"val_loss": "val_loss"} | {m: sft_planner.planner_metric(m) for m in METRICS}
    return [
        {"step": record["step"], **{name: record[key] for name, key in keys.items()}}
        for record in read_metrics(RunLayout(run_dir).metrics)
        if keys["schema_valid"] in record
    ]


def _bench(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    eval_requests = [request for request, _ in read_eval_set(EVAL_SET, "--eval")]
    data = args.out / "plans.jsonl"
    examples = write_rules_plan_data(read_requests(REQUESTS), eval_requests, data)
    base, run_dir = args.out / "base", args.out / "run"
    if not base.exists():
        write_tiny_base(examples, base)
    status = sft_planner.main([
        "--init-from", str(base), "--data", str(data), "--out", str(run_dir),
        "--steps", str(args.steps), "--batch-size", str(args.batch_size),
        "--peak-lr", str(args.peak_lr), "--warmup-steps", str(max(args.steps // 10, 1)),
        "--seq-len", "256", "--eval-every", str(args.eval_every), "--save-every",
        str(args.eval_every), "--log-every", "10", "--eval-new-tokens", str(PLAN_TOKENS),
    ])  # fmt: skip
    if status:
        return status
    trained = time.perf_counter()
    status = plan_eval.main([
        "--planner", "rules", "--planner", "model", str(run_dir),
        "--max-new-tokens", str(PLAN_TOKENS), "--json", str(args.out / "plan_eval.json"),
    ])  # fmt: skip
    curve = _curve(run_dir)
    print("step  " + "  ".join(f"{name:>12}" for name in curve[0] if name != "step"))
    for point in curve:
        values = "  ".join(f"{value:>12.3f}" for name, value in point.items() if name != "step")
        print(f"{point['step']:>4}  {values}")
    seconds = {"train_s": trained - started, "plan_eval_s": time.perf_counter() - trained}
    write_json(args.out / "bench.json", {"examples": len(examples), "curve": curve, **seconds})
    print(f"wrote {args.out / 'bench.json'} and {args.out / 'plan_eval.json'}")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; user errors are one line, exit 2."""
    args = _parse_args(argv)
    return run_main(lambda: _bench(args))


if __name__ == "__main__":
    sys.exit(main())
