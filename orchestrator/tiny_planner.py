"""A tiny model planner's ingredients for CPU runs (the benchmark and the tests): plan examples
from the rules teacher, and a tiny base model to fine-tune on them.

The base is a Hugging Face Llama directory, as an imported checkpoint would be: random weights
and a byte-level BPE (StarCoder2's special tokens) trained on the examples' own text, so plans
take few tokens; `--init-from` that directory imports it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import jax

from core.config import ModelConfig
from core.hf import write_hf
from core.model import init_params
from core.tokenizer import train_tokenizer
from orchestrator.plan_data import make_plan_data
from orchestrator.rules_planner import RulePlanner

TINY_PLANNER = ModelConfig(
    vocab_size=1024,
    hidden_dim=64,
    num_layers=2,
    num_heads=2,
    head_dim=32,
    ffn_dim=256,
    max_seq_len=256,
    dtype="float32",
)


def write_rules_plan_data(
    requests: Sequence[str], eval_requests: Sequence[str], path: Path
) -> list[dict[str, str]]:
    """The rules teacher's SFT examples of `requests` (none near an eval request), written as
    plan_data writes them to `path`; returns them."""
    rules = RulePlanner()
    examples, _ = make_plan_data(requests, lambda r: rules.plan(r).plan, eval_requests, 1)
    path.write_text("".join(json.dumps(example) + "\n" for example in examples))
    return examples


def write_tiny_base(
    examples: Sequence[dict[str, str]], out: Path, model: ModelConfig = TINY_PLANNER, seed: int = 0
) -> Path:
    """A Llama directory with `model`'s random weights and a BPE trained on the examples."""
    texts = [example["prompt"] + example["target"] for example in examples]
    tokenizer = train_tokenizer(texts, vocab_size=model.vocab_size)
    params = init_params(model, jax.random.key(seed))
    card = "A random-init tiny base for fine-tuning a model planner on the CPU.\n"
    write_hf(out, params, model, tokenizer, "float32", card)
    return out
