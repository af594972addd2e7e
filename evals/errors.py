"""The one error type evaluation code raises for bad user input."""


class EvalError(ValueError):
    """A bad flag, file or field; the message is one line that names it."""
