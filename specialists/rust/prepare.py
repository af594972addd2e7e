"""Prepare Rust training data: `python -m specialists.rust.prepare [--source DIR] [--out DIR]`."""

from __future__ import annotations

import sys

from data_tools.cli import prepare_main
from specialists.rust.corpus import RUST

if __name__ == "__main__":
    sys.exit(prepare_main(RUST))
