"""The orchestrator: plan a request, run its parts on the specialists, combine one answer."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from concurrent.futures import Executor as ThreadPool

from orchestrator.combine import render_header, render_part
from orchestrator.executor import ExecutionConfig, Executor, PartResult
from orchestrator.plan import Planner, dependency_order
from orchestrator.registry import Registry


@dataclasses.dataclass(frozen=True)
class Piece:
    """A piece of a streamed answer: the plan summary (`part` None), then one rendered part."""

    text: str
    part: PartResult | None = None


class Orchestrator:
    """Plans with `planner`, executes on `registry`'s specialists, streams the combined answer."""

    def __init__(
        self,
        planner: Planner,
        registry: Registry,
        pool: ThreadPool,
        config: ExecutionConfig | None = None,
    ) -> None:
        self.planner = planner
        self.registry = registry
        self.pool = pool
        self.config = config or ExecutionConfig()
        self.executor = Executor(registry, pool)

    async def stream(
        self,
        request: str,
        config: ExecutionConfig | None = None,
    ) -> AsyncIterator[Piece]:
        """The answer in pieces: the plan summary first, then each part as soon as it is done.

        Raises PlanError (before yielding anything) for a request with nothing to plan.
        """
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self.pool, self.planner.plan, request)
        ordered = dependency_order(result.plan)
        files = {s.id: self.registry.route(s.language).file_name(s.file) for s in ordered}
        yield Piece(
            render_header(
                result,
                ordered,
                files,
                self.registry.fallback_notes(s.language for s in result.plan.subtasks),
            )
        )
        task, futures = self.executor.start(result.plan, config or self.config)
        try:
            for index, subtask in enumerate(ordered, 1):
                part = await _finished(futures[subtask.id], task)
                yield Piece(render_part(index, part), part)
            await task
        finally:
            task.cancel()

    async def answer(self, request: str, config: ExecutionConfig | None = None) -> str:
        """The whole answer as one string."""
        return "".join([piece.text async for piece in self.stream(request, config)])


async def _finished(future: asyncio.Future, task: asyncio.Task[None]) -> PartResult:
    """The future's result; re-raises the executor's own error instead of waiting forever."""
    await asyncio.wait({future, task}, return_when=asyncio.FIRST_COMPLETED)
    if not future.done():
        task.result()
    return future.result()
