"""Shared models under concurrent callers: serial calls, and merged (coalesced) calls."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from orchestrator.sharing import CoalescingModel, SerialModel


class EchoModel:
    """Completes each prompt with its upper-case self; records batch sizes and overlap."""

    def __init__(self, seconds=0.2, fail_on=None):
        self.seconds = seconds
        self.fail_on = fail_on
        self.batches = []
        self.running = 0
        self.max_running = 0
        self.lock = threading.Lock()

    def complete(self, prompts, n_samples, max_new_tokens, temperature, top_p, stop, seed):
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.batches.append(list(prompts))
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
        if self.fail_on in prompts:
            raise RuntimeError(f"cannot complete {self.fail_on}")
        return [[prompt.upper()] * n_samples for prompt in prompts]


def call_concurrently(model, prompt_lists, temperature=0.0):
    with ThreadPoolExecutor(len(prompt_lists)) as threads:
        futures = [
            threads.submit(model.complete, prompts, 1, 8, temperature, 1.0, [], 0)
            for prompts in prompt_lists
        ]
        time.sleep(0.01)
        return [future.result() for future in futures]


def test_serial_model_never_runs_two_calls_at_once():
    inner = EchoModel(0.05)
    results = call_concurrently(SerialModel(inner), [["a"], ["b"], ["c"]])
    assert results == [[["A"]], [["B"]], [["C"]]]
    assert inner.max_running == 1 and len(inner.batches) == 3


def test_coalescing_merges_queued_calls_and_returns_each_callers_rows():
    inner = EchoModel(0.3)
    results = call_concurrently(
        CoalescingModel(inner, max_prompts=8), [["a"], ["b", "c"], ["d"], ["e", "f"]]
    )
    assert results == [[["A"]], [["B"], ["C"]], [["D"]], [["E"], ["F"]]]
    assert inner.max_running == 1
    assert len(inner.batches) == 2  # the first call runs alone; the rest queue up and merge
    assert sorted(inner.batches[1]) == ["b", "c", "d", "e", "f"]


def test_coalescing_respects_the_batch_limit_and_sampling_settings():
    inner = EchoModel(0.3)
    model = CoalescingModel(inner, max_prompts=2)
    with ThreadPoolExecutor(4) as threads:
        first = threads.submit(model.complete, ["a"], 1, 8, 0.0, 1.0, [], 0)
        time.sleep(0.05)
        later = [
            threads.submit(model.complete, [p], 1, 8, t, 1.0, [], 0)
            for p, t in (("b", 0.0), ("c", 0.5), ("d", 0.0))
        ]
        assert first.result() == [["A"]] and [f.result() for f in later] == [
            [["B"]],
            [["C"]],
            [["D"]],
        ]
    assert sorted(map(sorted, inner.batches[1:])) == [["b", "d"], ["c"]]


def test_a_failing_merged_call_raises_in_every_caller_of_that_batch():
    model = CoalescingModel(EchoModel(0.2, fail_on="bad"), max_prompts=8)
    with ThreadPoolExecutor(3) as threads:
        threads.submit(model.complete, ["warm"], 1, 8, 0.0, 1.0, [], 0)
        time.sleep(0.05)
        futures = [
            threads.submit(model.complete, [p], 1, 8, 0.0, 1.0, [], 0) for p in ("bad", "good")
        ]
        for future in futures:
            with pytest.raises(RuntimeError, match="cannot complete bad"):
                future.result()
