"""Evaluate the Rust specialist, or any model's samples, on MultiPL-E HumanEval-rs.

python -m specialists.rust.eval --checkpoint DIR [--n-samples 10 --temperature 0.8]
python -m specialists.rust.eval --samples completions.jsonl   (records: name, completion)
"""

from __future__ import annotations

import sys

from evals.cli import eval_main
from evals.multipl_e import multipl_e_suite
from specialists.rust.benchmarks import BENCHMARK, DATA_FILE, LIMITS, find_rustc, rust_runner

SUITE = multipl_e_suite("rust", BENCHMARK, DATA_FILE, find_rustc, rust_runner, ".rs", LIMITS)

if __name__ == "__main__":
    sys.exit(eval_main(SUITE))
