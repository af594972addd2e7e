"""Thread-safe access to one specialist model shared by concurrent requests.

`SerialModel` runs one call at a time. `CoalescingModel` merges the calls that queue up while the
model is busy (same sampling settings, up to `max_prompts` prompts) into one batched call, so
concurrent requests share generate calls: more requests/s, but a row's neighbours in the batch
then depend on timing, so sampled (and near-tied greedy) outputs are no longer reproducible.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from typing import Protocol


class SpecialistModel(Protocol):
    """What the orchestrator needs of a model (core.inference.CheckpointCompleter has it)."""

    def complete(
        self,
        prompts: list[str],
        n_samples: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop: list[str],
        seed: int,
    ) -> list[list[str]]: ...


class SerialModel:
    """A model behind a lock: one generate call at a time."""

    def __init__(self, model: SpecialistModel) -> None:
        self.model = model
        self.lock = threading.Lock()

    def complete(
        self,
        prompts: list[str],
        n_samples: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop: list[str],
        seed: int,
    ) -> list[list[str]]:
        """The wrapped model's completions, after any call already running."""
        with self.lock:
            return self.model.complete(
                prompts, n_samples, max_new_tokens, temperature, top_p, stop, seed
            )


@dataclasses.dataclass(eq=False)
class _Call:
    prompts: list[str]
    settings: tuple[int, int, float, float, tuple[str, ...]]
    seed: int
    result: list[list[str]] | None = None
    error: Exception | None = None
    done: bool = False


class CoalescingModel:
    """A model whose queued calls are merged: whichever waiting thread gets the model runs every
    compatible queued call in one batch (flat combining) and hands each caller its rows."""

    def __init__(self, model: SpecialistModel, max_prompts: int) -> None:
        self.model = model
        self.max_prompts = max_prompts
        self.run_lock = threading.Lock()
        self.queue_lock = threading.Lock()
        self.queue: list[_Call] = []

    def complete(
        self,
        prompts: list[str],
        n_samples: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop: list[str],
        seed: int,
    ) -> list[list[str]]:
        """This call's completions, possibly computed in a batch with other callers'."""
        call = _Call(
            list(prompts), (n_samples, max_new_tokens, temperature, top_p, tuple(stop)), seed
        )
        with self.queue_lock:
            self.queue.append(call)
        while not call.done:
            with self.run_lock:
                if not call.done:
                    self._run(self._take_batch())
        if call.error is not None:
            raise call.error
        return call.result or []

    def _take_batch(self) -> list[_Call]:
        with self.queue_lock:
            first = self.queue[0]
            batch, rows = [first], len(first.prompts)
            for call in self.queue[1:]:
                if call.settings == first.settings and rows + len(call.prompts) <= self.max_prompts:
                    batch.append(call)
                    rows += len(call.prompts)
            self.queue = [call for call in self.queue if call not in batch]
        return batch

    def _run(self, batch: Sequence[_Call]) -> None:
        n_samples, max_new_tokens, temperature, top_p, stop = batch[0].settings
        prompts = [prompt for call in batch for prompt in call.prompts]
        try:
            outputs = self.model.complete(
                prompts, n_samples, max_new_tokens, temperature, top_p, list(stop), batch[0].seed
            )
        except Exception as error:  # every caller in the batch sees its model's failure
            for call in batch:
                call.error, call.done = error, True
            return
        start = 0
        for call in batch:
            call.result = outputs[start : start + len(call.prompts)]
            start += len(call.prompts)
            call.done = True
