"""The one config tree: model, training and data configs (frozen dataclasses, every field a flag
with help text), the run config that ties them together, and the presets side by side.

A config round-trips through JSON; a run directory keeps its model and train configs in
`config.json` and with every checkpoint, and its data config in the prepared data's manifest.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

from core.cli import flag_field

_DTYPES = ("float32", "bfloat16", "float16")
# Training-time attention kernels: "einsum" is the model's own (any backend; always used with a
# KV cache); "xla" and "cudnn" go through jax.nn.dot_product_attention ("cudnn" is its fused
# flash-attention kernel: GPU only, bf16/fp16 compute; measured 2.2x faster training on an H200).
# Those three take a dense [B, S, S] mask. The SEGMENT_ATTENTION kernels (core/attention.py)
# take the packed rows' segment ids instead: "splash" is Pallas' TPU splash attention,
# "pallas_gpu" Pallas' GPU (Triton) flash attention. "auto" is resolved by
# `ModelConfig.for_backend`.
SEGMENT_ATTENTION = ("splash", "pallas_gpu")
ATTENTION_IMPLEMENTATIONS = ("auto", "einsum", "xla", "cudnn", *SEGMENT_ATTENTION)
# The backends an attention kernel runs on ("cpu": Pallas interpret mode, for tests).
ATTENTION_BACKENDS = {"cudnn": ("gpu",), "splash": ("tpu", "cpu"), "pallas_gpu": ("gpu", "cpu")}
# Splash attention's tiles are multiples of the TPU's 128 lanes.
SPLASH_BLOCK_MULTIPLE = 128
# What a rematerialised block keeps from its forward pass: "full" keeps only its input (least
# memory, the whole block runs twice); "dots" also keeps the weight matmuls' outputs, so the
# backward pass recomputes only attention and the elementwise ops.
REMAT_POLICIES = ("full", "dots")


class ConfigError(ValueError):
    """An inconsistent or unknown configuration value; the message names the field."""


def _check_positive(config: Any, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(config, name) <= 0:
            raise ConfigError(
                f"{type(config).__name__}.{name} must be positive, got {getattr(config, name)}"
            )


def _check_choice(config: Any, name: str, choices: tuple[str, ...]) -> None:
    if getattr(config, name) not in choices:
        raise ConfigError(
            f"{type(config).__name__}.{name} must be one of {choices}, "
            f"got {getattr(config, name)!r}"
        )


def _check_fraction(config: Any, name: str, upper_open: bool = False) -> None:
    value = getattr(config, name)
    if not (0.0 <= value < 1.0 if upper_open else 0.0 <= value <= 1.0):
        bracket = ")" if upper_open else "]"
        raise ConfigError(f"{type(config).__name__}.{name} must be in [0, 1{bracket}, got {value}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Decoder-only transformer: MQA attention, RoPE, RMSNorm, SwiGLU, tied embeddings.

    `dtype` is the compute dtype on accelerators; parameters live in `param_dtype`. On the CPU,
    XLA's bf16 matmuls are slow, so runners call `for_backend` to compute in float32 there.
    """

    vocab_size: int = flag_field(49152, "vocabulary size (a trained tokenizer gets this many ids)")
    hidden_dim: int = flag_field(256, "width of the residual stream")
    num_layers: int = flag_field(6, "transformer blocks")
    num_heads: int = flag_field(4, "query heads")
    num_kv_heads: int = flag_field(1, "key/value heads shared by the query heads (1: MQA)")
    head_dim: int = flag_field(64, "features per head (the presets: hidden_dim / num_heads)")
    ffn_dim: int = flag_field(1024, "SwiGLU hidden width")
    max_seq_len: int = flag_field(512, "longest sequence the model serves, prompt + generation")
    dropout: float = flag_field(0.0, "dropout rate on the embeddings and each block's outputs")
    dtype: str = flag_field("bfloat16", f"compute dtype on accelerators, one of {_DTYPES}")
    param_dtype: str = flag_field("float32", f"parameter dtype, one of {_DTYPES}")
    rope_theta: float = flag_field(10000.0, "RoPE base frequency")
    norm_eps: float = flag_field(1e-5, "RMSNorm epsilon")
    init_std: float = flag_field(0.02, "standard deviation of the normal weight initialiser")
    scan_layers: bool = flag_field(True, "run the layers as one lax.scan (else unrolled)")
    remat: bool = flag_field(False, "recompute each block's activations in the backward pass")
    remat_policy: str = flag_field("full", f"what remat keeps, one of {REMAT_POLICIES}")
    attention: str = flag_field(
        "auto", f"training attention kernel, one of {ATTENTION_IMPLEMENTATIONS}"
    )
    # Splash attention's tiles (TPU); the defaults suit a v5e, as MaxText's do.
    splash_block_q: int = flag_field(512, "splash attention's query block (a multiple of 128)")
    splash_block_kv: int = flag_field(512, "splash attention's key/value block (a multiple of 128)")
    splash_block_kv_compute: int = flag_field(
        512, "the key/value slice splash attention computes at once (divides splash_block_kv)"
    )
    tie_embeddings: bool = flag_field(
        True, "the output projection is the token embedding (else a separate lm_head)"
    )
    eos_id: int = flag_field(
        0, "end-of-text id: separates packed files, ends generation (StarCoder2's <|endoftext|>)"
    )
    pad_id: int = flag_field(4, "padding id, never a loss target (StarCoder2's <fim_pad>)")

    def __post_init__(self) -> None:
        _check_positive(
            self,
            ("vocab_size", "hidden_dim", "num_layers", "num_heads", "num_kv_heads", "head_dim",
             "ffn_dim", "max_seq_len"),
        )  # fmt: skip
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(
                f"ModelConfig.num_heads ({self.num_heads}) must be a multiple of "
                f"num_kv_heads ({self.num_kv_heads})"
            )
        if self.head_dim % 2:
            raise ConfigError(f"ModelConfig.head_dim must be even for RoPE, got {self.head_dim}")
        for name in ("eos_id", "pad_id"):
            if not 0 <= getattr(self, name) < self.vocab_size:
                raise ConfigError(
                    f"ModelConfig.{name} ({getattr(self, name)}) must be a token id below "
                    f"vocab_size ({self.vocab_size})"
                )
        if self.eos_id == self.pad_id:
            raise ConfigError(f"ModelConfig.eos_id and pad_id must differ, both are {self.eos_id}")
        _check_choice(self, "dtype", _DTYPES)
        _check_choice(self, "param_dtype", _DTYPES)
        _check_choice(self, "attention", ATTENTION_IMPLEMENTATIONS)
        for name in ("splash_block_q", "splash_block_kv", "splash_block_kv_compute"):
            value = getattr(self, name)
            if value <= 0 or value % SPLASH_BLOCK_MULTIPLE:
                raise ConfigError(
                    f"ModelConfig.{name} must be a positive multiple of {SPLASH_BLOCK_MULTIPLE}, "
                    f"got {value}"
                )
        if self.splash_block_kv % self.splash_block_kv_compute:
            raise ConfigError(
                f"ModelConfig.splash_block_kv ({self.splash_block_kv}) must be a multiple of "
                f"splash_block_kv_compute ({self.splash_block_kv_compute})"
            )
        _check_choice(self, "remat_policy", REMAT_POLICIES)
        _check_fraction(self, "dropout", upper_open=True)

    def for_backend(self, backend: str) -> ModelConfig:
        """The config to run on `backend` ('cpu', 'gpu', 'tpu').

        float32 compute on the CPU; "auto" attention becomes splash attention on a TPU, cuDNN
        flash attention on a GPU computing in 16 bits, else the einsum kernel ("pallas_gpu" is
        only chosen by name: it is not measured against cuDNN yet). A kernel named for another
        backend is a ConfigError. Parameter shapes never change.
        """
        dtype = "float32" if backend == "cpu" else self.dtype
        attention = self.attention
        if attention == "auto":
            flash = backend == "gpu" and dtype in ("bfloat16", "float16")
            attention = "splash" if backend == "tpu" else "cudnn" if flash else "einsum"
        if backend not in ATTENTION_BACKENDS.get(attention, (backend,)):
            raise ConfigError(
                f"ModelConfig.attention {attention!r} runs on "
                f"{' or '.join(ATTENTION_BACKENDS[attention])}, not {backend}"
            )
        return dataclasses.replace(self, dtype=dtype, attention=attention)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation and loop settings (context.md, Training Configuration), and what the loop
    evaluates, tracks and profiles."""

    steps: int = flag_field(1000, "optimizer steps of the whole run")
    batch_size: int = flag_field(8, "global rows per step, across devices and accumulation")
    seq_len: int = flag_field(512, "tokens per training row (at most ModelConfig.max_seq_len)")
    grad_accum: int = flag_field(1, "micro-batches accumulated per step")
    peak_lr: float = flag_field(3e-4, "learning rate after warmup")
    end_lr_ratio: float = flag_field(0.1, "cosine decays to peak_lr × this")
    warmup_steps: int = flag_field(2000, "linear warmup steps from 0 to peak_lr")
    weight_decay: float = flag_field(0.1, "AdamW weight decay (not on norm scales)")
    grad_clip: float = flag_field(1.0, "global gradient-norm clip")
    adam_b1: float = flag_field(0.9, "Adam beta1")
    adam_b2: float = flag_field(0.95, "Adam beta2")
    adam_eps: float = flag_field(1e-8, "Adam epsilon")
    seed: int = flag_field(0, "seed of the initial parameters, data order and dropout")
    mesh: str = flag_field("", 'device mesh, e.g. "data=2,fsdp=4" (empty: all devices on fsdp)')
    log_every: int = flag_field(10, "steps between metrics records")
    eval_every: int = flag_field(200, "steps between validation-loss evaluations")
    eval_batches: int = flag_field(4, "validation batches per evaluation")
    save_every: int = flag_field(200, "steps between checkpoints")
    keep_checkpoints: int = flag_field(3, "newest checkpoints kept")
    export_hf_every: int = flag_field(
        0, "steps between Hugging Face exports into the run's hf/step_N/ (0: none)"
    )
    init_from: str = flag_field(
        "", "a run directory or Hugging Face directory whose weights start this run"
    )
    train_evals: bool = flag_field(
        True,
        "every eval_every steps, also score greedy pass@1 on the first train_eval_tasks tasks of "
        "the language's benchmark and the syntax-valid rate of its sample prompts",
    )
    train_eval_tasks: int = flag_field(
        8, "benchmark tasks of each training-time eval (0: only the syntax-valid rate)"
    )
    train_eval_new_tokens: int = flag_field(
        128, "tokens per completion at most in training-time evals"
    )
    profile_steps: str = flag_field(
        "", 'capture a jax.profiler trace of steps K..N ("K:N") into the run\'s profile/'
    )
    wandb_project: str = flag_field(
        "", "log to this Weights & Biases project (empty: no W&B; WANDB_MODE=offline: local files)"
    )
    wandb_run_name: str = flag_field("", "W&B run name (empty: W&B picks one)")
    wandb_entity: str = flag_field("", "W&B user or team (empty: the account's default)")

    def __post_init__(self) -> None:
        _check_positive(
            self,
            ("steps", "batch_size", "seq_len", "grad_accum", "log_every", "eval_every",
             "save_every", "keep_checkpoints", "train_eval_new_tokens"),
        )  # fmt: skip
        if self.train_eval_tasks < 0:
            raise ConfigError(
                f"TrainConfig.train_eval_tasks must be >= 0, got {self.train_eval_tasks}"
            )
        _ = self.profile_range  # a ConfigError when profile_steps is not K:N
        if self.warmup_steps < 0:
            raise ConfigError(f"TrainConfig.warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.export_hf_every < 0:
            raise ConfigError(
                f"TrainConfig.export_hf_every must be >= 0, got {self.export_hf_every}"
            )
        if self.batch_size % self.grad_accum:
            raise ConfigError(
                f"TrainConfig.batch_size ({self.batch_size}) must be a multiple of "
                f"grad_accum ({self.grad_accum})"
            )
        if not 0.0 < self.end_lr_ratio <= 1.0:
            raise ConfigError(
                f"TrainConfig.end_lr_ratio must be in (0, 1], got {self.end_lr_ratio}"
            )

    @property
    def tokens_per_step(self) -> int:
        """Tokens in one global batch."""
        return self.batch_size * self.seq_len

    @property
    def profile_range(self) -> tuple[int, int] | None:
        """(K, N) of profile_steps, the first and last step traced; None when empty."""
        if not self.profile_steps:
            return None
        first, sep, last = self.profile_steps.partition(":")
        try:
            bounds = (int(first), int(last)) if sep else None
        except ValueError:
            bounds = None
        if bounds is None or not 1 <= bounds[0] <= bounds[1]:
            raise ConfigError(
                f'TrainConfig.profile_steps must be "K:N" with 1 <= K <= N, '
                f"got {self.profile_steps!r}"
            )
        return bounds


EXECUTORS = ("local", "ray", "slurm")
# DataConfig fields that say where the pipeline runs, not what it produces.
_EXECUTION_FIELDS = ("executor", "tasks", "workers", "ray_address", "slurm_partition",
                     "slurm_time", "slurm_env_command", "progress")  # fmt: skip
# DataConfig.max_tokens values with a meaning of their own.
TOKENS_FOR_STEPS = 0
ALL_TOKENS = -1


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Every knob of the data pipeline (data_tools): sources, filters, dedup, tokenizer, packing,
    and where its tasks run.

    The tokenizer a run trains has ModelConfig.vocab_size ids; the prepared token streams serve
    any sequence length.
    """

    # Budgets on what the source yields.
    max_files: int = flag_field(0, "stop after this many source files (0: all)")
    max_bytes: int = flag_field(0, "stop after this many source bytes (0: all)")
    # Dataset sources (hub names or local .json/.jsonl/.parquet files).
    dataset_config: str = flag_field("", "dataset configuration name (e.g. a language subset)")
    dataset_split: str = flag_field("train", "dataset split to stream")
    text_column: str = flag_field("content", "dataset column holding the file text")
    # The Stack v2 sources ("stack-v2:LISTING"): contents from Software Heritage's S3 bucket.
    stack_v2_cache_dir: str = flag_field(
        "", "where fetched blobs are cached (empty: ~/.cache/codefactory/swh)"
    )
    s3_endpoint_url: str = flag_field("", "an S3-compatible endpoint instead of AWS's")
    s3_anonymous: bool = flag_field(False, "read the bucket without credentials")
    # Quality filters (BigCode-style thresholds).
    min_chars: int = flag_field(100, "drop files shorter than this")
    max_chars: int = flag_field(1_000_000, "drop files longer than this")
    max_line_length: int = flag_field(1000, "drop files with a longer line")
    max_mean_line_length: float = flag_field(100.0, "drop files whose mean line is longer")
    min_alnum_fraction: float = flag_field(0.25, "drop files with fewer alphanumeric characters")
    max_comment_fraction: float = flag_field(
        0.8, "drop files whose non-blank lines are mostly comments"
    )
    min_code_lines: int = flag_field(3, "drop files with fewer non-comment lines")
    max_hex_run: int = flag_field(128, "drop files with a longer run of hex digits")
    max_base64_run: int = flag_field(256, "drop files with a longer base64-like run")
    autogen_header_chars: int = flag_field(
        2000, "how much of a file's head to search for generated-code markers"
    )
    # Near-duplicate removal (BigCode defaults).
    jaccard_threshold: float = flag_field(0.7, "MinHash LSH Jaccard threshold")
    num_perm: int = flag_field(256, "MinHash permutations")
    shingle_size: int = flag_field(5, "tokens per shingle")
    dedup_eval_sample: int = flag_field(
        400, "files sampled to measure LSH precision/recall against exact Jaccard"
    )
    # Tokenizer.
    tokenizer: str = flag_field(
        "", "tokenizer.json path or hub name; empty: train a BPE on the corpus"
    )
    tokenizer_train_bytes: int = flag_field(32_000_000, "corpus bytes to train a tokenizer on")
    tokenizer_cache_dir: str = flag_field(
        "", "where trained tokenizers are cached (empty: ~/.cache/codefactory/tokenizers)"
    )
    # Packing.
    max_tokens: int = flag_field(
        TOKENS_FOR_STEPS,
        f"train-split tokens to pack ({TOKENS_FOR_STEPS}: what the run's steps consume, "
        f"steps × batch size × seq_len; {ALL_TOKENS}: all)",
    )
    validation_fraction: float = flag_field(
        0.01, "fraction of files (by content hash) held out for validation"
    )
    fim_rate: float = flag_field(
        0.5, "share of train files in fill-in-the-middle form (0: none), decided per file by seed"
    )
    fim_spm_rate: float = flag_field(
        0.5, "share of the fill-in-the-middle files in SPM order (the rest PSM)"
    )
    decontaminate: bool = flag_field(
        True, "drop files holding a benchmark's prompt or solution (HumanEval, MBPP, ...)"
    )
    # Execution.
    executor: str = flag_field("local", f"where the pipeline's tasks run, one of {EXECUTORS}")
    tasks: int = flag_field(
        0, "tasks per sharded stage (0: one per 16 MB of local files, at least one per worker)"
    )
    workers: int = flag_field(0, "tasks run at once (0: one per CPU on this machine)")
    ray_address: str = flag_field("", "--executor ray: the cluster's address (empty: a local one)")
    slurm_partition: str = flag_field("", "--executor slurm: the partition")
    slurm_time: str = flag_field("04:00:00", "--executor slurm: each job's time limit")
    slurm_env_command: str = flag_field(
        "", "--executor slurm: a command that activates this repo's Python environment"
    )
    progress: bool = flag_field(True, "print each stage as it runs")

    def __post_init__(self) -> None:
        for name in ("max_files", "max_bytes", "min_chars", "tokenizer_train_bytes", "workers",
                     "dedup_eval_sample", "tasks"):  # fmt: skip
            if getattr(self, name) < 0:
                raise ConfigError(f"DataConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.max_tokens < ALL_TOKENS:
            raise ConfigError(f"DataConfig.max_tokens must be >= -1, got {self.max_tokens}")
        _check_positive(self, ("max_chars", "max_line_length", "num_perm", "shingle_size"))
        _check_choice(self, "executor", EXECUTORS)
        if self.executor == "slurm" and not self.slurm_partition:
            raise ConfigError("DataConfig.slurm_partition must be set with --executor slurm")
        for name in ("jaccard_threshold", "min_alnum_fraction", "max_comment_fraction",
                     "fim_rate", "fim_spm_rate"):  # fmt: skip
            _check_fraction(self, name)
        _check_fraction(self, "validation_fraction", upper_open=True)

    def recorded(self) -> dict[str, Any]:
        """The fields that decide what the pipeline produces (not where or how fast it runs)."""
        return {k: v for k, v in to_dict(self).items() if k not in _EXECUTION_FIELDS}


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """A whole run's configs; the place that checks they fit together."""

    model: ModelConfig
    train: TrainConfig
    data: DataConfig = DataConfig()

    def __post_init__(self) -> None:
        check_fits(self.model, self.train)

    def token_budget(self) -> int | None:
        """Train-split tokens to pack (None: all), from DataConfig.max_tokens."""
        if self.data.max_tokens == ALL_TOKENS:
            return None
        if self.data.max_tokens == TOKENS_FOR_STEPS:
            return self.train.steps * self.train.tokens_per_step
        return self.data.max_tokens


def check_fits(model: ModelConfig, train: TrainConfig) -> None:
    """One-line ConfigError unless `train`'s rows fit `model`."""
    if train.seq_len > model.max_seq_len:
        raise ConfigError(
            f"TrainConfig.seq_len ({train.seq_len}) exceeds ModelConfig.max_seq_len "
            f"({model.max_seq_len})"
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


# The presets. TEST and PROD are context.md's Model Specifications. PROD runs its layers
# unrolled: on an H200 that trained 26% faster than one lax.scan over them (153k vs 122k
# tokens/s at 16 x 2,048; the CPU showed no difference), for a 2x longer compile (~20 s).
# ORCHESTRATOR is the 3B-class planner model (same architecture and vocabulary) for a TPU run.
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
ORCHESTRATOR = ModelConfig(
    hidden_dim=3072,
    num_layers=30,
    num_heads=24,
    head_dim=128,
    ffn_dim=8192,
    max_seq_len=4096,
    remat=True,
)

# TEST is sized for a ~10-minute run on two CPU cores (measured ~5.5 s per 4 x 512-token step
# there), so it trains 80 small-batch steps with a warmup of a tenth of the run instead of
# context.md's 2,000 steps, reads a bounded slice of the local corpus (the first run's cost is
# mostly ast.parse and MinHash over every file), trains its tokenizer on less text and holds out
# more files so validation has enough rows. PROD follows context.md (global batch 64, 2,000
# warmup steps, ~100k steps ≈ 13B tokens at 2,048); ORCHESTRATOR keeps PROD's tokens per step at
# twice the sequence length.
TEST_TRAIN = TrainConfig(
    steps=80,
    warmup_steps=8,
    batch_size=4,
    seq_len=512,
    log_every=4,
    eval_every=40,
    save_every=20,
    eval_batches=4,
)
PROD_TRAIN = TrainConfig(
    steps=100_000,
    warmup_steps=2000,
    batch_size=64,
    seq_len=2048,
    log_every=50,
    eval_every=1000,
    save_every=1000,
    eval_batches=16,
)
PRESETS: dict[str, RunConfig] = {
    "test": RunConfig(
        TEST,
        TEST_TRAIN,
        DataConfig(
            max_bytes=120_000_000, tokenizer_train_bytes=16_000_000, validation_fraction=0.05
        ),
    ),
    "prod": RunConfig(PROD, PROD_TRAIN),
    "orchestrator": RunConfig(
        ORCHESTRATOR, dataclasses.replace(PROD_TRAIN, batch_size=32, seq_len=4096)
    ),
}
