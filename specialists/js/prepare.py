"""Prepare JavaScript training data: `python -m specialists.js.prepare [--source DIR] [--out DIR]`."""

from __future__ import annotations

import sys

from data_tools.cli import prepare_main
from specialists.js.corpus import JAVASCRIPT

if __name__ == "__main__":
    sys.exit(prepare_main(JAVASCRIPT))
