"""The specialist's filter and its whole train job on a small synthetic corpus.

The corpus is comments in the language's comment syntax, so the test holds for any language; the
filter thresholds for comments are relaxed to let it through.
"""

from __future__ import annotations

import random
from pathlib import Path

from specialists.template.config import EXTENSIONS, LINE_COMMENT
from specialists.template.filters import drop_reason
from specialists.template.specialist import SPECIALIST
from specialists.testing import train_tiny

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "parse",
    "render",
    "buffer",
    "socket",
    "stream",
    "packet",
    "window",
    "cursor",
]


def test_unbalanced_code_is_a_syntax_error_and_comments_parse() -> None:
    assert drop_reason("((( {{{ ]]] )))\n") == "syntax_error"
    assert drop_reason(f"{LINE_COMMENT} a comment\n") is None


def test_train_job_runs_on_a_small_corpus(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    rng = random.Random(0)
    for index in range(12):
        lines = [f"{LINE_COMMENT} {' '.join(rng.choices(WORDS, k=12))}\n" for _ in range(20)]
        (source / f"file_{index}{EXTENSIONS[0]}").write_text("".join(lines))
    relaxed = ("--max-comment-fraction", "1.0", "--min-code-lines", "0")
    summary = train_tiny(SPECIALIST, [source], tmp_path / "work", *relaxed)
    assert summary["step"] == 3 and summary["data"]["files_kept"] == 12
