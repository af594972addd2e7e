"""Held-out text for perplexity."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.errors import EvalError
from evals.perplexity import read_texts


def test_reads_sorted_suffix_files_up_to_the_limit_and_counts_unreadable(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "b.py").write_text("b = 2\n")
    (tmp_path / "pkg" / "a.py").write_text("a = 1\n")
    (tmp_path / "a.py").write_bytes(b"\xff\xfe not utf-8")
    (tmp_path / "notes.txt").write_text("ignored")
    assert read_texts(tmp_path, ".py", max_files=2) == (["b = 2\n"], 1)
    assert read_texts(tmp_path, ".py", max_files=10) == (["b = 2\n", "a = 1\n"], 1)
    assert read_texts(tmp_path / "b.py", ".py", max_files=10) == (["b = 2\n"], 0)


def test_missing_or_empty_data_is_named(tmp_path: Path) -> None:
    with pytest.raises(EvalError, match=r"--perplexity-data .*nowhere: no such"):
        read_texts(tmp_path / "nowhere", ".py", 10)
    with pytest.raises(EvalError, match="no readable non-empty"):
        read_texts(tmp_path, ".py", 10)
