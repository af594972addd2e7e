"""One answer from a plan and its parts: a short plan summary, then a fenced block per part.

Parts come in dependency order (schema before the code that uses it). Rendering is split into
the header and one piece per part so the server can stream each piece as soon as it exists.
"""

from __future__ import annotations

import re

from orchestrator.executor import PartResult
from orchestrator.plan import PlanResult, Subtask


def render_header(
    result: PlanResult, ordered: list[Subtask], files: dict[str, str], notes: list[str]
) -> str:
    """The plan summary: one line per part (`files`: file name by subtask id), then planner and
    routing notes."""
    count = len(ordered)
    lines = [f"Plan ({result.planner} planner, {count} part{'s' * (count != 1)}):"]
    for index, subtask in enumerate(ordered, 1):
        uses = ", ".join(files[d] for d in subtask.depends_on)
        lines.append(
            f"{index}. [{subtask.language}] {subtask.task} -> {files[subtask.id]}"
            + (f" (uses {uses})" if uses else "")
        )
    lines += [f"Note: {note}" for note in (*result.notes, *notes)]
    return "\n".join(lines) + "\n"


def _fence(code: str) -> str:
    """A backtick fence longer than any backtick run in `code`, so the code cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    return "`" * max(3, longest + 1)


def _status(part: PartResult) -> str | None:
    if part.error is not None:
        return f"FAILED: {part.error}"
    if part.valid is None:
        return f"not syntax-checked: no parser for {part.language}"
    if not part.valid:
        repairs = part.attempts - 1
        return f"INVALID: still does not parse after {repairs} resample{'s' * (repairs != 1)}"
    return None


def render_part(index: int, part: PartResult) -> str:
    """A part as a heading with its file name, its fenced code, and a status line if needed."""
    lines = ["", f"### {index}. {part.file} ({part.language})"]
    if part.error is None:
        fence = _fence(part.code)
        lines += [f"{fence}{part.language}", part.code.rstrip("\n"), fence]
    status = _status(part)
    if status:
        lines.append(f"> {status}")
    return "\n".join(lines) + "\n"
