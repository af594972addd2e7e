"""Tiny real specialists for tests: a small BPE tokenizer and a random-init 2-layer model."""

from __future__ import annotations

from pathlib import Path

import jax
from tokenizers import Tokenizer

from core.checkpoint import Checkpointer, run_config_dict, write_run_config
from core.config import ModelConfig, TrainConfig
from core.inference import CheckpointCompleter
from core.model import init_params
from core.tokenizer import TOKENIZER_FILE, train_tokenizer
from core.trainer import CHECKPOINT_DIR

TINY = ModelConfig(
    vocab_size=384,
    hidden_dim=64,
    num_layers=2,
    num_heads=2,
    head_dim=32,
    ffn_dim=128,
    max_seq_len=128,
)
TINY_TRAIN = TrainConfig(
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
    """A byte-level BPE with StarCoder2's special tokens and at most TINY.vocab_size ids."""
    return train_tokenizer(_TEXTS, vocab_size=TINY.vocab_size)


def tiny_completer(seed: int = 0, batch_size: int = 4) -> CheckpointCompleter:
    """A randomly initialised TINY model with the tiny tokenizer."""
    params = init_params(TINY, jax.random.key(seed))
    return CheckpointCompleter(TINY, params, tiny_tokenizer(), batch_size=batch_size)


def tiny_run_dir(run_dir: Path, seed: int = 0) -> Path:
    """A run directory with a random-init TINY checkpoint (as core.trainer lays it out) and the
    tiny tokenizer, written through core.checkpoint without spending time on training."""
    write_run_config(run_dir, TINY, TINY_TRAIN)
    checkpointer = Checkpointer(run_dir / CHECKPOINT_DIR, async_save=False)
    try:
        params = init_params(TINY, jax.random.key(seed))
        checkpointer.save(0, {"params": params}, {}, run_config_dict(TINY, TINY_TRAIN))
    finally:
        checkpointer.close()
    tiny_tokenizer().save(str(run_dir / TOKENIZER_FILE))
    return run_dir
