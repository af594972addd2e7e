"""The Rust specialist as the shared jobs see it: data spec, syntax check, sample prompts."""

from __future__ import annotations

from data_tools.tree_sitter_filter import parses
from specialists.job import Specialist
from specialists.rust.corpus import RUST
from specialists.rust.filters import GRAMMAR


def rust_syntax_ok(code: str) -> bool:
    """Whether `code` parses as Rust."""
    return parses(code, GRAMMAR)


SAMPLE_PROMPTS = (
    "/// Returns the n-th Fibonacci number.\nfn fibonacci(n: u64) -> u64 {\n",
    "use std::collections::HashMap;\n\n/// Counts how often each word occurs.\n"
    "fn word_counts(text: &str) -> HashMap<String, usize> {\n",
    "pub struct Stack<T> {\n    items: Vec<T>,\n}\n\nimpl<T> Stack<T> {\n",
    "/// Whether `text` reads the same backwards.\nfn is_palindrome(text: &str) -> bool {\n",
    "use std::fs;\nuse std::io;\n\nfn read_lines(path: &str) -> io::Result<Vec<String>> {\n",
    "fn merge_sorted(a: &[i32], b: &[i32]) -> Vec<i32> {\n    let mut result = Vec::new();\n",
)

SPECIALIST = Specialist(language=RUST, syntax_ok=rust_syntax_ok, sample_prompts=SAMPLE_PROMPTS)
