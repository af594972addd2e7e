"""Benchmark the training step: tokens/s, step time and MFU on the current backend, or with
--memory its compiled memory per device (nothing is allocated or run).

    PYTHONPATH=. python -m core.bench_train --config test --batch-size 8 --seq-len 512
    PYTHONPATH=. python -m core.bench_train --config prod --batch-size 16 --seq-len 2048
    PYTHONPATH=. python -m core.bench_train --config prod --batch-size 16 --seq-len 2048 \
        --memory --as-backend tpu [--attention einsum] [--remat]

Random token batches; the first step (compilation) is not timed. Compute runs in the backend's
dtype (float32 on the CPU, the config's bfloat16 elsewhere); params stay float32. --as-backend
compiles the step as configured for another backend (its compute dtype and "auto" attention) on
the devices at hand, e.g. a TPU's bfloat16 splash-attention step on the CPU: XLA's CPU buffer
assignment then stands in for the TPU's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from core.cli import dataclass_from_args, run_main, write_json
from core.config import ConfigError, ModelConfig, TrainConfig, check_fits
from core.flops import mfu, peak_flops, training_flops_per_step
from core.model import Transformer, count_params
from core.run_flags import add_run_config_args, model_config_from_args
from core.sharding import (
    batch_sharding,
    global_batch,
    make_mesh,
    maybe_initialize_distributed,
    mesh_context,
    replicated,
)
from core.train_step import build_steps, train_step

BACKENDS = ("cpu", "gpu", "tpu")
# XLA's CPU scheduler favours concurrency over memory by default (PROD's splash step: 86 GiB at
# 16 x 2,048, and remat barely mattered); its memory-minimising scheduler stands in better for an
# accelerator's, so --memory sets this before the backend starts (other backends ignore it; as a
# compile option the CPU client ignored it too).
MEMORY_SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"


def _setting(
    model_config: ModelConfig, train_config: TrainConfig, compute_config: ModelConfig
) -> dict[str, Any]:
    """What a measured step ran: devices, mesh, sizes and the model's compute settings."""
    return {
        "devices": jax.device_count(),
        "mesh": train_config.mesh or f"fsdp={jax.device_count()}",
        "compute_dtype": compute_config.dtype,
        "params": count_params(model_config),
        "batch_size": train_config.batch_size,
        "seq_len": train_config.seq_len,
        "grad_accum": train_config.grad_accum,
        "remat": model_config.remat,
        "remat_policy": model_config.remat_policy,
        "attention": compute_config.attention,
        "scan_layers": model_config.scan_layers,
    }


def benchmark(
    model_config: ModelConfig, train_config: TrainConfig, timed_steps: int
) -> dict[str, Any]:
    """Time `timed_steps` train steps after one compiling step; returns the measured numbers."""
    mesh = make_mesh(train_config.mesh)
    compute_config = model_config.for_backend(jax.default_backend())
    steps = build_steps(compute_config, train_config, mesh)
    state = steps.init()
    local_rows = train_config.batch_size // jax.process_count()
    rng = np.random.default_rng(train_config.seed)
    batches = [
        global_batch(
            rng.integers(
                0, model_config.vocab_size, (local_rows, train_config.seq_len + 1), dtype=np.int32
            ),
            mesh,
        )
        for _ in range(2)
    ]
    state, metrics = steps.train(state, batches[0])
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for i in range(timed_steps):
        state, metrics = steps.train(state, batches[i % 2])
    jax.block_until_ready(metrics)
    step_s = (time.perf_counter() - start) / timed_steps

    peak = peak_flops()
    flops_per_step = training_flops_per_step(
        model_config, train_config.batch_size, train_config.seq_len
    )
    return {
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        **_setting(model_config, train_config, compute_config),
        "step_s": step_s,
        "tokens_per_s": train_config.batch_size * train_config.seq_len / step_s,
        "flops_per_step": flops_per_step,
        "peak_flops": peak,
        "mfu": mfu(flops_per_step, step_s, peak),
        "final_loss": float(metrics["loss"]),
    }


