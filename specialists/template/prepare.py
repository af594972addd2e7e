"""Prepare training data: `python -m specialists.template.prepare [--source DIR] [--out DIR]`."""

from __future__ import annotations

import sys

from data_tools.cli import prepare_main
from specialists.template.corpus import LANGUAGE

if __name__ == "__main__":
    sys.exit(prepare_main(LANGUAGE))
