"""Defog sql-eval on SQLite for the SQL specialist: 210 questions over 11 databases.

The prompt is the database's schema as CREATE TABLE statements with each column's note as a
comment, the glossary and instructions, then the question; the completion is one SQLite query.
It runs (check_query.py, in the sandbox) on a read-only copy of the database and matches when its
result set equals any of the question's gold queries' (`query` holds them, `;`-separated).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.errors import EvalError
from evals.harness import Benchmark
from evals.sandbox import Program
from evals.shared_data import data_file
from evals.suite import EvalSuite
from evals.toolchain import PYTHON_FLAGS, sandbox_python
from specialists.sql import check_query
from specialists.sql.language import LANGUAGE

BENCHMARK = "sql-eval"
DATA_DIR = "defog-sql-eval-sqlite"
STOP = (";", "\n\n", "\n--")
_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class SqlTask:
    """One question; `task_id` is its `id` as a string, `golds` its acceptable queries."""

    task_id: str
    prompt: str
    database: Path
    golds: tuple[str, ...]
    category: str


def split_statements(sql: str) -> list[str]:
    """The statements of `sql` without their semicolons (a `;` inside a string does not split)."""
    statements, current = [], ""
    for piece in sql.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            statements.append(current.strip().removesuffix(";").strip())
            current = ""
    statements.append(current.strip().removesuffix(";").strip())
    return [statement for statement in statements if statement]


def schema_prompt(database: str, metadata: dict[str, Any]) -> str:
    """The schema as CREATE TABLE statements with column notes, then the glossary as comments."""
    parts = [f"-- Database: {database} (SQLite)\n"]
    for table, columns in metadata["table_metadata"].items():
        lines = [
            f"  {column['column_name']} {column['data_type']}"
            + ("," if index < len(columns) - 1 else "")
            + f" -- {' '.join(column['column_description'].split())}"
            for index, column in enumerate(columns)
        ]
        parts.append(f"CREATE TABLE {table} (\n" + "\n".join(lines) + "\n);\n")
    parts += [f"-- {line}\n" for line in metadata.get("glossary", "").splitlines() if line.strip()]
    return "".join(parts)


def load_sql_eval(directory: Path) -> list[SqlTask]:
    """The questions of a sql-eval directory (questions_gen_sqlite.jsonl, metadata/, databases/)."""
    path = directory / "questions_gen_sqlite.jsonl"
    try:
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as error:
        raise EvalError(f"cannot read sql-eval questions {path}: {error}") from None
    schemas = {
        name: schema_prompt(name, _metadata(directory, name))
        for name in sorted({record["db_name"] for record in records})
    }
    return [
        SqlTask(
            task_id=str(record["id"]),
            prompt=_prompt(schemas[record["db_name"]], record),
            database=directory / "databases" / f"{record['db_name']}.sqlite",
            golds=tuple(split_statements(record["query"])),
            category=record["query_category"],
        )
        for record in records
    ]


def canonical_sample(task: SqlTask) -> dict[str, Any]:
    """The first gold query as a samples-file record (id, completion)."""
    return {"id": int(task.task_id), "completion": task.golds[0]}


def sql_benchmark(name: str, tasks: Sequence[SqlTask], python: str) -> Benchmark[SqlTask]:
    """`tasks` checked by check_query.py under `python` in the sandbox."""
    checker = Path(check_query.__file__).read_text()

    def program(task: SqlTask, completion: str, pass_marker: str) -> Program:
        golds = [{"sql": gold, "ordered": bool(_ORDER_BY.search(gold))} for gold in task.golds]
        predicted = completion.strip().removesuffix(";")
        spec = {"predicted": predicted, "marker": pass_marker, "golds": golds}
        files = {
            "check.py": checker,
            "task.json": json.dumps(spec),
            "db.sqlite": _read(task.database),
        }
        return Program((python, *PYTHON_FLAGS, "check.py"), files)

    return Benchmark(
        name, tasks, STOP, program, lambda task, completion: LANGUAGE.syntax_ok(completion)
    )


def _metadata(directory: Path, database: str) -> dict[str, Any]:
    path = directory / "metadata" / f"{database}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise EvalError(f"cannot read sql-eval metadata {path}: {error}") from None


def _prompt(schema: str, record: dict[str, Any]) -> str:
    instructions = f"-- Instructions: {record['instructions']}\n" if record["instructions"] else ""
    return (
        f"{schema}{instructions}-- Question: {record['question']}\n"
        "-- A SQLite query that answers the question:\n"
    )


@functools.cache
def _read(database: Path) -> bytes:
    try:
        return database.read_bytes()
    except OSError as error:
        raise EvalError(f"cannot read sql-eval database {database}: {error.strerror}") from None


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    """Where the questions and databases come from."""
    parser.add_argument(
        "--data", type=Path, help=f"sql-eval directory (default: {DATA_DIR} in shared data)"
    )


SUITE = EvalSuite(
    description="Score a checkpoint or a samples file on Defog sql-eval (SQLite) in a sandbox.",
    benchmarks={BENCHMARK: lambda args: load_sql_eval(data_file(args.data, DATA_DIR, "--data"))},
    toolchain=sandbox_python,
    make_benchmark=sql_benchmark,
    add_arguments=add_data_argument,
    canonical=canonical_sample,
    group=lambda task: task.category,
)
