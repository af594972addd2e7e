"""Warm starts: the weights, model config and tokenizer a run starts from (--init-from), taken
from one of our run directories or a Hugging Face Llama directory.

The source decides the architecture (sizes, heads, vocabulary, RoPE, tied embeddings, EOS/PAD
ids); the run's own flags decide how it trains (compute and parameter dtype, scanned or unrolled
layers, remat, attention kernel, dropout). The tokenizer is the source's: the run's data is
prepared with it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax

from core.checkpoint import Checkpointer, load_model
from core.config import ConfigError, ModelConfig, RunConfig
from core.hf import CONFIG_FILE, model_config_from_hf, read_config
from core.import_hf import read_hf
from core.layout import RunLayout
from core.model import relayout_layers
from core.tokenizer import load_tokenizer

# The fields of a model config that only say how it trains, not what the weights are.
TRAINING_FIELDS = ("dtype", "param_dtype", "scan_layers", "remat", "remat_policy", "attention",
                   "dropout")  # fmt: skip


def _kind(source: str) -> tuple[str, Path]:
    path = Path(source).expanduser()
    if RunLayout.of(path).checkpoints.is_dir():
        return "run", RunLayout.of(path).root
    if (path / CONFIG_FILE).is_file():
        return "hf", path
    raise ConfigError(
        f"--init-from {source}: neither a run directory (no checkpoints/) nor a Hugging Face "
        f"directory (no {CONFIG_FILE})"
    )


def source_model(source: str) -> tuple[ModelConfig, Path]:
    """The model config of the weights at `source` and the tokenizer they were trained with."""
    kind, path = _kind(source)
    if kind == "run":
        layout = RunLayout(path)
        checkpointer = Checkpointer(layout.checkpoints, async_save=False)
        try:
            return checkpointer.restore_config()[0], layout.tokenizer
        finally:
            checkpointer.close()
    model = model_config_from_hf(read_config(path), str(path), load_tokenizer(path))
    return model, path


def warm_model(source: str, training: ModelConfig) -> tuple[ModelConfig, Path]:
    """The model config of the weights at `source`, trained as `training`'s TRAINING_FIELDS
    say, and the source's tokenizer."""
    model, tokenizer = source_model(source)
    fields = {name: getattr(training, name) for name in TRAINING_FIELDS}
    return dataclasses.replace(model, **fields), tokenizer


def warm_run(run: RunConfig) -> RunConfig:
    """`run` with the architecture and tokenizer of its --init-from source (unchanged without)."""
    if not run.train.init_from:
        return run
    model, tokenizer = warm_model(run.train.init_from, run.model)
    if run.data.tokenizer and Path(run.data.tokenizer).expanduser() != tokenizer:
        raise ConfigError(
            f"--tokenizer {run.data.tokenizer}: a warm start uses its source's tokenizer "
            f"({tokenizer})"
        )
    return RunConfig(model, run.train, dataclasses.replace(run.data, tokenizer=str(tokenizer)))


def initial_params(source: str, model: ModelConfig) -> Any:
    """The weights at `source` as host arrays laid out and typed for `model`."""
    kind, path = _kind(source)
    if kind == "run":
        stored, params = load_model(RunLayout(path).checkpoints)
        params = jax.device_get(params)
    else:
        stored, params = read_hf(path)
    params = relayout_layers(params, stored, model.scan_layers)
    return jax.tree.map(lambda leaf: leaf.astype(model.param_dtype), params)
