"""Thread-safe access to one specialist model shared by concurrent requests.

`SerialModel` runs one call at a time. `CoalescingModel` merges the calls that queue up while the
model is busy (same settings, up to `max_prompts` prompts) into one batched call, so concurrent
requests share generate calls: more requests/s, but a row's neighbours in the batch then depend
on timing, so sampled (and near-tied greedy) outputs are no longer reproducible.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence

from core.completion import Completer, CompletionRequest, Completions


class SerialModel:
    """A model behind a lock: one generate call at a time."""

    def __init__(self, model: Completer) -> None:
        self.model = model
        self.lock = threading.Lock()

    def complete(self, request: CompletionRequest) -> Completions:
        """The wrapped model's completions, after any call already running."""
        with self.lock:
            return self.model.complete(request)


@dataclasses.dataclass(eq=False)
class _Call:
    request: CompletionRequest
    result: Completions | None = None
    error: Exception | None = None
    done: bool = False


class CoalescingModel:
    """A model whose queued calls are merged: whichever waiting thread gets the model runs every
    compatible queued call in one batch (flat combining) and hands each caller its rows."""

    def __init__(self, model: Completer, max_prompts: int) -> None:
        self.model = model
        self.max_prompts = max_prompts
        self.run_lock = threading.Lock()
        self.queue_lock = threading.Lock()
        # Notified whenever a call joins the queue, so an observer can wait for merges to form.
        self.queue_changed = threading.Condition(self.queue_lock)
        self.queue: list[_Call] = []

    def complete(self, request: CompletionRequest) -> Completions:
        """This call's completions, possibly computed in a batch with other callers'."""
        call = _Call(request)
        with self.queue_lock:
            self.queue.append(call)
            self.queue_changed.notify_all()
        while not call.done:
            with self.run_lock:
                if not call.done:
                    self._run(self._take_batch())
        if call.error is not None:
            raise call.error
        assert call.result is not None
        return call.result

    def _take_batch(self) -> list[_Call]:
        with self.queue_lock:
            first = self.queue[0]
            settings = first.request.settings()
            batch, rows = [first], len(first.request.prompts)
            for call in self.queue[1:]:
                size = len(call.request.prompts)
                if call.request.settings() == settings and rows + size <= self.max_prompts:
                    batch.append(call)
                    rows += size
            self.queue = [call for call in self.queue if call not in batch]
        return batch

    def _run(self, batch: Sequence[_Call]) -> None:
        prompts = [prompt for call in batch for prompt in call.request.prompts]
        try:
            outputs = self.model.complete(batch[0].request.for_prompts(prompts))
        except Exception as error:  # every caller in the batch sees its model's failure
            for call in batch:
                call.error, call.done = error, True
            return
        start = 0
        for call in batch:
            call.result = outputs.rows(start, start + len(call.request.prompts))
            start += len(call.request.prompts)
            call.done = True
