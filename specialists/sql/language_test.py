"""The SQL language: the dialect-aware filter and the train job on a small SQL corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from specialists.sql.language import LANGUAGE, drop_reason, parses_as
from specialists.testing import check_train_job

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
    assert drop_reason(text) == reason


def test_each_dialect_is_judged_by_its_own_grammar() -> None:
    assert parses_as(POSTGRES, "postgres") and not parses_as(MYSQL, "postgres")
    assert parses_as(MYSQL, "mysql")


def sql_script(seed: int) -> str:
    """A distinct valid SQL script: a table, an index and queries over it."""
    queries = "".join(
        f"-- Orders above {seed * 7 + index}.\nSELECT customer_id, SUM(total) AS spent\n"
        f"FROM orders_{seed} WHERE total > {seed * 7 + index}\nGROUP BY customer_id\n"
        f"ORDER BY spent DESC LIMIT {index + 1};\n\n"
        for index in range(8)
    )
    return (
        f"CREATE TABLE orders_{seed} (\n  id INTEGER PRIMARY KEY,\n  customer_id INTEGER NOT NULL,\n"
        f"  total NUMERIC(10, 2) NOT NULL\n);\nCREATE INDEX orders_{seed}_customer ON "
        f"orders_{seed} (customer_id);\n\n{queries}"
    )


def test_train_job_on_a_small_sql_corpus(tmp_path: Path) -> None:
    modules = [sql_script(seed) for seed in range(12)]
    check_train_job(LANGUAGE, tmp_path, modules, sql_script(99) + "SELECT FROM WHERE (;\n")
