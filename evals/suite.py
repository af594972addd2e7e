"""What a language's code-executing eval is: its benchmarks and how their samples are checked."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Generic

from evals.harness import Benchmark, TaskT
from evals.sandbox import Limits, Sandbox


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """Suites without flags of their own."""


def _no_context(args: argparse.Namespace, benchmarks: Collection[str]) -> dict[str, Any]:
    return {}


@dataclasses.dataclass(frozen=True)
class EvalSuite(Generic[TaskT]):
    """One language's benchmarks and how to check them (the language itself is core.Language).

    `benchmarks` maps a name to a loader of its tasks from the parsed flags. `toolchain(sandbox)`
    finds the executable samples need (a one-line EvalError when there is none) and
    `make_benchmark(name, tasks, toolchain)` builds the harness benchmark. Optional: flags of the
    suite's own, reference solutions as samples-file records, extra results context, a group
    key per task (a category) for per-group scores, the evaluation protocols the suite formats
    prompts for (evals/protocols.py; its loaders read `args.protocol`),
    `prepare(args, name, tasks, sandbox, toolchain)`, which returns the tasks completed with what
    their checks need from reference runs in the sandbox (EvalPlus's expected outputs), and the
    benchmarks `--benchmark all` leaves out (`opt_in`: they run when named, e.g. the large
    infilling sets, which only a fill-in-the-middle model can do).
    """

    description: str
    benchmarks: Mapping[str, Callable[[argparse.Namespace], Sequence[TaskT]]]
    toolchain: Callable[[Sandbox], str]
    make_benchmark: Callable[[str, Sequence[TaskT], str], Benchmark[TaskT]]
    limits: Limits = dataclasses.field(default_factory=Limits)
    add_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    canonical: Callable[[TaskT], dict[str, Any]] | None = None
    context: Callable[[argparse.Namespace, Collection[str]], dict[str, Any]] = _no_context
    group: Callable[[TaskT], str] | None = None
    protocols: tuple[str, ...] = ()
    prepare: (
        Callable[[argparse.Namespace, str, Sequence[TaskT], Sandbox, str], Sequence[TaskT]] | None
    ) = None
    opt_in: tuple[str, ...] = ()
