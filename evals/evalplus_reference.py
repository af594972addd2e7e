"""EvalPlus's own evaluator (evalplus 0.3.1) as the reference for the HumanEval+/MBPP+ scoring tests.

    python -P evals/evalplus_reference.py JOB.json RESULT.json

(-P keeps evals/ off sys.path: its evalplus.py would shadow the package.)

It runs in its own resolve (`evalplus`), so the tests call it as a program (the
`evals:evalplus_reference` pex). JOB.json:

    {"dataset": "humaneval" | "mbpp", "data": PATH (the HumanEval+ or MBPP+ file),
     "samples": [{"task_id": ..., "solution": ...}, ...],
     "inputs": PATH (optional: pickle every task's (base_input, plus_input) there, as EvalPlus
               loads them)}

EvalPlus reads the file through its override variable (HUMANEVAL_OVERRIDE_PATH or
MBPP_OVERRIDE_PATH: nothing is downloaded), computes the expected outputs of the samples' tasks
with its get_groundtruth (its cache in a temporary directory), and checks every sample with
check_correctness as its `evaluate` does (fast check, default time limits, its process pool).
RESULT.json: {"results": [{"task_id", "base", "plus"}, ...]}, EvalPlus's statuses ("pass",
"fail", "timeout") in sample order.
"""

import json
import multiprocessing
import os
import pickle
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def main(job_path: str, result_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    dataset = job["dataset"]
    override = {"humaneval": "HUMANEVAL_OVERRIDE_PATH", "mbpp": "MBPP_OVERRIDE_PATH"}[dataset]
    os.environ[override] = job["data"]  # read when evalplus.data is imported
    with tempfile.TemporaryDirectory() as cache:
        os.environ["XDG_CACHE_HOME"] = cache  # evalplus's cache of expected outputs
        from evalplus.data import get_human_eval_plus, get_mbpp_plus
        from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS
        from evalplus.evaluate import check_correctness, get_groundtruth

        problems = get_human_eval_plus() if dataset == "humaneval" else get_mbpp_plus()
        if "inputs" in job:
            inputs = {key: (p["base_input"], p["plus_input"]) for key, p in problems.items()}
            Path(job["inputs"]).write_bytes(pickle.dumps(inputs))
        selected = {sample["task_id"]: problems[sample["task_id"]] for sample in job["samples"]}
        not_none = MBPP_OUTPUT_NOT_NONE_TASKS if dataset == "mbpp" else []
        expected = get_groundtruth(selected, f"reference-{dataset}", not_none)
        workers = max(1, multiprocessing.cpu_count() // 2)  # as evalplus.evaluate
        with ProcessPoolExecutor(max_workers=workers) as executor:
            futures = [
                executor.submit(
                    check_correctness,
                    dataset,
                    index,
                    selected[sample["task_id"]],
                    sample["solution"],
                    expected[sample["task_id"]],
                    False,  # base_only
                    True,  # fast_check: evaluate's default (no --test-details)
                )
                for index, sample in enumerate(job["samples"])
            ]
            results = [future.result() for future in futures]
    Path(result_path).write_text(
        json.dumps(
            {
                "results": [
                    {"task_id": r["task_id"], "base": r["base"][0], "plus": r["plus"][0]}
                    for r in results
                ]
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
