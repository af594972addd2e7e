"""The one error type evaluation code raises for bad user input (core.cli.run_main reports it)."""

from __future__ import annotations


class EvalError(ValueError):
    """A bad flag, file or field; the message is one line that names it."""
