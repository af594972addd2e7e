"""The planner's fine-tuning end to end on the CPU: a tiny base imported from a Hugging Face
directory and fine-tuned on the rules teacher's plan examples learns to write their plans (the
planner eval in the run's metrics goes from no valid plan to all of them), and the planner loaded
from the run frames requests with the template it recorded. That a tiny planner also learns the
format on the held-out eval set takes minutes: orchestrator/bench_sft_planner.py shows it."""

import json
from pathlib import Path

from core.layout import RunLayout
from core.template import ISSUE
from core.tracking import read_metrics
from orchestrator import sft_planner
from orchestrator.model_planner import load_model_planner
from orchestrator.plan_data import REQUESTS, read_requests
from orchestrator.plan_eval import METRICS
from orchestrator.rules_planner import RulePlanner
from orchestrator.tiny_planner import write_rules_plan_data, write_tiny_base

CHOSEN = (5, 6, 7, 13)  # requests of plan_requests.jsonl: one with two languages, three with one


def test_a_tiny_planner_fine_tuned_here_learns_to_write_its_plans(tmp_path: Path):
    requests = [read_requests(REQUESTS)[index] for index in CHOSEN]
    data = tmp_path / "plans.jsonl"
    examples = write_rules_plan_data(requests, [], data)
    assert [example["prompt"] for example in examples] == requests
    base = write_tiny_base(examples, tmp_path / "base")
    gold = [RulePlanner().plan(request).plan for request in requests]
    eval_set = tmp_path / "eval.jsonl"
    eval_set.write_text("".join(
        json.dumps({"request": r, "plan": p.model_dump(mode="json")}) + "\n"
        for r, p in zip(requests, gold, strict=True)
    ))  # fmt: skip
    run = tmp_path / "run"
    status = sft_planner.main([
        "--init-from", str(base), "--data", str(data), "--out", str(run), "--eval", str(eval_set),
        "--steps", "100", "--batch-size", "2", "--seq-len", "128", "--peak-lr", "1e-2",
        "--warmup-steps", "10", "--log-every", "20", "--eval-every", "20", "--save-every", "100",
        "--validation-fraction", "0", "--eval-new-tokens", "96",
    ])  # fmt: skip
    assert status == 0
    key = sft_planner.planner_metric("schema_valid")
    curve = [record for record in read_metrics(RunLayout(run).metrics) if key in record]
    assert [record["step"] for record in curve] == [20, 40, 60, 80, 100]
    assert all(sft_planner.planner_metric(m) in curve[-1] for m in METRICS)
    assert curve[0][key] < curve[-1][key] == 1.0
    planner = load_model_planner(run, RulePlanner(), max_new_tokens=96)
    assert planner.template == ISSUE
    assert [planner.ask(request) for request in requests] == gold
