"""Prepare Python training data: `python -m specialists.python.prepare --source DIR --out DIR`."""

from __future__ import annotations

import sys

from data_tools.cli import prepare_main
from specialists.python.corpus import PYTHON

if __name__ == "__main__":
    sys.exit(prepare_main(PYTHON))
