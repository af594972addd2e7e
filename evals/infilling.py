"""Infilling tasks from reference solutions: each line, or each block of lines, masked in turn
(the single-line and multi-line benchmarks of Fried et al., 2022, that Bavarian et al., 2022
score fill-in-the-middle on).

The rule is the one the `human-eval-infilling` files were made by: the solution, trailing
whitespace stripped, is split into lines; a mask is a line (single-line) or a block of
consecutive lines (multi-line) whose first and last lines are not blank. The middle is the masked
lines, the text before is the lines above and the text after the lines below, every line with
its newline, so before + middle + after is the solution. On HumanEval's 164 solutions this gives
the files' 1,033 single-line and 5,815 multi-line tasks (InCoder's own script also masks blocks
that begin or end on a blank line: 6,632). A mask is named as in those files' task ids: `L3`
(line 3, counted from 0), `L1_L4` (lines 1 to 4).
"""

from __future__ import annotations

import dataclasses

SINGLE_LINE, MULTI_LINE = "single-line", "multi-line"
KINDS = (SINGLE_LINE, MULTI_LINE)


@dataclasses.dataclass(frozen=True)
class LineMask:
    """Lines `first`..`last` of a solution masked: the text before, the middle, the text after."""

    first: int
    last: int
    before: str
    middle: str
    after: str

    def name(self, kind: str) -> str:
        """The mask's part of a task id: "L3" (single-line), "L1_L4" (multi-line)."""
        return f"L{self.first}" if kind == SINGLE_LINE else f"L{self.first}_L{self.last}"


def line_masks(solution: str, kind: str) -> list[LineMask]:
    """Every mask of `kind` (SINGLE_LINE or MULTI_LINE) of `solution`, in line order."""
    if kind not in KINDS:
        raise ValueError(f"infilling kind must be one of {KINDS}, got {kind!r}")
    lines = [line + "\n" for line in solution.rstrip().split("\n")]
    filled = [index for index, line in enumerate(lines) if line.strip()]
    spans = [(first, last) for first in filled for last in filled if last >= first]
    if kind == SINGLE_LINE:
        spans = [(first, last) for first, last in spans if first == last]
    return [
        LineMask(
            first=first,
            last=last,
            before="".join(lines[:first]),
            middle="".join(lines[first : last + 1]),
            after="".join(lines[last + 1 :]),
        )
        for first, last in spans
    ]
