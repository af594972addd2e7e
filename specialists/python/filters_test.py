import pytest

from specialists.python.filters import MAX_INDENT_COLUMNS, python_drop_reason


def test_valid_python_is_kept() -> None:
    assert python_drop_reason("def f(x):\n    return [i async for i in x]\n") is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("def f(:\n    pass\n", "syntax_error"),
        ("print 'python 2'\n", "syntax_error"),
        ("x = 1\x00\n", "syntax_error"),
        ("x = " + "(" * 100_000 + ")" * 100_000 + "\n", "syntax_error"),  # parser nesting limit
        ("x = " + "-" * 200_000 + "1\n", "too_deeply_nested"),  # recursion in the AST builder
        ("if x:\n" + " " * MAX_INDENT_COLUMNS + "y = 1\n", "too_deeply_nested"),
        ("x = 1\n" * 200_000, "too_large"),
    ],
)
def test_pathological_inputs_are_dropped_not_raised(text: str, reason: str) -> None:
    assert python_drop_reason(text) == reason
