"""What the harness needs from a model: text completions and perplexity."""

from __future__ import annotations

from typing import Protocol


class Completer(Protocol):
    """A text-level model (core.inference.load_completer returns one for our checkpoints)."""

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
        """`n_samples` completions per prompt, each cut before the first stop string."""
        ...

    def perplexity(self, texts: list[str]) -> float:
        """Token-level perplexity over all of `texts`."""
        ...
