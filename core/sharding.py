"""Device mesh (data, fsdp, tensor), logical-axis rules, and placement of params and batches."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import flax.linen as nn
import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")

# Logical axis -> mesh axes, for parameters (their axis names, core/model.py) and activations
# (`activation_*`: a batch's rows split over data × fsdp, the model dimension replicated, the
# tensor-parallel dimensions over "tensor"). Names not listed are replicated.
LOGICAL_AXIS_RULES: tuple[tuple[str, str | tuple[str, ...] | None], ...] = (
    ("activation_batch", BATCH_AXES),
    ("activation_length", None),
    ("activation_embed", None),
    ("activation_mlp", "tensor"),
    ("activation_vocab", "tensor"),
    ("embed", "fsdp"),
    ("vocab", "tensor"),
    ("heads", "tensor"),
    ("mlp", "tensor"),
    ("kv_heads", None),
    ("head_dim", None),
    ("norm", None),
    ("layers", None),
)


class MeshError(ValueError):
    """A bad `--mesh` specification."""


def parse_mesh(spec: str, device_count: int) -> dict[str, int]:
    """Axis sizes from a `--mesh` string like "data=2,fsdp=4".

    Unnamed axes have size 1; an empty string puts every device on the fsdp axis.
    """
    sizes = dict.fromkeys(MESH_AXES, 1)
    if not spec.strip():
        sizes["fsdp"] = device_count
        return sizes
    for part in spec.split(","):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in MESH_AXES:
            raise MeshError(
                f"--mesh {spec!r}: unknown axis {name!r}; axes are {', '.join(MESH_AXES)}"
            )
        if not value.strip().isdigit() or int(value) < 1:
            raise MeshError(f"--mesh {spec!r}: axis {name!r} needs a positive integer size")
        sizes[name] = int(value)
    if math.prod(sizes.values()) != device_count:
        raise MeshError(
            f"--mesh {spec!r}: axis sizes multiply to {math.prod(sizes.values())} "
            f"but there are {device_count} devices"
        )
    return sizes


def make_mesh(spec: str = "", devices: Sequence[jax.Device] | None = None) -> Mesh:
    """The (data, fsdp, tensor) mesh described by `spec` over `devices` (default: every process's)."""
    devices = jax.devices() if devices is None else devices
    sizes = parse_mesh(spec, len(devices))
    return jax.make_mesh(
        tuple(sizes[a] for a in MESH_AXES),
        MESH_AXES,
        axis_types=(AxisType.Auto,) * len(MESH_AXES),
        devices=devices,
    )


def logical_to_shardings(logical_specs: Any, mesh: Mesh) -> Any:
    """NamedShardings on `mesh` for a tree of logical-axis PartitionSpecs."""
    return nn.logical_to_mesh_sharding(logical_specs, mesh, LOGICAL_AXIS_RULES)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Rows of a [batch, length] array split over data × fsdp."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    """A value copied to every device of `mesh`."""
    return NamedSharding(mesh, PartitionSpec())


def global_batch(local_rows: Any, mesh: Mesh) -> Any:
    """The global batch array from this process's rows (its slice of the global batch); every
    array of a tuple of them (rows with their loss mask) alike."""
    sharding = batch_sharding(mesh)
    return jax.tree.map(
        lambda rows: jax.make_array_from_process_local_data(sharding, rows), local_rows
    )


def maybe_initialize_distributed() -> bool:
    """Join a multi-host run when the environment describes one; True when it did.

    Covers an explicit coordinator (JAX_COORDINATOR_ADDRESS, with JAX_NUM_PROCESSES and
    JAX_PROCESS_ID) and Cloud TPU pod slices (TPU_WORKER_HOSTNAMES lists several hosts), for
    which jax.distributed.initialize() discovers everything itself.
    """
    multi_host_tpu = len(os.environ.get("TPU_WORKER_HOSTNAMES", "").split(",")) > 1
    if not (os.environ.get("JAX_COORDINATOR_ADDRESS") or multi_host_tpu):
        return False
    jax.distributed.initialize()
    return True


@contextlib.contextmanager
def mesh_context(mesh: Mesh) -> Iterator[None]:
    """Trace under `mesh` and the logical-axis rules, so the model's activation constraints apply."""
    with jax.set_mesh(mesh), nn.logical_axis_rules(LOGICAL_AXIS_RULES):
        yield
