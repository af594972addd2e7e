"""Goodput: where a `train` call's wall time went, as MaxText's goodput accounting splits it.

    compile      the first training step's call: tracing and compiling the step (its dispatch
                 returns once the program is built; it runs on the devices afterwards)
    steps        training steps: wall time between metric fetches, less data waits and compile
    data         time the host was blocked on the next batch (`next(batches)` and its transfer)
    eval         evaluation hooks (validation loss, benchmark evals)
    checkpoint   checkpoint saves (the blocking part of an async save, and the final wait)
    restart      restoring a checkpoint to resume
    init         a fresh start's parameters and optimizer state (compiling and running the
                 initialiser, or placing a warm start's weights)
    other        the rest: building the steps, trackers, plots, exports, profiling

Everything is measured on the host clock at points where the host already waits (the loop's
metric fetches, the hooks' own syncs), so accounting adds no device sync to the steady state.
`goodput` is the share of the wall time spent in training steps.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

CATEGORIES = ("compile", "steps", "data", "eval", "checkpoint", "restart", "init", "other")
_MEASURED = CATEGORIES[:-1]


class Goodput:
    """Seconds per category since construction; `other` is what no category claimed."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.started = clock()
        self.seconds = dict.fromkeys(_MEASURED, 0.0)

    def add(self, category: str, seconds: float) -> None:
        """Count `seconds` under `category` (one of CATEGORIES but "other")."""
        if category not in self.seconds:
            raise ValueError(f"goodput category must be one of {_MEASURED}, got {category!r}")
        self.seconds[category] += seconds

    @contextlib.contextmanager
    def timed(self, category: str) -> Iterator[None]:
        """Count the block's wall time under `category`."""
        start = self.clock()
        try:
            yield
        finally:
            self.add(category, self.clock() - start)

    def summary(self) -> dict[str, float]:
        """Total seconds, seconds per category (`<category>_s`) and the goodput fraction."""
        total = self.clock() - self.started
        other = max(total - sum(self.seconds.values()), 0.0)
        seconds = {**self.seconds, "other": other}
        return {
            "total_s": total,
            **{f"{name}_s": seconds[name] for name in CATEGORIES},
            "goodput": self.seconds["steps"] / total if total > 0 else 0.0,
        }


def goodput_line(summary: dict[str, float]) -> str:
    """One line for a run's summary: goodput, then each category's seconds and share."""
    total = summary["total_s"] or 1.0
    parts = [
        f"{name} {summary[f'{name}_s']:.1f}s ({summary[f'{name}_s'] / total:.0%})"
        for name in CATEGORIES
        if summary[f"{name}_s"] > 0
    ]
    return f"{summary['goodput']:.1%} of {summary['total_s']:.1f}s: " + ", ".join(parts)
