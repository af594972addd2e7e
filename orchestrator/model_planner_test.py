"""The model planner on real tiny checkpoints: one trained here on plan examples plans like its
examples; an untrained one writes no plan, and the rules planner answers with a note."""

import json
from pathlib import Path

import numpy as np
import pytest

from core.config import PRESETS, ModelConfig, TrainConfig
from core.layout import RunLayout
from core.model import count_params
from core.testing import tiny_run_dir
from core.tokenizer import EOS_ID, PAD_ID, train_tokenizer
from core.trainer import train
from orchestrator.model_planner import (
    load_model_planner,
    plan_example_text,
    plan_prompt,
    plan_target,
    read_plan_examples,
)
from orchestrator.plan import PlanError
from orchestrator.rules_planner import RulePlanner

REQUESTS = (
    "Build a web scraper in Python that saves to Postgres",
    "Write a Rust function that parses ISO dates",
    "Write a SQL query that counts orders per day",
)
PLANNER = ModelConfig(vocab_size=512, hidden_dim=64, num_layers=2, num_heads=2, head_dim=32,
                      ffn_dim=256, max_seq_len=256, dtype="float32", init_std=0.05)  # fmt: skip
TRAINING = TrainConfig(steps=200, batch_size=3, seq_len=128, warmup_steps=20, peak_lr=1e-2,
                       log_every=50, eval_every=200, save_every=200, eval_batches=1)  # fmt: skip


class DocumentRows:
    """Every plan example as one row (its tokens, EOS, padding), the same batch every step."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows

    def __next__(self) -> np.ndarray:
        return self.rows

    def state(self) -> dict:
        return {}

    def restore(self, state: dict) -> None:
        pass


@pytest.fixture(scope="module")
def trained_planner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory whose model was trained (here, on the CPU) on one plan per request."""
    run_dir = tmp_path_factory.mktemp("planner")
    documents = [plan_example_text(r, RulePlanner().plan(r).plan) for r in REQUESTS]
    tokenizer = train_tokenizer(documents * 8, vocab_size=PLANNER.vocab_size)
    rows = np.full((len(documents), TRAINING.seq_len + 1), PAD_ID, np.int32)
    for row, document in zip(rows, documents, strict=True):
        ids = [*tokenizer.encode(document).ids, EOS_ID]
        assert len(ids) <= len(row)
        row[: len(ids)] = ids
    train(PLANNER, TRAINING, DocumentRows(rows), lambda: [rows], run_dir)
    tokenizer.save(str(RunLayout(run_dir).tokenizer))
    return run_dir


def test_orchestrator_preset_is_in_the_3_to_7_billion_range_context_md_gives():
    orchestrator = PRESETS["orchestrator"].model
    assert 3e9 <= count_params(orchestrator) < 7e9
    assert orchestrator.vocab_size == PRESETS["prod"].model.vocab_size


def test_a_planner_trained_on_plan_examples_writes_their_plans(trained_planner: Path):
    planner = load_model_planner(trained_planner, RulePlanner(), max_new_tokens=160)
    for request in REQUESTS:
        result = planner.plan(request)
        assert result.planner == "model", result.notes
        assert result.plan == RulePlanner().plan(request).plan


def test_an_untrained_model_falls_back_to_the_rules_with_a_note(tmp_path: Path):
    planner = load_model_planner(tiny_run_dir(tmp_path / "run"), RulePlanner(), max_new_tokens=32)
    result = planner.plan(REQUESTS[0])
    assert result.planner == "rules" and result.plan == RulePlanner().plan(REQUESTS[0]).plan
    assert result.notes[-1].startswith("model planner output unusable (invalid plan")
    with pytest.raises(PlanError, match="invalid plan"):  # ask: the same call, no fallback
        planner.ask(REQUESTS[0])


def test_the_training_document_is_the_prompt_then_one_line_of_plan():
    plan = RulePlanner().plan(REQUESTS[0]).plan
    document = plan_example_text(REQUESTS[0], plan)
    assert document == plan_prompt(REQUESTS[0]) + plan_target(plan)
    assert plan_target(plan).endswith("}\n") and plan_target(plan).count("\n") == 1
    assert json.loads(plan_target(plan)) == plan.model_dump(mode="json")


def test_plan_example_files_are_validated_line_by_line(tmp_path):
    plan = RulePlanner().plan(REQUESTS[0]).plan.model_dump(mode="json")
    path = tmp_path / "plans.jsonl"
    path.write_text(json.dumps({"request": REQUESTS[0], "plan": plan}) + "\n\n")
    [(request, parsed)] = read_plan_examples(path)
    assert request == REQUESTS[0] and parsed.model_dump(mode="json") == plan
    path.write_text(json.dumps({"request": REQUESTS[0], "plan": plan}) + "\n" + '{"plan": {}}\n')
    with pytest.raises(PlanError, match=r"plans.jsonl:2: "):
        read_plan_examples(path)
