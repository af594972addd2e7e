"""The dialect-aware SQL filter."""

from __future__ import annotations

import pytest

from specialists.sql.filters import parses_as, sql_drop_reason

POSTGRES = (
    '\\echo Use "CREATE EXTENSION demo" to load this file. \\quit\n'
    "CREATE FUNCTION add_one(integer) RETURNS integer AS $$ SELECT $1 + 1 $$ LANGUAGE SQL;\n"
    "CREATE OPERATOR === (LEFTARG = integer, RIGHTARG = integer, PROCEDURE = int4eq);\n"
    "SELECT name::text FROM users WHERE name ILIKE 'a%' LIMIT 5;\n"
)
MYSQL = "SELECT `name` FROM users LIMIT 10, 5;\n"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (POSTGRES, None),
        (MYSQL, None),
        ("SELECT TOP 5 * FROM users;\n", None),  # T-SQL
        ("SELECT FROM WHERE;\n", "syntax_error"),
        ("SELEC name FROM users;\n", "syntax_error"),
        ("CREATE TABLE t (a int;\n", "syntax_error"),
    ],
)
def test_files_are_kept_when_one_dialect_reads_them(text: str, reason: str | None) -> None:
    assert sql_drop_reason(text) == reason


def test_each_dialect_is_judged_by_its_own_grammar() -> None:
    assert parses_as(POSTGRES, "postgres") and not parses_as(MYSQL, "postgres")
    assert parses_as(MYSQL, "mysql")
