"""Benchmark the training step: tokens/s, step time and MFU on the current backend.

    PYTHONPATH=. python -m core.bench_train --config test --batch-size 8 --seq-len 512
    PYTHONPATH=. python -m core.bench_train --config prod --batch-size 16 --seq-len 2048

Random token batches; the first step (compilation) is not timed. Compute runs in the backend's
dtype (float32 on the CPU, the config's bfloat16 elsewhere); params stay float32.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from core.cli import dataclass_from_args, run_main, write_json
from core.config import ConfigError, ModelConfig, TrainConfig, check_fits
from core.flops import mfu, peak_flops, training_flops_per_step
from core.model import count_params
from core.run_flags import add_run_config_args, model_config_from_args
from core.sharding import global_batch, make_mesh, maybe_initialize_distributed
from core.train_step import build_steps


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
        "step_s": step_s,
        "tokens_per_s": train_config.batch_size * train_config.seq_len / step_s,
        "flops_per_step": flops_per_step,
        "peak_flops": peak,
        "mfu": mfu(flops_per_step, step_s, peak),
        "final_loss": float(metrics["loss"]),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m core.bench_train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--timed-steps", type=int, default=5, help="steps timed after compiling")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    add_run_config_args(parser, sys.argv[1:] if argv is None else argv, parts=("model", "train"))
    return parser.parse_args(argv)


def _bench(args: argparse.Namespace) -> int:
    maybe_initialize_distributed()
    model_config = model_config_from_args(args)
    train_config = dataclass_from_args(TrainConfig, args)
    check_fits(model_config, train_config)
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
    return run_main(lambda: _bench(args))


if __name__ == "__main__":
    sys.exit(main())
