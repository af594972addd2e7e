"""The one completion interface: a request type, the protocol every model serves it through, and
the one function that cuts a completion at its stop strings.

Evals, the orchestrator, its HTTP server and the train job's samples all build a
`CompletionRequest` and hand it to a `Completer` (a local checkpoint, core/inference.py; a shared
or remote one in the orchestrator). A request with a `suffix` is a fill-in-the-middle request, as
OpenAI's: each prompt is the code before the gap, the suffix the code after it, and each
completion the middle. Pure Python: importing it does not load JAX.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from core.cli import flag_field
from core.config import ConfigError


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """How the next token is chosen: greedy at temperature 0, else sampled from the
    temperature-scaled distribution restricted to the top_k tokens (0: all) and to the smallest
    set whose probability reaches top_p (1.0: all)."""

    temperature: float = flag_field(0.0, "sampling temperature; 0 is greedy")
    top_k: int = flag_field(0, "sample among the k most likely tokens only (0: all)")
    top_p: float = flag_field(1.0, "nucleus sampling: the smallest set reaching this mass")

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ConfigError(f"SamplingConfig.temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ConfigError(f"SamplingConfig.top_k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"SamplingConfig.top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        """Whether every sample of a prompt is the same (temperature 0)."""
        return self.temperature == 0.0


GREEDY = SamplingConfig()


@dataclasses.dataclass(frozen=True)
class CompletionRequest:
    """`n_samples` completions of each prompt, at most `max_new_tokens` tokens each, cut before
    the first of `stop`; `seed` fixes the sampled tokens. With a `suffix`, each completion is the
    middle between its prompt and the suffix (fill-in-the-middle)."""

    prompts: tuple[str, ...] = ()
    n_samples: int = flag_field(1, "completions per prompt")
    max_new_tokens: int = flag_field(128, "tokens per completion at most")
    sampling: SamplingConfig = GREEDY
    stop: tuple[str, ...] = flag_field((), "completions end before any of these strings")
    seed: int = flag_field(0, "sampling seed")
    suffix: str | None = None

    def __post_init__(self) -> None:
        if self.n_samples < 1:
            raise ConfigError(f"CompletionRequest.n_samples must be positive, got {self.n_samples}")
        if self.max_new_tokens < 1:
            raise ConfigError(
                f"CompletionRequest.max_new_tokens must be positive, got {self.max_new_tokens}"
            )

    def for_prompts(self, prompts: Sequence[str]) -> CompletionRequest:
        """The same settings for other prompts."""
        return dataclasses.replace(self, prompts=tuple(prompts))

    def settings(self) -> CompletionRequest:
        """The request without its prompts: what decides whether two requests can share a batch."""
        return dataclasses.replace(self, prompts=())


@dataclasses.dataclass(frozen=True)
class Completions:
    """A request's answer: `texts[i]` holds prompt i's samples; the token counts (the model's own
    tokens, as OpenAI's `usage` reports them) are per prompt: its prompt once, and its samples'
    completions together."""

    texts: list[list[str]]
    prompt_tokens: list[int]
    completion_tokens: list[int]

    def __post_init__(self) -> None:
        if not len(self.texts) == len(self.prompt_tokens) == len(self.completion_tokens):
            raise ValueError("Completions: one text list and two token counts per prompt")

    def rows(self, start: int, stop: int) -> Completions:
        """The answer to prompts start..stop-1 alone."""
        return Completions(
            self.texts[start:stop],
            self.prompt_tokens[start:stop],
            self.completion_tokens[start:stop],
        )

    @classmethod
    def concatenate(cls, parts: Sequence[Completions]) -> Completions:
        """One answer from the answers to consecutive slices of the prompts."""
        return cls(
            [texts for part in parts for texts in part.texts],
            [count for part in parts for count in part.prompt_tokens],
            [count for part in parts for count in part.completion_tokens],
        )


class Completer(Protocol):
    """A text-level model."""

    def complete(self, request: CompletionRequest) -> Completions:
        """`request.n_samples` completions per prompt, in prompt order, each cut at the stops."""
        ...


@runtime_checkable
class BatchCompleter(Completer, Protocol):
    """A model that runs several requests in one batch (core.inference.CheckpointCompleter)."""

    def complete_each(self, requests: Sequence[CompletionRequest]) -> list[Completions]:
        """Each request's completions, as `complete` would give them."""
        ...


def complete_each(completer: Completer, requests: Sequence[CompletionRequest]) -> list[Completions]:
    """Each request's completions (an eval's tasks, each with its own suffix): in one call where
    the completer batches requests, else one call each."""
    if isinstance(completer, BatchCompleter):
        return completer.complete_each(requests)
    return [completer.complete(request) for request in requests]


def infill(
    completer: Completer, prefix: str, suffix: str, request: CompletionRequest | None = None
) -> str:
    """The middle between `prefix` and `suffix`: the first completion of `request` (default:
    greedy) with them as its prompt and suffix."""
    request = dataclasses.replace(request or CompletionRequest(), prompts=(prefix,), suffix=suffix)
    return completer.complete(request).texts[0][0]


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to (not including) the earliest occurrence of any non-empty stop string."""
    end = min((index for s in stop if s and (index := text.find(s)) >= 0), default=len(text))
    return text[:end]
