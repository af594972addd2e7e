"""Train the Rust specialist: `python -m specialists.rust.train [--config test|prod] ...`."""

from __future__ import annotations

import sys

from specialists.job import train_main
from specialists.rust.specialist import SPECIALIST

if __name__ == "__main__":
    sys.exit(train_main(SPECIALIST))
