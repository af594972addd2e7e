"""Benchmark generation speed: prefill and KV-cached decode tokens/s, and the per-token cost of
recomputing the whole sequence without a cache. Random-init parameters (speed does not depend on
training). Timings are the best of --repeats runs after a warm-up compile, since the machine may
be shared.

    python -m core.bench_generate --config test --batch-sizes 1,8 --json bench.json
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from core.cli import run_main, write_json
from core.config import ModelConfig
from core.generate import GREEDY, GenerationError, decode, left_pad, prefill
from core.model import Params, Transformer, init_params
from core.run_flags import add_run_config_args, model_config_from_args


class BenchError(ValueError):
    """A bad benchmark flag; the message names it."""


def _best_seconds(run: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(run())
        best = min(best, time.perf_counter() - start)
    return best


def _recompute_step(config: ModelConfig) -> Callable[[Params, jax.Array], jax.Array]:
    """One greedy step without a cache: a full forward pass, logits for the last position only."""
    model = Transformer(config)

    @jax.jit
    def step(params: Params, tokens: jax.Array) -> jax.Array:
        hidden = model.apply({"params": params}, tokens, return_hidden=True)
        logits = model.apply({"params": params}, hidden[:, -1:], method=Transformer.logits)
        return jnp.argmax(logits[:, 0], axis=-1)

    return step


def bench_batch(
    params: Params,
    config: ModelConfig,
    batch: int,
    prompt_len: int,
    new_tokens: int,
    repeats: int,
    seed: int,
) -> dict[str, float]:
    """Prefill and decode speed, and recompute cost per step, at one batch size."""
    rng = np.random.default_rng(seed)
    prompts = rng.integers(0, config.vocab_size, (batch, prompt_len)).tolist()
    tokens, lengths = left_pad(prompts, prompt_bucket=prompt_len)
    tokens, lengths = jnp.asarray(tokens), jnp.asarray(lengths)
    no_stops = jnp.zeros((0,), jnp.int32)
    key = jax.random.key(seed)

    def run_prefill():
        return prefill(
            params, tokens, lengths, key, config=config, max_new_tokens=new_tokens, sampling=GREEDY
        )

    def run_decode():
        return decode(params, run_prefill(), no_stops, config=config, sampling=GREEDY)

    jax.block_until_ready(run_decode())  # compiles both programs
    prefill_s = _best_seconds(run_prefill, repeats)
    # Decode alone: each timed run gets a fresh prefilled state, since decode donates it.
    decode_s = float("inf")
    for _ in range(repeats):
        state = jax.block_until_ready(run_prefill())
        start = time.perf_counter()
        jax.block_until_ready(decode(params, state, no_stops, config=config, sampling=GREEDY))
        decode_s = min(decode_s, time.perf_counter() - start)
    decode_steps = new_tokens - 1  # the first new token comes from the prefill

    # Without a cache, step t re-reads prompt_len + t tokens; the mean length stands for all.
    recompute = _recompute_step(config)
    mean_len = prompt_len + new_tokens // 2
    sequence = jnp.asarray(rng.integers(0, config.vocab_size, (batch, mean_len)), jnp.int32)
    jax.block_until_ready(recompute(params, sequence))
    recompute_s = _best_seconds(lambda: recompute(params, sequence), repeats)

    cached_step_s = decode_s / decode_steps
    return {
        "prefill_tokens_per_s": batch * prompt_len / prefill_s,
        "decode_tokens_per_s": batch * decode_steps / decode_s,
        "cached_ms_per_step": 1e3 * cached_step_s,
        "recompute_ms_per_step": 1e3 * recompute_s,
        "cache_speedup": recompute_s / cached_step_s,
    }


def _batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) <= 0:
        raise BenchError(f"--batch-sizes must be positive integers like 1,8, got {text!r}")
    return sizes


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_config_args(parser, sys.argv[1:] if argv is None else argv, parts=("model",))
    parser.add_argument("--prompt-len", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--batch-sizes", default="1,8", help="comma-separated, e.g. 1,8")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, object]:
    """The benchmark results for parsed flags."""
    batch_sizes = _batch_sizes(args.batch_sizes)
    for flag in ("prompt_len", "new_tokens", "repeats"):
        if getattr(args, flag) <= 0:
            raise BenchError(f"--{flag.replace('_', '-')} must be positive")
    backend = jax.default_backend()
    config = model_config_from_args(args).for_backend(backend)
    if args.prompt_len + args.new_tokens > config.max_seq_len:
        raise GenerationError(
            f"--prompt-len + --new-tokens ({args.prompt_len + args.new_tokens}) exceeds "
            f"max_seq_len ({config.max_seq_len}) of --config {args.config}"
        )
    params = init_params(config, jax.random.key(args.seed))
    results: dict[str, object] = {
        "backend": backend,
        "config": args.config,
        "dtype": config.dtype,
        "prompt_len": args.prompt_len,
        "new_tokens": args.new_tokens,
        "batch_sizes": batch_sizes,
        "repeats": args.repeats,
        "timing": "best of repeats after a warm-up compile",
    }
    for batch in batch_sizes:
        numbers = bench_batch(
            params, config, batch, args.prompt_len, args.new_tokens, args.repeats, args.seed
        )
        results.update({f"{name}_b{batch}": value for name, value in numbers.items()})
    results["cache_speedup"] = results[f"cache_speedup_b{batch_sizes[0]}"]
    return results


def _bench(args: argparse.Namespace) -> int:
    results = run(args)
    for name, value in results.items():
        print(f"{name:>28}: {value:.1f}" if isinstance(value, float) else f"{name:>28}: {value}")
    if args.json:
        write_json(args.json, results)
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: print the results and optionally write them as JSON."""
    args = _parse_args(argv)
    return run_main(lambda: _bench(args))


if __name__ == "__main__":
    sys.exit(main())
