"""The SQL language filter, dialect-aware: a file is kept when some dialect's sqlglot parser reads it.

A file is kept when one of DIALECTS reads all of it, so Postgres syntax is judged by the Postgres
grammar, MySQL syntax by MySQL's, and so on. psql meta-commands (`\\echo`, `\\quit`: lines
starting with a backslash) are client directives, not SQL, and are skipped. Statements that sqlglot
does not model (CREATE OPERATOR, say: DDL starting with one of DDL_KEYWORDS) need only tokenize in
the dialect with balanced parentheses; queries must parse.
"""

from __future__ import annotations

import logging
import re

from sqlglot import Dialect, TokenType
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token

DIALECTS = ("postgres", "mysql", "sqlite", "tsql")
DDL_KEYWORDS = frozenset({"ALTER", "COMMENT", "CREATE", "DROP", "GRANT", "REVOKE", "SECURITY"})
MAX_PARSE_CHARS = 1_000_000
_PSQL_META_COMMAND = re.compile(r"^\s*\\.*$", re.MULTILINE)

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


def sql_drop_reason(text: str) -> str | None:
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
        reader.parser().parse(statement, sql)
    except (ParseError, TokenError, RecursionError):
        return statement[0].text.upper() in DDL_KEYWORDS and _balanced(statement)
    return True


def _balanced(statement: list[Token]) -> bool:
    depth = 0
    for token in statement:
        depth += (token.token_type == TokenType.L_PAREN) - (token.token_type == TokenType.R_PAREN)
        if depth < 0:
            return False
    return depth == 0
