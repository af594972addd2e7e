"""Syntax-validity rate: the share of completions that pass a language's own filter.

Nothing runs: each completion, after its prompt when it has one, goes through the language filter
(tree-sitter with no ERROR or MISSING node, say). A completion without a line of code (empty, or
only line comments) fails as "no_code", since a bare comment parses in every language.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

NO_CODE = "no_code"


@dataclasses.dataclass(frozen=True)
class PromptTask:
    """One prompt to complete; `task_id` is what samples files use to name it."""

    task_id: str
    prompt: str


@dataclasses.dataclass(frozen=True)
class SyntaxSample:
    """One completion and why it failed (None: it is valid)."""

    completion: str
    reason: str | None

    @property
    def valid(self) -> bool:
        return self.reason is None


@dataclasses.dataclass(frozen=True)
class SyntaxTask:
    """All samples of one task; `prompt` is "" for a task outside the prompt set."""

    task_id: str
    prompt: str
    samples: tuple[SyntaxSample, ...]


def prompt_tasks(language: str, prompts: Sequence[str]) -> list[PromptTask]:
    """The prompts as tasks with ids "<language>/<index>"."""
    return [PromptTask(f"{language}/{index}", prompt) for index, prompt in enumerate(prompts)]


def syntax_reason(
    prompt: str, completion: str, drop_reason: Callable[[str], str | None], line_comment: str
) -> str | None:
    """None when `completion` holds code and prompt + completion passes `drop_reason`."""
    lines = (line.strip() for line in completion.splitlines())
    if not any(line and not line.startswith(line_comment) for line in lines):
        return NO_CODE
    return drop_reason(prompt + completion)


def check_syntax(
    completions: Mapping[str, Sequence[str]],
    prompts: Mapping[str, str],
    drop_reason: Callable[[str], str | None],
    line_comment: str,
) -> list[SyntaxTask]:
    """Every completion checked after its task's prompt (alone when `prompts` lacks the task)."""
    return [
        SyntaxTask(
            task_id,
            prompts.get(task_id, ""),
            tuple(
                SyntaxSample(
                    text, syntax_reason(prompts.get(task_id, ""), text, drop_reason, line_comment)
                )
                for text in texts
            ),
        )
        for task_id, texts in completions.items()
    ]


def summarize_syntax(tasks: Sequence[SyntaxTask]) -> dict[str, Any]:
    """Task and sample counts, the valid count and rate, and the failures by reason (needs a sample)."""
    samples = [sample for task in tasks for sample in task.samples]
    valid = sum(sample.valid for sample in samples)
    return {
        "n_tasks": len(tasks),
        "n_samples": len(samples),
        "n_valid": valid,
        "syntax_valid_rate": valid / len(samples),
        "failures": dict(Counter(sample.reason for sample in samples if not sample.valid)),
    }


def syntax_records(tasks: Sequence[SyntaxTask]) -> list[dict[str, Any]]:
    """Per-task results for the results file."""
    return [
        {
            "task_id": task.task_id,
            "prompt": task.prompt,
            "samples": [
                {"completion": s.completion, "valid": s.valid, "reason": s.reason}
                for s in task.samples
            ],
        }
        for task in tasks
    ]
