"""Benchmark the training step: tokens/s, step time and MFU on the current backend.

    PYTHONPATH=. python -m core.bench_train --config test --batch-size 8 --seq-len 512
    PYTHONPATH=. python -m core.bench_train --config prod --batch-size 16 --seq-len 2048

Random token batches; the first step (compilation) is not timed. Compute runs in the backend's
dtype (float32 on the CPU, the config's bfloat16 elsewhere); params stay float32.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from core.cli import add_dataclass_args, dataclass_from_args
from core.config import (
    ATTENTION_IMPLEMENTATIONS,
    PRESETS,
    REMAT_POLICIES,
    ConfigError,
    ModelConfig,
    TrainConfig,
)
from core.flops import mfu, peak_flops, training_flops_per_step
from core.model import count_params
from core.sharding import MeshError, global_batch, make_mesh, maybe_initialize_distributed
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
    parser.add_argument("--config", choices=sorted(PRESETS), default="test", help="model preset")
    parser.add_argument(
        "--remat",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="rematerialise each block in the backward pass (default: the preset's setting)",
    )
    parser.add_argument(
        "--remat-policy",
        choices=REMAT_POLICIES,
        help="what remat keeps from the forward pass (full: only each block's input; dots: also "
        "the weight matmuls' outputs); default: the preset's",
    )
    parser.add_argument(
        "--attention",
        choices=ATTENTION_IMPLEMENTATIONS,
        help="training attention kernel (default: the preset's, auto: cudnn flash attention on a "
        "GPU, else einsum)",
    )
    parser.add_argument(
        "--scan-layers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the layers as one lax.scan or unrolled (default: the preset's setting)",
    )
    parser.add_argument("--timed-steps", type=int, default=5, help="steps timed after compiling")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    add_dataclass_args(parser, TrainConfig)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    maybe_initialize_distributed()
    try:
        train_config = dataclass_from_args(TrainConfig, args)
        model_config = PRESETS[args.config]
        overrides = {
            "remat": args.remat,
            "remat_policy": args.remat_policy,
            "attention": args.attention,
            "scan_layers": args.scan_layers,
        }
        model_config = dataclasses.replace(
            model_config, **{name: value for name, value in overrides.items() if value is not None}
        )
        if args.timed_steps < 1:
            raise ConfigError(f"--timed-steps must be positive, got {args.timed_steps}")
        results = benchmark(model_config, train_config, args.timed_steps)
    except (ConfigError, MeshError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    results["config"] = args.config
    print(
        f"{args.config} on {results['devices']}x {results['device_kind']} ({results['mesh']}, "
        f"{results['compute_dtype']}): {results['tokens_per_s']:,.0f} tokens/s, "
        f"{results['step_s'] * 1e3:.0f} ms/step, MFU {results['mfu']:.1%} of "
        f"{results['peak_flops'] / 1e12:.2f} TFLOP/s peak"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
