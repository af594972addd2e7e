"""Command-line flags for a run's configs: `--config PRESET` plus every field of the model, train
and data configs (core/config.py), each defaulting to the chosen preset's value.

The train job, `prepare` and the benchmarks all build their flags here, so a field is settable
wherever its config is used, with the same name and help text.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection, Sequence

from core.cli import add_dataclass_args, dataclass_from_args
from core.config import PRESETS, DataConfig, ModelConfig, RunConfig, TrainConfig

DEFAULT_PRESET = "test"
_PARTS = {"model": ModelConfig, "train": TrainConfig, "data": DataConfig}


def preset_in(argv: Sequence[str]) -> str:
    """The --config preset named in `argv` (the default when none is)."""
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--config", choices=sorted(PRESETS), default=DEFAULT_PRESET)
    return first.parse_known_args(list(argv))[0].config


def add_run_config_args(
    parser: argparse.ArgumentParser,
    argv: Sequence[str],
    parts: Sequence[str] = ("model", "train", "data"),
    exclude: Collection[str] = (),
) -> None:
    """--config and one flag per field of the `parts` configs (but `exclude`), defaulting to the
    preset that `argv` names, each part in its own help section."""
    preset = preset_in(argv)
    parser.add_argument(
        "--config",
        choices=sorted(PRESETS),
        default=preset,
        help="preset of every config below (default: %(default)s)",
    )
    for part in parts:
        group = parser.add_argument_group(f"{part} config")
        add_dataclass_args(
            group, _PARTS[part], defaults=getattr(PRESETS[preset], part), exclude=exclude
        )


def model_config_from_args(args: argparse.Namespace) -> ModelConfig:
    """The model config the flags give."""
    return dataclass_from_args(ModelConfig, args)


def run_config_from_args(args: argparse.Namespace) -> RunConfig:
    """All three configs the flags give (a one-line ConfigError when they do not fit)."""
    return RunConfig(*(dataclass_from_args(cls, args) for cls in _PARTS.values()))
