"""Configuration of the data pipeline: filter thresholds, dedup, tokenizer and packing settings."""

from __future__ import annotations

import dataclasses
from typing import Any

from core.cli import flag_field
from core.config import ConfigError


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """Every knob of `data_tools.prepare.prepare`; CLI flags are derived from these fields."""

    # Budgets on what the source yields.
    max_files: int = flag_field(0, "stop after this many source files (0: all)")
    max_bytes: int = flag_field(0, "stop after this many source bytes (0: all)")
    # Dataset sources (hub names or local .json/.jsonl/.parquet files).
    dataset_config: str = flag_field("", "dataset configuration name (e.g. a language subset)")
    dataset_split: str = flag_field("train", "dataset split to stream")
    text_column: str = flag_field("content", "dataset column holding the file text")
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
    vocab_size: int = flag_field(49152, "vocabulary size of a trained tokenizer")
    tokenizer_train_bytes: int = flag_field(32_000_000, "corpus bytes to train a tokenizer on")
    tokenizer_cache_dir: str = flag_field(
        "", "where trained tokenizers are cached (empty: ~/.cache/codefactory/tokenizers)"
    )
    # Packing.
    seq_len: int = flag_field(512, "tokens per training row (rows hold seq_len + 1)")
    max_tokens: int = flag_field(
        20_000_000, "stop packing once the train split holds this many tokens (0: all)"
    )
    validation_fraction: float = flag_field(
        0.01, "fraction of files (by content hash) held out for validation"
    )
    shard_rows: int = flag_field(16384, "rows per .npy shard")
    # Execution.
    workers: int = flag_field(0, "worker processes (0: one per CPU)")
    batch_files: int = flag_field(64, "files per worker task")
    progress: bool = flag_field(True, "show progress bars")

    def __post_init__(self) -> None:
        nonnegative = (
            "max_files",
            "max_bytes",
            "min_chars",
            "max_tokens",
            "tokenizer_train_bytes",
            "workers",
            "dedup_eval_sample",
        )
        for name in nonnegative:
            if getattr(self, name) < 0:
                raise ConfigError(f"PrepareConfig.{name} must be >= 0, got {getattr(self, name)}")
        positive = (
            "max_chars",
            "max_line_length",
            "num_perm",
            "shingle_size",
            "seq_len",
            "shard_rows",
            "batch_files",
            "vocab_size",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(
                    f"PrepareConfig.{name} must be positive, got {getattr(self, name)}"
                )
        for name in ("jaccard_threshold", "min_alnum_fraction", "max_comment_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(
                    f"PrepareConfig.{name} must be in [0, 1], got {getattr(self, name)}"
                )
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(
                f"PrepareConfig.validation_fraction must be in [0, 1), got {self.validation_fraction}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-serialisable dict."""
        return dataclasses.asdict(self)
