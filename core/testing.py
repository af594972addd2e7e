"""Tiny model configs shared by tests: fast to compile, still every feature of the real model."""

from __future__ import annotations

from core.config import ModelConfig

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
