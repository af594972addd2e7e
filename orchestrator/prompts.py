"""The prompt a specialist continues: dependency code and the task as comments, then the file.

Specialists are plain code models trained on files, so the request reaches them as a file header.
The completer keeps a prompt's last tokens when it is too long, so the task comes last and the
dependencies' code, which matters less, first.
"""

from __future__ import annotations

from orchestrator.plan import Subtask

MAX_DEPENDENCY_LINES = 40


def _commented(text: str, line_comment: str) -> list[str]:
    return [f"{line_comment} {line}".rstrip() for line in text.splitlines()]


def build_prompt(subtask: Subtask, line_comment: str, dependencies: list[tuple[str, str]]) -> str:
    """The prompt for `subtask`; `dependencies` are (file name, code) of the parts it uses."""
    lines: list[str] = []
    for file, code in dependencies:
        lines.append(f"{line_comment} {file}, which this file uses:")
        lines += _commented("\n".join(code.splitlines()[:MAX_DEPENDENCY_LINES]), line_comment)
        lines.append("")
    lines.append(f"{line_comment} {subtask.file}")
    lines += _commented(subtask.task, line_comment)
    return "\n".join(lines) + "\n\n" + subtask.code
