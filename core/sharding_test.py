"""Tests for mesh parsing and logical-axis placement (8 simulated CPU devices, see BUILD)."""

import dataclasses

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from core.model import logical_axes
from core.sharding import (
    MeshError,
    global_batch,
    logical_to_shardings,
    make_mesh,
    parse_mesh,
)
from core.testing import TINY_TRAINED

TINY = dataclasses.replace(TINY_TRAINED, max_seq_len=32)


def test_parse_mesh_defaults_to_fsdp_over_all_devices():
    assert parse_mesh("", 8) == {"data": 1, "fsdp": 8, "tensor": 1}
    assert parse_mesh("data=2,fsdp=4", 8) == {"data": 2, "fsdp": 4, "tensor": 1}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("data=3", "multiply to 3 but there are 8"),
        ("pipe=8", "unknown axis 'pipe'"),
        ("fsdp=x", "positive integer"),
        ("fsdp=0,data=8", "positive integer"),
    ],
)
def test_parse_mesh_errors_name_the_flag(spec, message):
    with pytest.raises(MeshError, match="--mesh") as err:
        parse_mesh(spec, 8)
    assert message in str(err.value)


def test_params_follow_the_logical_axis_rules():
    mesh = make_mesh("data=2,fsdp=2,tensor=2") if jax.device_count() == 8 else make_mesh()
    shardings = logical_to_shardings(logical_axes(TINY), mesh)
    assert shardings["embed"]["embedding"].spec == P("tensor", "fsdp")
    assert shardings["layers"]["mlp"]["down"]["kernel"].spec == P(None, "tensor", "fsdp")
    assert shardings["layers"]["attention"]["key"]["kernel"].spec == P(None, "fsdp", None, None)
    assert shardings["final_norm"]["scale"].spec == P(None)
    unrolled = logical_to_shardings(
        logical_axes(dataclasses.replace(TINY, scan_layers=False)), mesh
    )
    assert unrolled["layer_1"]["mlp"]["down"]["kernel"].spec == P("tensor", "fsdp")


def test_global_batch_splits_rows_over_data_and_fsdp():
    mesh = make_mesh("data=2,fsdp=4") if jax.device_count() == 8 else make_mesh()
    rows = np.arange(8 * 5, dtype=np.int32).reshape(8, 5)
    batch = global_batch(rows, mesh)
    np.testing.assert_array_equal(np.asarray(batch), rows)
    assert {shard.data.shape for shard in batch.addressable_shards} == {
        (8 // jax.device_count(), 5)
    }
