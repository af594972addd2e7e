"""Orbax checkpoints: train state, data-loader state and configs, restorable on any mesh.

Each step directory holds three items: "state" (params, optimizer state, step, PRNG key),
"loader" (the batch source's JSON state) and "config" (model + train config JSON). Orbax writes a
step into a temporary directory and renames it when complete, so a kill during a save leaves the
previous checkpoint as the latest. Arrays are restored straight into the shardings of a target
tree, so a checkpoint written under one mesh loads under another.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from core.config import ConfigError, ModelConfig, TrainConfig, from_dict, to_dict
from core.layout import RunLayout
from core.model import init_params, logical_axes
from core.sharding import logical_to_shardings, make_mesh


class CheckpointError(ValueError):
    """A missing or unreadable checkpoint; the message names the directory."""


def run_config_dict(model_config: ModelConfig, train_config: TrainConfig) -> dict[str, Any]:
    """Both configs as one JSON-serialisable dict."""
    return {"model": to_dict(model_config), "train": to_dict(train_config)}


def write_run_config(
    layout: RunLayout,
    model_config: ModelConfig,
    train_config: TrainConfig,
    sections: Mapping[str, Any] | None = None,
) -> None:
    """Save the model and train configs, and any further `sections` (an SFT run's data and
    template), as the run directory's config file."""
    layout.root.mkdir(parents=True, exist_ok=True)
    config = run_config_dict(model_config, train_config) | dict(sections or {})
    text = json.dumps(config, indent=2, sort_keys=True)
    layout.config.write_text(text + "\n")


class Checkpointer:
    """Saves and restores training checkpoints in `directory`, keeping the newest `keep` (all if None)."""

    def __init__(self, directory: Path, keep: int | None = None, async_save: bool = True) -> None:
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, enable_async_checkpointing=async_save, create=True
        )
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(
            self.directory, options=options, item_names=("state", "loader", "config")
        )

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step, or None when there is none."""
        return self._manager.latest_step()

    def save(
        self, step: int, state: Any, loader_state: dict[str, Any], config: dict[str, Any]
    ) -> None:
        """Start saving `state` at `step`; returns once the arrays are copied off the devices."""
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                loader=ocp.args.JsonSave(loader_state),
                config=ocp.args.JsonSave(config),
            ),
        )

    def restore(self, abstract_state: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """(state, loader state) of `step` (default: newest), placed as `abstract_state`'s shardings."""
        step = self._resolve(step)
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state), loader=ocp.args.JsonRestore()
            ),
        )
        return restored.state, restored.loader

    def restore_params(self, abstract_params: Any, step: int | None = None) -> Any:
        """Only the parameters of `step` (default: newest), skipping the optimizer state."""
        step = self._resolve(step)
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.PyTreeRestore(
                    item={"params": abstract_params},
                    restore_args=ocp.checkpoint_utils.construct_restore_args(
                        {"params": abstract_params}
                    ),
                    partial_restore=True,
                )
            ),
        )
        return restored.state["params"]

    def restore_config(self, step: int | None = None) -> tuple[ModelConfig, TrainConfig]:
        """The model and train configs saved with `step` (default: newest)."""
        step = self._resolve(step)
        data = self._manager.restore(
            step, args=ocp.args.Composite(config=ocp.args.JsonRestore())
        ).config
        try:
            return from_dict(ModelConfig, data["model"]), from_dict(TrainConfig, data["train"])
        except (KeyError, TypeError, ConfigError) as err:
            raise CheckpointError(f"{self.directory}/{step}: bad config item: {err}") from err

    def wait(self) -> None:
        """Block until an in-flight async save is on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Finish pending saves and release the manager."""
        self._manager.close()

    def _resolve(self, step: int | None) -> int:
        steps = self._manager.all_steps()
        if not steps:
            raise CheckpointError(f"{self.directory}: no complete checkpoint")
        if step is None:
            return max(steps)
        if step not in steps:
            raise CheckpointError(
                f"{self.directory}: no checkpoint for step {step}; have {sorted(steps)}"
            )
        return step


def load_model(checkpoint_dir: str | Path, step: int | None = None) -> tuple[ModelConfig, Any]:
    """(ModelConfig, params) of the newest (or a given) checkpoint, sharded over all devices."""
    directory = Path(checkpoint_dir)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: checkpoint directory does not exist")
    checkpointer = Checkpointer(directory, async_save=False)
    try:
        model_config, _ = checkpointer.restore_config(step)
        shapes = jax.eval_shape(partial(init_params, model_config), jax.random.PRNGKey(0))
        shardings = logical_to_shardings(logical_axes(model_config), make_mesh())
        abstract = jax.tree.map(
            lambda s, sharding: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
            shapes,
            shardings,
        )
        return model_config, checkpointer.restore_params(abstract, step)
    finally:
        checkpointer.close()
