"""Hooks: the work the training loop does between steps, each with its own `every`.

The loop (core/trainer.py) only steps. After a step at which some hook is due, it fetches the
metrics of the steps since the previous such boundary (one device-to-host transfer, the only
host sync) and calls the hooks in the order of their `kind`:

    eval        evaluations: they add their metrics to the step's record (validation loss, a
                language's benchmark pass@1)
    checkpoint  saves of the state and the loader state it pairs with
    export      other work on the state (Hugging Face exports)
    log         trackers: metrics.jsonl, TensorBoard, Weights & Biases write the step's record
    plot        the loss curve
    profile     starting and stopping the profiler

A hook is due every `every` steps (0: never) and, when `at_end`, after the run's last step and
when a stop signal ends the run early. A hook with `at_every_boundary` (the trackers) also runs at
every step where another hook made the loop fetch metrics, so every record it writes covers the
steps since the previous one and evaluations land in the record of the step they measured.
`levanter`'s trainer is the model: `hook(fn, every)` turns a function into a hook, as its
`add_hook(fn, every=N)` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from core.layout import RunLayout

# The order in which the hooks due at one step run (see the module docstring).
KINDS = ("eval", "checkpoint", "export", "log", "plot", "profile")


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """What hooks learn when a `train` call starts: where the run lives, the step it continues
    from (0: a fresh start), the step it runs to, and its whole config as trackers record it."""

    layout: RunLayout
    start_step: int
    steps: int
    config: dict[str, Any]
    is_main: bool


@dataclasses.dataclass
class StepInfo:
    """One boundary: the step just taken and its state (on the devices), the loader state that
    pairs with it, the step's metrics record (evaluation hooks add to it), and whether the run
    ends here (`final`), early because of a stop signal (`stopping` names it)."""

    step: int
    state: Any
    metrics: dict[str, Any]
    loader_state: dict[str, Any]
    final: bool
    stopping: str | None = None


class Hook:
    """Base of the loop's hooks; subclasses set `every` and `kind` and override `run`, and where
    they hold resources, `start` and `close` (called once per `train` call, close also when the
    run fails)."""

    every: int = 0
    kind: str = "export"
    at_end: bool = True
    at_every_boundary: bool = False

    def due(self, step: int, final: bool) -> bool:
        """Whether this hook makes the loop stop after `step` (final: the run ends there)."""
        if self.every <= 0:
            return False
        return step % self.every == 0 or (final and self.at_end)

    def start(self, run: RunInfo) -> None:
        """Called before the first step of a `train` call."""

    def run(self, info: StepInfo) -> None:
        """The hook's work at a boundary."""
        raise NotImplementedError

    def close(self) -> None:
        """Called once the loop has ended, however it ended."""


class FunctionHook(Hook):
    """`fn(info)` every `every` steps and after the last one."""

    def __init__(self, fn: Callable[[StepInfo], None], every: int, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"hook kind must be one of {KINDS}, got {kind!r}")
        self.fn, self.every, self.kind = fn, every, kind

    def run(self, info: StepInfo) -> None:
        self.fn(info)


def hook(fn: Callable[[StepInfo], None], every: int, kind: str = "export") -> Hook:
    """A function as a hook: `fn(info)` every `every` steps (0: never) and after the last."""
    return FunctionHook(fn, every, kind)


def in_run_order(hooks: list[Hook]) -> list[Hook]:
    """`hooks` sorted by kind (KINDS), keeping the given order within a kind."""
    for item in hooks:
        if item.kind not in KINDS:
            raise ValueError(f"{type(item).__name__}: kind must be one of {KINDS}")
    return sorted(hooks, key=lambda item: KINDS.index(item.kind))
