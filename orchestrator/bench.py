"""Benchmark the orchestrator: batched concurrent execution against running subtasks one after
another, and requests/s under concurrent clients.

Each request plans into three independent subtasks. "sequential" runs them one per generate call,
one call at a time; "batched" sends each specialist's share in one call, specialists at once.
Specialists are TEST-config checkpoints, or endpoints serving them, from --specialist
LANG=RUN_DIR|URL (or outputs/<lang>-test); with none, random-init TEST models with a tokenizer
trained on this repo's sources stand in (speed does not depend on the weights; the output says
which was used). Timings are the best of --repeats after a warm-up (the machine may be shared).
Parts are not repaired (--max-repairs 0), so both modes do the same work whatever the weights
write. Throughput is measured twice: with one call at a time per specialist, and with concurrent
requests' calls merged (sharing.py; an endpoint is called concurrently in both, its server
batches).

    python -m orchestrator.bench --json bench.json
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jax

from core.cli import run_main
from core.config import TEST
from core.inference import CheckpointCompleter
from core.model import init_params
from core.tokenizer import train_tokenizer
from orchestrator.cli import load_specialists
from orchestrator.executor import ExecutionConfig
from orchestrator.pipeline import Orchestrator
from orchestrator.registry import build_registry, default_run_dirs, parse_specialist_flags
from orchestrator.rules_planner import RulePlanner

REQUESTS = {
    "one_specialist": "Write a Python function that parses ISO dates. Write a Python class for "
    "a stack. Write a Python script that counts words in a file.",
    "two_specialists": "Write a Python function that parses ISO dates. Write a Python class "
    "for a stack. Write a SQL query that counts orders per day.",
}
THROUGHPUT_REQUEST = "two_specialists"


def _random_models(languages: list[str], seed: int) -> dict[str, CheckpointCompleter]:
    sources = sorted(Path(__file__).resolve().parent.parent.glob("*/*.py"))
    tokenizer = train_tokenizer(path.read_text() for path in sources)
    config = TEST.for_backend(jax.default_backend())
    return {
        language: CheckpointCompleter(
            config, init_params(config, jax.random.key(seed + i)), tokenizer
        )
        for i, language in enumerate(languages)
    }


async def _seconds(orchestrator: Orchestrator, request: str, config: ExecutionConfig) -> float:
    start = time.perf_counter()
    await orchestrator.answer(request, config)
    return time.perf_counter() - start


async def _latency(
    orchestrator: Orchestrator, request: str, base: ExecutionConfig, repeats: int
) -> dict[str, Any]:
    sequential = dataclasses.replace(base, sequential=True)
    plan = orchestrator.planner.plan(request).plan
    for config in (sequential, base):  # compile every shape both modes use
        await orchestrator.answer(request, config)
    timings: dict[str, list[float]] = {"sequential": [], "batched": []}
    for _ in range(repeats):  # interleaved, so load changes hit both modes alike
        timings["sequential"].append(await _seconds(orchestrator, request, sequential))
        timings["batched"].append(await _seconds(orchestrator, request, base))
    best = {mode: min(values) for mode, values in timings.items()}
    return {
        "request": request,
        "subtasks": [
            f"{s.language}->{orchestrator.registry.route(s.language).entry.language.name}"
            for s in plan.subtasks
        ],
        "sequential_s": best["sequential"],
        "batched_s": best["batched"],
        "ratio": best["batched"] / best["sequential"],
        "all_s": timings,
    }


async def _throughput(
    orchestrator: Orchestrator, request: str, clients: int, per_client: int
) -> dict[str, Any]:
    async def client() -> None:
        for _ in range(per_client):
            await orchestrator.answer(request)

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - start
    total = clients * per_client
    return {
        "request": request,
        "clients": clients,
        "requests": total,
        "seconds": seconds,
        "requests_per_s": total / seconds,
    }


async def _run(
    args: argparse.Namespace, serial: Orchestrator, coalescing: Orchestrator
) -> dict[str, Any]:
    latency = {
        name: await _latency(serial, request, serial.config, args.repeats)
        for name, request in REQUESTS.items()
    }
    request = REQUESTS[THROUGHPUT_REQUEST]
    await coalescing.answer(request)  # compile the merged batch shapes
    throughput = {
        "serial": await _throughput(serial, request, args.clients, args.requests_per_client),
        "coalescing": await _throughput(
            coalescing, request, args.clients, args.requests_per_client
        ),
    }
    return {"latency": latency, "throughput": throughput}


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="orchestrator.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--specialist",
        action="append",
        default=[],
        metavar="LANG=RUN_DIR|URL[#MODEL]",
        help="a TEST-config run directory or an endpoint serving one (repeatable)",
    )
    parser.add_argument(
        "--random-languages",
        default="python,sql",
        help="random-init specialists when no run directory exists (default: %(default)s)",
    )
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--max-repairs", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best counts")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests-per-client", type=int, default=2)
    parser.add_argument(
        "--coalesce-prompts",
        type=int,
        default=8,
        help="batch limit of the coalescing throughput run (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser.parse_args(argv)


def _bench(args: argparse.Namespace) -> int:
    sources = default_run_dirs() | parse_specialist_flags(args.specialist)
    if sources:
        models: dict[str, Any] = load_specialists(sources, api_key=os.environ.get("OPENAI_API_KEY"))
        weights = {lang: str(source) for lang, source in sources.items()}
    else:
        languages = [name.strip() for name in args.random_languages.split(",") if name.strip()]
        models = _random_models(languages, args.seed)
        weights = {
            lang: "random-init TEST config (speed does not depend on the weights)"
            for lang in languages
        }
    serial = build_registry(models)
    coalescing = build_registry(models, coalesce_prompts=args.coalesce_prompts)
    config = ExecutionConfig(
        max_new_tokens=args.max_new_tokens, max_repairs=args.max_repairs, seed=args.seed
    )
    with ThreadPoolExecutor(16) as pool:
        results = asyncio.run(
            _run(
                args,
                Orchestrator(RulePlanner(), serial, pool, config),
                Orchestrator(RulePlanner(), coalescing, pool, config),
            )
        )
    results |= {
        "weights": weights,
        "device": jax.devices()[0].device_kind,
        "cpu_count": os.cpu_count(),
        "max_new_tokens": args.max_new_tokens,
        "max_repairs": args.max_repairs,
        "coalesce_prompts": args.coalesce_prompts,
        "goal": "batched_s <= 0.5 x sequential_s",
    }
    for name, entry in results["latency"].items():
        print(
            f"{name:16s} {', '.join(entry['subtasks'])}: sequential {entry['sequential_s']:.2f} s,"
            f" batched {entry['batched_s']:.2f} s, ratio {entry['ratio']:.2f}"
        )
    for mode, entry in results["throughput"].items():
        print(
            f"throughput       {mode}: {entry['clients']} clients, {entry['requests']} requests, "
            f"{entry['requests_per_s']:.2f} requests/s"
        )
    for language, source in weights.items():
        print(f"weights          {language}: {source}")
    if args.json:
        try:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        except OSError as error:
            raise ValueError(f"cannot write --json {args.json}: {error.strerror}") from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print a summary and write --json; user errors are one line, exit 2."""
    args = _parse_args(argv)
    return run_main(lambda: _bench(args))


if __name__ == "__main__":
    sys.exit(main())
