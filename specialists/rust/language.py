"""Rust: files must parse with tree-sitter's Rust grammar, with no error nodes.

The default corpus is Rust source already on the machine: the standard library (and compiler)
sources of a rust-src install, from Debian (`/usr/lib/rustlib/src/rust`) or rustup (under
`rustc --print sysroot`), Debian's packaged crates and Cargo's registry of downloaded crates.
Its benchmark is MultiPL-E HumanEval-rs (benchmarks.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from core.language import Language
from data_tools.local_roots import command_output, require_roots
from data_tools.tree_sitter_filter import syntax_drop_reason

GRAMMAR = "rust"
INSTALL_HINT = "install one with `apt-get install rust-src` (or `rustup component add rust-src`)"


def drop_reason(text: str) -> str | None:
    """None for Rust that parses; otherwise "too_large", "parse_timeout" or "syntax_error"."""
    return syntax_drop_reason(text, GRAMMAR)


def _sysroots() -> list[Path]:
    outputs = (
        command_output([rustc, "--print", "sysroot"]) for rustc in ("rustc", "/usr/bin/rustc")
    )
    return [Path(output) for output in outputs if output]


def candidate_roots() -> list[Path]:
    """Where Rust source usually lies, whether or not it exists here."""
    cargo_home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    sources = [sysroot / "lib" / "rustlib" / "src" / "rust" for sysroot in _sysroots()]
    return [*sources, Path("/usr/share/cargo/registry"), cargo_home / "registry" / "src"]


def default_roots() -> list[Path]:
    """The existing Rust source trees, or a one-line error saying how to get one."""
    return require_roots("Rust", candidate_roots(), INSTALL_HINT)


def benchmarks() -> Any:
    """MultiPL-E HumanEval-rs (imported only when evaluating)."""
    from specialists.rust.benchmarks import SUITE

    return SUITE


LANGUAGE = Language(
    name="rust",
    extensions=(".rs",),
    line_comment="//",
    drop_reason=drop_reason,
    default_roots=default_roots,
    sample_prompts=(
        "/// Returns the n-th Fibonacci number.\nfn fibonacci(n: u64) -> u64 {\n",
        "use std::collections::HashMap;\n\n/// Counts how often each word occurs.\n"
        "fn word_counts(text: &str) -> HashMap<String, usize> {\n",
        "pub struct Stack<T> {\n    items: Vec<T>,\n}\n\nimpl<T> Stack<T> {\n",
        "/// Whether `text` reads the same backwards.\nfn is_palindrome(text: &str) -> bool {\n",
        "use std::fs;\nuse std::io;\n\nfn read_lines(path: &str) -> io::Result<Vec<String>> {\n",
        "fn merge_sorted(a: &[i32], b: &[i32]) -> Vec<i32> {\n    let mut result = Vec::new();\n",
    ),
    aliases=("cargo", "tokio", "serde"),
    nearest=("cpp", "c", "go"),
    benchmarks=benchmarks,
    infill_sample=(
        "/// The arithmetic mean of `values`.\nfn mean(values: &[f64]) -> f64 {\n    let total: f64 = ",
        ";\n    total / values.len() as f64\n}\n",
    ),
)
