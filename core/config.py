"""Model and training configuration: frozen dataclasses, presets, JSON round-trip, validation."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

_DTYPES = ("float32", "bfloat16", "float16")
# Training-time attention kernels: "einsum" is the model's own (any backend; always used with a
# KV cache); "xla" and "cudnn" go through jax.nn.dot_product_attention ("cudnn" is its fused
# flash-attention kernel: GPU only, bf16/fp16 compute; measured 2.2x faster training on an H200).
# "auto" is resolved by `ModelConfig.for_backend`.
ATTENTION_IMPLEMENTATIONS = ("auto", "einsum", "xla", "cudnn")
# What a rematerialised block keeps from its forward pass: "full" keeps only its input (least
# memory, the whole block runs twice); "dots" also keeps the weight matmuls' outputs, so the
# backward pass recomputes only attention and the elementwise ops.
REMAT_POLICIES = ("full", "dots")


class ConfigError(ValueError):
    """An inconsistent or unknown configuration value; the message names the field."""


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Decoder-only transformer: MQA attention, RoPE, RMSNorm, SwiGLU, tied embeddings.

    `dtype` is the compute dtype on accelerators; parameters live in `param_dtype`. On the CPU,
    XLA's bf16 matmuls are slow, so runners call `for_backend` to compute in float32 there.
    """

    vocab_size: int = 49152
    hidden_dim: int = 256
    num_layers: int = 6
    num_heads: int = 4
    num_kv_heads: int = 1
    head_dim: int = 64
    ffn_dim: int = 1024
    max_seq_len: int = 512
    dropout: float = 0.0
    dtype: str = "bfloat16"
    param_dtype: str = "float32"
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    init_std: float = 0.02
    scan_layers: bool = True
    remat: bool = False
    remat_policy: str = "full"
    attention: str = "auto"

    def __post_init__(self) -> None:
        positive = (
            "vocab_size",
            "hidden_dim",
            "num_layers",
            "num_heads",
            "num_kv_heads",
            "head_dim",
            "ffn_dim",
            "max_seq_len",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"ModelConfig.{name} must be positive, got {getattr(self, name)}")
        if self.hidden_dim != self.num_heads * self.head_dim:
            raise ConfigError(
                f"ModelConfig.hidden_dim ({self.hidden_dim}) must equal num_heads × head_dim "
                f"({self.num_heads} × {self.head_dim} = {self.num_heads * self.head_dim})"
            )
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(
                f"ModelConfig.num_heads ({self.num_heads}) must be a multiple of "
                f"num_kv_heads ({self.num_kv_heads})"
            )
        if self.head_dim % 2:
            raise ConfigError(f"ModelConfig.head_dim must be even for RoPE, got {self.head_dim}")
        for name in ("dtype", "param_dtype"):
            if getattr(self, name) not in _DTYPES:
                raise ConfigError(
                    f"ModelConfig.{name} must be one of {_DTYPES}, got {getattr(self, name)!r}"
                )
        if self.attention not in ATTENTION_IMPLEMENTATIONS:
            raise ConfigError(
                f"ModelConfig.attention must be one of {ATTENTION_IMPLEMENTATIONS}, "
                f"got {self.attention!r}"
            )
        if self.remat_policy not in REMAT_POLICIES:
            raise ConfigError(
                f"ModelConfig.remat_policy must be one of {REMAT_POLICIES}, "
                f"got {self.remat_policy!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout}")

    def for_backend(self, backend: str) -> ModelConfig:
        """The config to run on `backend` ('cpu', 'gpu', 'tpu').

        float32 compute on the CPU; "auto" attention becomes cuDNN flash attention on a GPU
        computing in 16 bits, else the einsum kernel. Parameter shapes never change.
        """
        dtype = "float32" if backend == "cpu" else self.dtype
        attention = self.attention
        if attention == "auto":
            flash = backend == "gpu" and dtype in ("bfloat16", "float16")
            attention = "cudnn" if flash else "einsum"
        return dataclasses.replace(self, dtype=dtype, attention=attention)