def memory(
    model_config: ModelConfig, train_config: TrainConfig, backend: str | None = None
) -> dict[str, Any]:
    """The compiled training step's memory per device (bytes), as configured for `backend`
    (default: the one running); it is lowered from shapes only, nothing is allocated."""
    mesh = make_mesh(train_config.mesh)
    compute_config = model_config.for_backend(backend or jax.default_backend())
    steps = build_steps(compute_config, train_config, mesh)
    # build_steps' own jit of the step (only its compiled function is returned, not the jit).
    training_model = Transformer(compute_config, deterministic=not compute_config.dropout)
    step = jax.jit(
        lambda state, rows: train_step(
            state, rows, model=training_model, config=train_config, mesh=mesh
        ),
        in_shardings=(steps.state_shardings, batch_sharding(mesh)),
        out_shardings=(steps.state_shardings, replicated(mesh)),
        donate_argnums=0,
    )
    rows = jax.ShapeDtypeStruct(
        (train_config.batch_size, train_config.seq_len + 1), np.int32, sharding=batch_sharding(mesh)
    )
    with mesh_context(mesh):
        stats = step.lower(steps.abstract_state, rows).compile().memory_analysis()
    argument, output = stats.argument_size_in_bytes, stats.output_size_in_bytes
    alias, temp = stats.alias_size_in_bytes, stats.temp_size_in_bytes
    return {
        "backend": jax.default_backend(),
        "configured_for": backend or jax.default_backend(),
        **_setting(model_config, train_config, compute_config),
        "argument_bytes": argument,
        "output_bytes": output,
        "alias_bytes": alias,
        "temp_bytes": temp,
        # What the step holds at its peak: its inputs, the outputs not written over donated
        # inputs, and XLA's temporaries (one block, already shared by buffers that are never
        # live at once).
        "peak_bytes": argument + output - alias + temp,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m core.bench_train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--timed-steps", type=int, default=5, help="steps timed after compiling")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument(
        "--memory",
        action="store_true",
        help="print the compiled step's memory per device instead of timing it",
    )
    parser.add_argument(
        "--as-backend",
        choices=BACKENDS,
        help="with --memory: configure the step for this backend (dtype, 'auto' attention)",
    )
    add_run_config_args(parser, sys.argv[1:] if argv is None else argv, parts=("model", "train"))
    return parser.parse_args(argv)


def _bench(args: argparse.Namespace) -> int:
    maybe_initialize_distributed()
    model_config = model_config_from_args(args)
    train_config = dataclass_from_args(TrainConfig, args)
    check_fits(model_config, train_config)
    if args.as_backend and not args.memory:
        raise ConfigError("--as-backend needs --memory (a timed step runs where it is)")
    if args.memory:
        results = memory(model_config, train_config, args.as_backend) | {"config": args.config}
        gib = 2.0**30
        print(
            f"{args.config}, {results['batch_size']} x {results['seq_len']} configured for "
            f"{results['configured_for']} ({results['compute_dtype']}, {results['attention']} "
            f"attention, remat {'on' if results['remat'] else 'off'}), compiled for "
            f"{results['devices']}x {results['backend']} ({results['mesh']}): peak "
            f"{results['peak_bytes'] / gib:.2f} GiB per device (arguments "
            f"{results['argument_bytes'] / gib:.2f}, temporaries {results['temp_bytes'] / gib:.2f})"
        )
        if args.json:
            write_json(args.json, results)
        return 0
    if args.timed_steps < 1:
        raise ConfigError(f"--timed-steps must be positive, got {args.timed_steps}")
    results = benchmark(model_config, train_config, args.timed_steps) | {"config": args.config}
    print(
        f"{args.config} on {results['devices']}x {results['device_kind']} ({results['mesh']}, "
        f"{results['compute_dtype']}): {results['tokens_per_s']:,.0f} tokens/s, "
        f"{results['step_s'] * 1e3:.0f} ms/step, MFU {results['mfu']:.1%} of "
        f"{results['peak_flops'] / 1e12:.2f} TFLOP/s peak"
    )
    if args.json:
        write_json(args.json, results)
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; user errors (bad flags, configs that do not fit) are one line, exit 2."""
    args = parse_args(argv)
    flags = os.environ.get("XLA_FLAGS", "")
    if args.memory and MEMORY_SCHEDULER_FLAG.split("=")[0] not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {MEMORY_SCHEDULER_FLAG}".strip()
    return run_main(lambda: _bench(args))


if __name__ == "__main__":
    sys.exit(main())
