"""Evaluate the JavaScript specialist, or any model's samples, on MultiPL-E HumanEval-js.

python -m specialists.js.eval --checkpoint DIR [--n-samples 10 --temperature 0.8]
python -m specialists.js.eval --samples completions.jsonl   (records: name, completion)
"""

from __future__ import annotations

import sys

from evals.cli import eval_main
from evals.multipl_e import multipl_e_suite
from specialists.js.benchmarks import BENCHMARK, DATA_FILE, LIMITS, find_node, js_runner

SUITE = multipl_e_suite("js", BENCHMARK, DATA_FILE, find_node, js_runner, ".js", LIMITS)

if __name__ == "__main__":
    sys.exit(eval_main(SUITE))