# The presets from context.md (Model Specifications). PROD runs its layers unrolled: on an H200
# that trained 26% faster than one lax.scan over them (153k vs 122k tokens/s at 16 x 2,048; the
# CPU showed no difference), for a 2x longer compile (~20 s).
TEST = ModelConfig()
PROD = ModelConfig(
    hidden_dim=1024,
    num_layers=24,
    num_heads=16,
    head_dim=64,
    ffn_dim=4096,
    max_seq_len=2048,
    scan_layers=False,
)
PRESETS: dict[str, ModelConfig] = {"test": TEST, "prod": PROD}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation and loop settings (context.md, Training Configuration)."""

    steps: int = 1000
    batch_size: int = 8  # global, across all devices and accumulation steps
    seq_len: int = 512
    grad_accum: int = 1
    peak_lr: float = 3e-4
    end_lr_ratio: float = 0.1  # cosine decays to peak_lr × end_lr_ratio
    warmup_steps: int = 2000
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    adam_b1: float = 0.9
    adam_b2: float = 0.95
    adam_eps: float = 1e-8
    seed: int = 0
    mesh: str = ""  # e.g. "data=2,fsdp=4"; empty puts every device on the fsdp axis
    log_every: int = 10
    eval_every: int = 200
    eval_batches: int = 4
    save_every: int = 200
    keep_checkpoints: int = 3

    def __post_init__(self) -> None:
        for name in (
            "steps",
            "batch_size",
            "seq_len",
            "grad_accum",
            "log_every",
            "eval_every",
            "save_every",
            "keep_checkpoints",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"TrainConfig.{name} must be positive, got {getattr(self, name)}")
        if self.warmup_steps < 0:
            raise ConfigError(f"TrainConfig.warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.batch_size % self.grad_accum:
            raise ConfigError(
                f"TrainConfig.batch_size ({self.batch_size}) must be a multiple of "
                f"grad_accum ({self.grad_accum})"
            )
        if not 0.0 < self.end_lr_ratio <= 1.0:
            raise ConfigError(
                f"TrainConfig.end_lr_ratio must be in (0, 1], got {self.end_lr_ratio}"
            )


C = TypeVar("C")


def to_dict(config: Any) -> dict[str, Any]:
    """A config as a plain JSON-serialisable dict."""
    return dataclasses.asdict(config)


def from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Build `cls` from a dict, rejecting unknown fields with a message naming them."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    return cls(**data)


def save_json(config: Any, path: str | Path) -> None:
    """Write a config to `path` as indented JSON."""
    Path(path).write_text(json.dumps(to_dict(config), indent=2, sort_keys=True) + "\n")


def load_json(cls: type[C], path: str | Path) -> C:
    """Read a config of type `cls` written by `save_json`."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"cannot read {cls.__name__} from {path}: {err}") from err
    return from_dict(cls, data)


# Training presets paired with the model presets. TEST is sized for a ~10-minute run on two CPU
# cores (measured ~5.5 s per 4 x 512-token step there), so it trains 80 small-batch steps with a
# warmup of a tenth of the run instead of context.md's 2,000 steps; PROD follows context.md
# (global batch 64, 2,000 warmup steps, ~100k steps ≈ 13B tokens at 2,048).
TRAIN_PRESETS: dict[str, TrainConfig] = {
    "test": TrainConfig(
        steps=80,
        warmup_steps=8,
        batch_size=4,
        seq_len=512,
        log_every=4,
        eval_every=40,
        save_every=20,
        eval_batches=4,
    ),
    "prod": TrainConfig(
        steps=100_000,
        warmup_steps=2000,
        batch_size=64,
        seq_len=2048,
        log_every=50,
        eval_every=1000,
        save_every=1000,
        eval_batches=16,
    ),
}
