"""Run a plan's subtasks on their specialists: concurrent, batched, dependency-ordered, repaired.

Subtasks run level by level (a level depends only on earlier ones, see plan.levels). Within a
level, the subtasks routed to the same specialist go to it in one batched `complete` call, and
different specialists' calls run at the same time in a thread pool. A part that does not parse is
resampled (at `repair_temperature`) up to `max_repairs` times, again one batched call per
specialist. Each subtask has `timeout_s` in all; a timeout or error fails only the subtasks of
that call. Batch composition and seeds depend only on the plan, so a fixed seed gives a fixed
answer. Each part counts the tokens its specialist read and wrote (its own tokenizer's, as the
Completer reports them) over all its attempts that returned, repairs included.
"""

from __future__ import annotations

import asyncio
import dataclasses
from concurrent.futures import Executor as ThreadPool
from typing import NamedTuple

from core.cli import flag_field
from core.completion import CompletionRequest, SamplingConfig
from core.config import ConfigError
from orchestrator.plan import Plan, Subtask, levels
from orchestrator.prompts import build_prompt
from orchestrator.registry import Registry, Route, SpecialistEntry


@dataclasses.dataclass(frozen=True)
class ExecutionConfig:
    """How parts are generated, checked and repaired."""

    max_new_tokens: int = flag_field(128, "tokens each part may generate")
    sampling: SamplingConfig = SamplingConfig(top_p=0.95)  # the first attempt's
    max_repairs: int = flag_field(2, "resamples of a part that does not parse")
    repair_temperature: float = flag_field(0.7, "sampling temperature of the resamples")
    timeout_s: float = flag_field(120.0, "seconds per subtask, resamples included")
    seed: int = flag_field(0, "sampling seed; a fixed seed gives a fixed answer")
    sequential: bool = flag_field(
        False, "one subtask per call, one call at a time (the benchmark's baseline)"
    )

    def __post_init__(self) -> None:
        for name in ("max_new_tokens", "timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(
                    f"ExecutionConfig.{name} must be positive, got {getattr(self, name)}"
                )
        if self.max_repairs < 0:
            raise ConfigError(f"ExecutionConfig.max_repairs must be >= 0, got {self.max_repairs}")
        self.attempt_sampling(1)  # a bad repair temperature raises ConfigError

    def attempt_sampling(self, round_index: int) -> SamplingConfig:
        """How attempt `round_index` (0: the first, then the repairs) samples."""
        if round_index == 0:
            return self.sampling
        return dataclasses.replace(self.sampling, temperature=self.repair_temperature)

    def request(self, prompts: list[str], round_index: int, seed: int) -> CompletionRequest:
        """The completion request of one attempt at `prompts`."""
        return CompletionRequest(
            tuple(prompts),
            max_new_tokens=self.max_new_tokens,
            sampling=self.attempt_sampling(round_index),
            seed=seed,
        )


@dataclasses.dataclass(frozen=True)
class PartResult:
    """One subtask's outcome. `valid` is None when no parser knows `language`. The token counts
    sum every attempt that returned: a repair reads its prompt again and writes new tokens."""

    subtask: Subtask
    language: str  # the language the code is written in: the answering specialist's
    file: str
    code: str
    valid: bool | None
    attempts: int
    error: str | None
    seconds: float
    prompt_tokens: int
    completion_tokens: int


class _Attempt(NamedTuple):
    code: str
    valid: bool | None
    prompt_tokens: int
    completion_tokens: int


def _checked(entry: SpecialistEntry, code: str) -> bool | None:
    check = entry.language.syntax_ok
    if check is None:
        return None
    return bool(code.strip()) and check(code)


