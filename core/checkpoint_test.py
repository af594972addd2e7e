"""Checkpoint tests: round trip, resharding on restore, unfinalized saves, load_model.

BUILD gives this file 8 simulated CPU devices.
"""

import dataclasses
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

from core.checkpoint import Checkpointer, CheckpointError, load_model, run_config_dict
from core.config import TrainConfig
from core.sharding import make_mesh
from core.testing import TINY_TRAINED
from core.train_step import build_steps

TINY = TINY_TRAINED
TRAIN = TrainConfig(steps=4, batch_size=8, seq_len=16, warmup_steps=1, mesh="fsdp=8")
CONFIG = run_config_dict(TINY, TRAIN)


def assert_trees_equal(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, object]:
    directory = tmp_path_factory.mktemp("run") / "checkpoints"
    state = build_steps(TINY, TRAIN, make_mesh("fsdp=8")).init()
    checkpointer = Checkpointer(directory, keep=2)
    for step in (1, 2, 3):
        checkpointer.save(step, state.replace(step=step), {"epoch": 0, "position": step}, CONFIG)
    checkpointer.close()
    return directory, state


def test_keeps_newest_and_restores_state_and_loader(saved):
    directory, state = saved
    checkpointer = Checkpointer(directory)
    restored, loader = checkpointer.restore(
        build_steps(TINY, TRAIN, make_mesh("fsdp=8")).abstract_state
    )
    assert sorted(int(p.name) for p in directory.iterdir()) == [2, 3]
    assert int(restored.step) == 3 and loader == {"epoch": 0, "position": 3}
    assert_trees_equal(restored.params, state.params)
    assert_trees_equal(restored.opt_state, state.opt_state)
    assert checkpointer.restore_config() == (TINY, TRAIN)


def test_restore_reshards_onto_another_mesh(saved):
    directory, state = saved
    mesh = make_mesh("data=2,fsdp=2,tensor=2")
    other = build_steps(TINY, dataclasses.replace(TRAIN, mesh="data=2,fsdp=2,tensor=2"), mesh)
    restored, _ = Checkpointer(directory).restore(other.abstract_state)
    embedding = restored.params["embed"]["embedding"]
    assert embedding.sharding == other.state_shardings.params["embed"]["embedding"]
    assert {s.data.shape for s in embedding.addressable_shards} == {(128 // 2, 32 // 2)}
    assert_trees_equal(restored.params, state.params)


def test_unfinalized_save_is_ignored(saved, tmp_path):
    directory, _ = saved
    copy = tmp_path / "checkpoints"
    shutil.copytree(directory / "2", copy / "2")
    shutil.copytree(directory / "3", copy / "4.orbax-checkpoint-tmp-1234")  # killed mid-save
    checkpointer = Checkpointer(copy)
    assert checkpointer.latest_step() == 2
    restored, loader = checkpointer.restore(
        build_steps(TINY, TRAIN, make_mesh("fsdp=8")).abstract_state
    )
    assert int(restored.step) == 2 and loader["position"] == 2


def test_load_model_returns_config_and_params_only(saved):
    directory, state = saved
    config, params = load_model(directory, step=2)
    assert config == TINY
    assert_trees_equal(params, state.params)


def test_missing_checkpoint_errors_name_the_directory(tmp_path):
    with pytest.raises(CheckpointError, match=str(tmp_path / "nowhere")):
        load_model(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        load_model(tmp_path)
