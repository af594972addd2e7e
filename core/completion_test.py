"""The completion request type and the one stop-cutting function."""

import dataclasses

import pytest

from core.completion import GREEDY, CompletionRequest, SamplingConfig, cut_at_stop
from core.config import ConfigError


def test_cut_at_stop_uses_the_earliest_stop() -> None:
    assert cut_at_stop("a\nb\ndef c\nif d", ["\nif", "\ndef"]) == "a\nb"
    assert cut_at_stop("no stop here", ["\nif"]) == "no stop here"
    assert cut_at_stop("empty stops are ignored", ["", "ore"]) == "empty stops are ign"


def test_requests_share_a_batch_exactly_when_all_but_their_prompts_match() -> None:
    request = CompletionRequest(("a",), max_new_tokens=8, stop=("\n",))
    assert request.for_prompts(["b", "c"]).settings() == request.settings()
    assert request.for_prompts(["b"]).prompts == ("b",)
    other = dataclasses.replace(request, sampling=SamplingConfig(temperature=0.5, top_k=3))
    assert other.settings() != request.settings()
    assert hash(request.settings()) == hash(request.for_prompts(["z"]).settings())


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: CompletionRequest(n_samples=0), "n_samples must be positive"),
        (lambda: CompletionRequest(max_new_tokens=0), "max_new_tokens must be positive"),
        (lambda: SamplingConfig(top_p=0.0), "top_p must be in"),
        (lambda: SamplingConfig(top_k=-1), "top_k must be >= 0"),
        (lambda: SamplingConfig(temperature=-0.1), "temperature must be >= 0"),
    ],
)
def test_bad_settings_name_the_field(build, message) -> None:
    with pytest.raises(ConfigError, match=message):
        build()


def test_greedy_is_temperature_zero() -> None:
    assert GREEDY.greedy and not SamplingConfig(temperature=0.1).greedy
