"""Prepare SQL training data: `python -m specialists.sql.prepare [--source DIR] [--out DIR]`."""

from __future__ import annotations

import sys

from data_tools.cli import prepare_main
from specialists.sql.corpus import SQL

if __name__ == "__main__":
    sys.exit(prepare_main(SQL))
