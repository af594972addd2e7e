"""The SQL specialist's data: its LanguageSpec and the default local corpus.

The default corpus is SQL already on the machine: the scripts database servers install
(PostgreSQL's share directory: catalog views, information schema, extension scripts; MySQL's).
"""

from __future__ import annotations

from pathlib import Path

from data_tools.local_roots import require_roots
from data_tools.spec import LanguageSpec
from specialists.sql.filters import sql_drop_reason

INSTALL_HINT = "install some with `apt-get install postgresql`"
CANDIDATE_ROOTS = (
    Path("/usr/share/postgresql"),
    Path("/usr/local/pgsql/share"),
    Path("/usr/share/mysql"),
)


def default_roots() -> list[Path]:
    """The existing SQL script directories, or a one-line error saying how to get one."""
    return require_roots("SQL", list(CANDIDATE_ROOTS), INSTALL_HINT)


SQL = LanguageSpec(
    name="sql",
    extensions=(".sql",),
    line_comment="--",
    drop_reason=sql_drop_reason,
    default_roots=default_roots,
)
