"""pass@k against values computed by hand from 1 - C(n-c, k) / C(n, k)."""

from __future__ import annotations

import pytest

from evals.errors import EvalError
from evals.metrics import pass_at_k, reportable_ks


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 2 / 5),
        (5, 2, 2, 1 - 3 / 10),  # C(3,2)=3, C(5,2)=10
        (10, 3, 5, 1 - 21 / 252),  # C(7,5)=21, C(10,5)=252
        (10, 0, 5, 0.0),
        (4, 3, 2, 1.0),  # n - c < k: every draw of 2 holds a correct one
        (200, 1, 100, 0.5),
    ],
)
def test_single_task(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k([n], [c], k) == pytest.approx(expected)


def test_mean_over_tasks() -> None:
    assert pass_at_k([2, 2, 2], [0, 1, 2], 1) == pytest.approx((0 + 0.5 + 1) / 3)


def test_needs_k_samples_per_task() -> None:
    with pytest.raises(EvalError, match="at least 10 samples"):
        pass_at_k([20, 5], [1, 1], 10)


def test_reportable_ks() -> None:
    assert reportable_ks([1, 1], [1, 10, 100]) == [1]
    assert reportable_ks([5, 7], [1, 10, 100]) == [1, 5]
    assert reportable_ks([200, 200], [1, 10, 100]) == [1, 10, 100, 200]
