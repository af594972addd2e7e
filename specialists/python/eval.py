"""Evaluate the Python specialist, or any model's samples, on HumanEval and MBPP.

    python -m specialists.python.eval --checkpoint DIR [--benchmark all] [--n-samples 10 --temperature 0.8]
    python -m specialists.python.eval --samples completions.jsonl --benchmark humaneval
    python -m specialists.python.eval --write-canonical canonical.jsonl --benchmark mbpp --split all

Writes OUT/results.json (summary, sandbox protections, per-task results) and prints a table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

from evals.cli import EvalSuite, eval_main
from evals.toolchain import sandbox_python
from specialists.python.benchmarks import (
    MBPP_SPLITS,
    canonical_sample,
    load_humaneval,
    load_mbpp,
    python_benchmark,
)


def add_mbpp_arguments(parser: argparse.ArgumentParser) -> None:
    """MBPP's split, data file and few-shot prompt."""
    parser.add_argument(
        "--split", choices=sorted(MBPP_SPLITS), default="test", help="MBPP split (default: test)"
    )
    parser.add_argument(
        "--mbpp-path", type=Path, help="MBPP jsonl (default: the shared data dir, else the hub)"
    )
    parser.add_argument(
        "--mbpp-few-shot", action="store_true", help="prefix MBPP prompts with tasks 2-4 solved"
    )


def mbpp_context(args: argparse.Namespace, benchmarks: Collection[str]) -> dict[str, Any]:
    """The MBPP settings a result depends on."""
    if "mbpp" not in benchmarks:
        return {}
    return {"mbpp_split": args.split, "mbpp_few_shot": args.mbpp_few_shot}


SUITE = EvalSuite(
    language="python",
    description="Score a checkpoint or a samples file on HumanEval and MBPP in a sandbox.",
    benchmarks={
        "humaneval": lambda args: load_humaneval(),
        "mbpp": lambda args: load_mbpp(args.mbpp_path, args.split, args.mbpp_few_shot),
    },
    toolchain=sandbox_python,
    make_benchmark=python_benchmark,
    perplexity_suffix=".py",
    add_arguments=add_mbpp_arguments,
    canonical=canonical_sample,
    context=mbpp_context,
)


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print one line and exit with status 2."""
    return eval_main(SUITE, argv)


if __name__ == "__main__":
    sys.exit(main())