class Executor:
    """Runs plans on a registry's specialists; `pool` runs the blocking generate calls."""

    def __init__(self, registry: Registry, pool: ThreadPool) -> None:
        self.registry = registry
        self.pool = pool

    def start(
        self, plan: Plan, config: ExecutionConfig
    ) -> tuple[asyncio.Task[None], dict[str, asyncio.Future]]:
        """Schedule `plan`; returns the running task and a future per subtask id."""
        loop = asyncio.get_running_loop()
        futures = {subtask.id: loop.create_future() for subtask in plan.subtasks}
        return asyncio.create_task(self._run(plan, config, futures)), futures

    async def run(self, plan: Plan, config: ExecutionConfig) -> dict[str, PartResult]:
        """Every subtask's result, by id."""
        task, futures = self.start(plan, config)
        await task
        return {subtask_id: future.result() for subtask_id, future in futures.items()}

    async def _run(
        self, plan: Plan, config: ExecutionConfig, futures: dict[str, asyncio.Future]
    ) -> None:
        done: dict[str, PartResult] = {}
        for level_index, level in enumerate(levels(plan)):
            routes = {s.id: self.registry.route(s.language) for s in level}
            if config.sequential:
                results = [
                    await self._run_group(routes[s.id], [s], done, config, level_index)
                    for s in level
                ]
            else:
                groups: dict[str, list[Subtask]] = {}
                for subtask in level:
                    groups.setdefault(routes[subtask.id].entry.language.name, []).append(subtask)
                results = await asyncio.gather(
                    *(
                        self._run_group(routes[members[0].id], members, done, config, level_index)
                        for members in groups.values()
                    )
                )
            for parts in results:
                for part in parts:
                    done[part.subtask.id] = part
                    futures[part.subtask.id].set_result(part)

    async def _run_group(
        self,
        route: Route,
        subtasks: list[Subtask],
        done: dict[str, PartResult],
        config: ExecutionConfig,
        level_index: int,
    ) -> list[PartResult]:
        """One specialist's share of a level: a batched call, then batched repairs."""
        entry = route.entry
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + config.timeout_s
        prompts = [
            build_prompt(
                s,
                entry.language.line_comment,
                [(done[d].file, done[d].code) for d in s.depends_on if done[d].error is None],
            )
            for s in subtasks
        ]
        codes: list[str] = [""] * len(subtasks)
        valid: list[bool | None] = [None] * len(subtasks)
        attempts = [0] * len(subtasks)
        prompt_tokens = [0] * len(subtasks)
        completion_tokens = [0] * len(subtasks)
        errors: list[str | None] = [None] * len(subtasks)
        pending = list(range(len(subtasks)))
        for round_index in range(config.max_repairs + 1):
            seed = config.seed + 1000 * level_index + round_index
            try:
                outputs = await asyncio.wait_for(
                    loop.run_in_executor(
                        self.pool,
                        _generate_and_check,
                        entry,
                        config.request([prompts[i] for i in pending], round_index, seed),
                        [subtasks[i].code for i in pending],
                    ),
                    max(deadline - loop.time(), 0.0),
                )
            except TimeoutError:
                reason = f"timed out after {config.timeout_s:g} s"
                for i in pending:
                    errors[i] = reason if round_index == 0 else None
                break
            except Exception as error:  # a failing model fails its own subtasks, not the request
                for i in pending:
                    errors[i] = f"{type(error).__name__}: {error}" if round_index == 0 else None
                break
            for i, attempt in zip(pending, outputs, strict=True):
                codes[i], valid[i] = attempt.code, attempt.valid
                attempts[i] += 1
                prompt_tokens[i] += attempt.prompt_tokens
                completion_tokens[i] += attempt.completion_tokens
            pending = [i for i in pending if valid[i] is False]
            if not pending:
                break
        seconds = loop.time() - start
        return [
            PartResult(
                subtask,
                entry.language.name,
                route.file_name(subtask.file),
                codes[i],
                valid[i] if errors[i] is None else False,
                attempts[i],
                errors[i],
                seconds,
                prompt_tokens[i],
                completion_tokens[i],
            )
            for i, subtask in enumerate(subtasks)
        ]


def _generate_and_check(
    entry: SpecialistEntry, request: CompletionRequest, starts: list[str]
) -> list[_Attempt]:
    """Runs in the pool: one batched call on the specialist, then the parse checks."""
    completions = entry.model.complete(request)
    attempts = []
    for start, samples, read, written in zip(
        starts,
        completions.texts,
        completions.prompt_tokens,
        completions.completion_tokens,
        strict=True,
    ):
        code = start + samples[0]
        attempts.append(_Attempt(code, _checked(entry, code), read, written))
    return attempts
