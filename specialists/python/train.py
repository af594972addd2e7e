"""Train the Python specialist: `python -m specialists.python.train [--config test|prod] ...`."""

from __future__ import annotations

import sys

from specialists.job import train_main
from specialists.python.specialist import SPECIALIST

if __name__ == "__main__":
    sys.exit(train_main(SPECIALIST))
