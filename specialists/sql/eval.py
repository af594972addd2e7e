"""Evaluate the SQL specialist, or any model's samples, on Defog sql-eval (SQLite).

    python -m specialists.sql.eval --checkpoint DIR
    python -m specialists.sql.eval --samples completions.jsonl   (records: id, completion)
    python -m specialists.sql.eval --write-canonical gold.jsonl

Accuracy is pass@1; the table adds one row per query category.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evals.cli import EvalSuite, eval_main
from evals.shared_data import data_file
from evals.toolchain import sandbox_python
from specialists.sql.benchmarks import (
    BENCHMARK,
    DATA_DIR,
    canonical_sample,
    load_sql_eval,
    sql_benchmark,
)


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    """Where the questions and databases come from."""
    parser.add_argument(
        "--data", type=Path, help=f"sql-eval directory (default: {DATA_DIR} in shared data)"
    )


SUITE = EvalSuite(
    language="sql",
    description="Score a checkpoint or a samples file on Defog sql-eval (SQLite) in a sandbox.",
    benchmarks={BENCHMARK: lambda args: load_sql_eval(data_file(args.data, DATA_DIR, "--data"))},
    toolchain=sandbox_python,
    make_benchmark=sql_benchmark,
    perplexity_suffix=".sql",
    add_arguments=add_data_argument,
    canonical=canonical_sample,
    group=lambda task: task.category,
)

if __name__ == "__main__":
    sys.exit(eval_main(SUITE))
