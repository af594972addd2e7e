"""The Rust specialist's data: its LanguageSpec and the default local corpus.

The default corpus is Rust source already on the machine: the standard library (and compiler)
sources of a rust-src install, from Debian (`/usr/lib/rustlib/src/rust`) or rustup (under
`rustc --print sysroot`), Debian's packaged crates and Cargo's registry of downloaded crates.
"""

from __future__ import annotations

import os
from pathlib import Path

from data_tools.local_roots import command_output, require_roots
from data_tools.spec import LanguageSpec
from specialists.rust.filters import rust_drop_reason

INSTALL_HINT = "install one with `apt-get install rust-src` (or `rustup component add rust-src`)"


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


RUST = LanguageSpec(
    name="rust",
    extensions=(".rs",),
    line_comment="//",
    drop_reason=rust_drop_reason,
    default_roots=default_roots,
)
