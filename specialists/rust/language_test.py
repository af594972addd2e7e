"""The Rust language: filter, default corpus, and the train job on a small Rust corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_tools.sources import SourceError
from specialists.rust import language
from specialists.rust.language import LANGUAGE, drop_reason
from specialists.testing import check_train_job

VALID = "fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n"


def rust_module(seed: int) -> str:
    """A distinct valid Rust module."""
    functions = "".join(
        f"/// Scales by {seed * 7 + index}.\npub fn scale_{seed}_{index}(values: &[i64]) -> Vec<i64> {{\n"
        f"    values.iter().map(|v| v * {seed * 7 + index} + {index}).collect()\n}}\n\n"
        for index in range(8)
    )
    return f"use std::collections::HashMap;\n\n{functions}"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (VALID, None),
        (
            "struct P<T> where T: Clone { x: T }\nimpl<T: Clone> P<T> { fn get(&self) -> T { self.x.clone() } }\n",
            None,
        ),
        ("fn add(a: i32, b: i32) -> i32 {\n    a +\n", "syntax_error"),
        ("fn main() { let x = 1 }\n", "syntax_error"),  # a MISSING ";" node
        ("def python(): pass\n", "syntax_error"),
    ],
)
def test_filter_keeps_rust_that_parses(text: str, reason: str | None) -> None:
    assert drop_reason(text) == reason


def test_no_local_rust_says_how_to_get_some(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(language, "candidate_roots", lambda: [tmp_path / "absent"])
    with pytest.raises(
        SourceError, match=r"no local Rust source found .*apt-get install rust-src.*--source DIR"
    ):
        language.default_roots()


def test_train_job_on_a_small_rust_corpus(tmp_path: Path) -> None:
    modules = [rust_module(seed) for seed in range(12)]
    check_train_job(LANGUAGE, tmp_path, modules, rust_module(99) + "fn broken( {\n")
