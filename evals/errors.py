"""The one error type evaluation code raises for bad user input, and how entry points report it."""

from __future__ import annotations

import sys
from collections.abc import Callable


class EvalError(ValueError):
    """A bad flag, file or field; the message is one line that names it."""


def exit_status(run: Callable[[], int]) -> int:
    """`run()`'s status; a user error (any ValueError) prints one `error:` line and gives 2."""
    try:
        return run()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
