"""Tiny models shared by tests: configs fast to compile that still have every feature of the
real model, and real tiny run directories (random weights, a small BPE) on disk."""

from __future__ import annotations

from pathlib import Path

import jax
from tokenizers import Tokenizer

from core.checkpoint import Checkpointer, run_config_dict, write_run_config
from core.config import ModelConfig, TrainConfig
from core.inference import CheckpointCompleter
from core.layout import RunLayout
from core.model import init_params
from core.tokenizer import train_tokenizer

# Random-init logits spread enough (init_std 0.1) that greedy decoding never meets a near-tie,
# which the cache-vs-recompute equality tests rely on.
TINY_DECODER = ModelConfig(
    vocab_size=256,
    hidden_dim=64,
    num_layers=2,
    num_heads=4,
    num_kv_heads=1,
    head_dim=16,
    ffn_dim=128,
    max_seq_len=64,
    dtype="float32",
    init_std=0.1,
)

# The smallest model the trainer, sharding and checkpoint tests train (fsdp=8 divides hidden 32).
TINY_TRAINED = ModelConfig(
    vocab_size=128,
    hidden_dim=32,
    num_heads=2,
    head_dim=16,
    ffn_dim=64,
    num_layers=2,
    max_seq_len=16,
)

# A run directory's model: big enough for a 384-token BPE and 128-token prompts.
TINY_RUN = ModelConfig(
    vocab_size=384,
    hidden_dim=64,
    num_layers=2,
    num_heads=2,
    head_dim=32,
    ffn_dim=128,
    max_seq_len=128,
)
TINY_RUN_TRAIN = TrainConfig(
    steps=2,
    batch_size=2,
    seq_len=32,
    warmup_steps=1,
    log_every=1,
    eval_every=2,
    save_every=2,
    eval_batches=1,
)
_TEXTS = [
    "import os\n\ndef main():\n    print(os.getcwd())\n",
    "CREATE TABLE pages (id SERIAL PRIMARY KEY, url TEXT NOT NULL);\n",
    "SELECT url FROM pages WHERE id = 1;\n",
    "def add(a, b):\n    return a + b\n",
    'fn main() { println!("hi"); }\n',
] * 4


def tiny_tokenizer() -> Tokenizer:
    """A byte-level BPE with StarCoder2's special tokens and at most TINY_RUN.vocab_size ids."""
    return train_tokenizer(_TEXTS, vocab_size=TINY_RUN.vocab_size)


def tiny_completer(seed: int = 0, batch_size: int = 4) -> CheckpointCompleter:
    """A randomly initialised TINY_RUN model with the tiny tokenizer."""
    params = init_params(TINY_RUN, jax.random.key(seed))
    return CheckpointCompleter(TINY_RUN, params, tiny_tokenizer(), batch_size=batch_size)


def tiny_run_dir(run_dir: Path, seed: int = 0) -> Path:
    """A run directory with a random-init TINY_RUN checkpoint (as the trainer lays it out) and
    the tiny tokenizer, written through core.checkpoint without spending time on training."""
    layout = RunLayout(run_dir)
    write_run_config(layout, TINY_RUN, TINY_RUN_TRAIN)
    checkpointer = Checkpointer(layout.checkpoints, async_save=False)
    try:
        params = init_params(TINY_RUN, jax.random.key(seed))
        checkpointer.save(0, {"params": params}, {}, run_config_dict(TINY_RUN, TINY_RUN_TRAIN))
    finally:
        checkpointer.close()
    tiny_tokenizer().save(str(layout.tokenizer))
    return run_dir
