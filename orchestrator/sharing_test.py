"""Shared models under concurrent callers: serial calls, and merged (coalesced) calls.

Calls are ordered with events and the model's queue condition, never with sleeps: a gated model
holds its first call until the others have queued up behind it.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.completion import CompletionRequest, Completions, SamplingConfig
from orchestrator.sharing import CoalescingModel, SerialModel

WAIT_S = 60  # only a safety net: every wait below ends on an event long before


class EchoModel:
    """Completes each prompt with its upper-case self and records batches and overlap. While
    `gate` is clear, a call blocks after it has entered (`entered` is set)."""

    def __init__(self, fail_on=None):
        self.fail_on = fail_on
        self.batches = []
        self.running = 0
        self.max_running = 0
        self.lock = threading.Lock()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def complete(self, request):
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.batches.append(list(request.prompts))
        self.entered.set()
        assert self.gate.wait(WAIT_S)
        with self.lock:
            self.running -= 1
        if self.fail_on in request.prompts:
            raise RuntimeError(f"cannot complete {self.fail_on}")
        texts = [[prompt.upper()] * request.n_samples for prompt in request.prompts]
        return Completions(
            texts, [len(p) for p in request.prompts], [len(p) for p in request.prompts]
        )


def request(*prompts, temperature=0.0):
    return CompletionRequest(prompts, max_new_tokens=8, sampling=SamplingConfig(temperature))


def wait_for_queue(model, length):
    with model.queue_changed:
        assert model.queue_changed.wait_for(lambda: len(model.queue) == length, WAIT_S)


def test_serial_model_never_runs_two_calls_at_once():
    inner = EchoModel()
    model = SerialModel(inner)
    with ThreadPoolExecutor(3) as threads:
        first = threads.submit(model.complete, request("a"))
        assert inner.entered.wait(WAIT_S)
        others = [threads.submit(model.complete, request(p)) for p in ("b", "c")]
        inner.gate.set()
        results = [first.result(), *(future.result() for future in others)]
    assert [r.texts for r in results] == [[["A"]], [["B"]], [["C"]]]
    assert inner.max_running == 1 and len(inner.batches) == 3


def test_coalescing_merges_queued_calls_and_returns_each_callers_rows():
    inner = EchoModel()
    model = CoalescingModel(inner, max_prompts=8)
    with ThreadPoolExecutor(4) as threads:
        first = threads.submit(model.complete, request("a"))
        assert inner.entered.wait(WAIT_S)  # the first call runs alone, holding the model
        later = [
            threads.submit(model.complete, request(*p)) for p in (("b", "c"), ("d",), ("e", "f"))
        ]
        wait_for_queue(model, 3)
        inner.gate.set()
        results = [first.result(), *(future.result() for future in later)]
    assert [r.texts for r in results] == [[["A"]], [["B"], ["C"]], [["D"]], [["E"], ["F"]]]
    assert results[3].prompt_tokens == [1, 1]  # each caller gets its own rows' counts
    assert inner.max_running == 1
    assert len(inner.batches) == 2  # the queued calls merged into one batch
    assert sorted(inner.batches[1]) == ["b", "c", "d", "e", "f"]


def test_coalescing_respects_the_batch_limit_and_sampling_settings():
    inner = EchoModel()
    model = CoalescingModel(inner, max_prompts=2)
    with ThreadPoolExecutor(4) as threads:
        first = threads.submit(model.complete, request("a"))
        assert inner.entered.wait(WAIT_S)
        later = [
            threads.submit(model.complete, request(p, temperature=t))
            for p, t in (("b", 0.0), ("c", 0.5), ("d", 0.0))
        ]
        wait_for_queue(model, 3)
        inner.gate.set()
        assert first.result().texts == [["A"]]
        assert [f.result().texts for f in later] == [[["B"]], [["C"]], [["D"]]]
    assert sorted(map(sorted, inner.batches[1:])) == [["b", "d"], ["c"]]


def test_a_failing_merged_call_raises_in_every_caller_of_that_batch():
    inner = EchoModel(fail_on="bad")
    model = CoalescingModel(inner, max_prompts=8)
    with ThreadPoolExecutor(3) as threads:
        warm = threads.submit(model.complete, request("warm"))
        assert inner.entered.wait(WAIT_S)
        futures = [threads.submit(model.complete, request(p)) for p in ("bad", "good")]
        wait_for_queue(model, 2)
        inner.gate.set()
        assert warm.result().texts == [["WARM"]]
        for future in futures:
            with pytest.raises(RuntimeError, match="cannot complete bad"):
                future.result()
