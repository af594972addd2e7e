"""SQL, dialect-aware: a file is kept when one of DIALECTS' sqlglot parsers reads all of it, so
Postgres syntax is judged by the Postgres grammar, MySQL syntax by MySQL's, and so on. psql meta-commands (`\\echo`, `\\quit`: lines
starting with a backslash) are client directives, not SQL, and are skipped. Statements that sqlglot
does not model (CREATE OPERATOR, say: DDL starting with one of DDL_KEYWORDS) need only tokenize in
the dialect with balanced parentheses; queries must parse.

The default corpus is SQL already on the machine: the scripts database servers install
(PostgreSQL's share directory: catalog views, information schema, extension scripts; MySQL's).
Its benchmark is Defog sql-eval on SQLite (benchmarks.py).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from sqlglot import Dialect, TokenType, exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token

from core.language import Language
from data_tools.local_roots import require_roots

DIALECTS = ("postgres", "mysql", "sqlite", "tsql")
DDL_KEYWORDS = frozenset({"ALTER", "COMMENT", "CREATE", "DROP", "GRANT", "REVOKE", "SECURITY"})
MAX_PARSE_CHARS = 1_000_000
_PSQL_META_COMMAND = re.compile(r"^\s*\\.*$", re.MULTILINE)

INSTALL_HINT = "install some with `apt-get install postgresql`"
CANDIDATE_ROOTS = (
    Path("/usr/share/postgresql"),
    Path("/usr/local/pgsql/share"),
    Path("/usr/share/mysql"),
)

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # "falling back to Command" warnings


def parses_as(text: str, dialect: str) -> bool:
    """Whether every statement of `text` is valid in `dialect` (see the module docstring)."""
    sql = _PSQL_META_COMMAND.sub("", text)
    reader = Dialect.get_or_raise(dialect)
    try:
        tokens = reader.tokenize(sql)
    except TokenError:
        return False
    return all(_statement_ok(reader, statement, sql) for statement in _statements(tokens))


def drop_reason(text: str) -> str | None:
    """None for SQL that some dialect reads; otherwise "too_large" or "syntax_error"."""
    if len(text) > MAX_PARSE_CHARS:
        return "too_large"
    return None if any(parses_as(text, dialect) for dialect in DIALECTS) else "syntax_error"


def _statements(tokens: list[Token]) -> list[list[Token]]:
    statements: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            statements.append([])
        else:
            statements[-1].append(token)
    return [statement for statement in statements if statement]


def _statement_ok(reader: Dialect, statement: list[Token], sql: str) -> bool:
    try:
        parsed = reader.parser().parse(statement, sql)
    except (ParseError, TokenError, RecursionError):
        parsed = [None]
    if all(
        expression is not None and not isinstance(expression, exp.Command) for expression in parsed
    ):
        return True
    # Not modelled by sqlglot (a parse error, or its opaque Command fallback).
    return statement[0].text.upper() in DDL_KEYWORDS and _balanced(statement)


def _balanced(statement: list[Token]) -> bool:
    depth = 0
    for token in statement:
        depth += (token.token_type == TokenType.L_PAREN) - (token.token_type == TokenType.R_PAREN)
        if depth < 0:
            return False
    return depth == 0


def default_roots() -> list[Path]:
    """The existing SQL script directories, or a one-line error saying how to get one."""
    return require_roots("SQL", list(CANDIDATE_ROOTS), INSTALL_HINT)


def benchmarks() -> Any:
    """Defog sql-eval on SQLite (imported only when evaluating)."""
    from specialists.sql.benchmarks import SUITE

    return SUITE


LANGUAGE = Language(
    name="sql",
    extensions=(".sql",),
    line_comment="--",
    drop_reason=drop_reason,
    default_roots=default_roots,
    sample_prompts=(
        "CREATE TABLE users (\n    id SERIAL PRIMARY KEY,\n",
        "-- Ten customers with the highest total order value.\nSELECT",
        "CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger AS $$\nBEGIN\n",
        "-- Monthly sign-ups in 2024.\nSELECT date_trunc('month', created_at) AS month,",
        "CREATE INDEX",
        "WITH ranked AS (\n    SELECT",
    ),
    aliases=("plpgsql", "t-sql"),
    nearest=("python",),
    benchmarks=benchmarks,
    infill_sample=(
        "-- Each customer's order count and total value.\nSELECT customer_id,\n       ",
        "\nFROM orders\nGROUP BY customer_id;\n",
    ),
)
