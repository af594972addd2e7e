"""Runs inside the sandbox (standard library only): the predicted query on a read-only copy of the
database; prints the pass marker when its result set equals any gold query's.

task.json holds "predicted", "marker" and "golds" (each "sql" and "ordered"); db.sqlite is the copy.
Rows compare as multisets unless the gold query orders them; floats compare to 6 decimals.
"""

import json
import sqlite3
import sys


def normalise(value: object) -> object:
    """Floats rounded, so sums taken in another order still match."""
    return round(value, 6) if isinstance(value, float) else value


def rows(connection: sqlite3.Connection, sql: str) -> list[tuple[object, ...]]:
    """The query's result rows, normalised."""
    return [tuple(map(normalise, row)) for row in connection.execute(sql)]


def same_result(
    predicted: list[tuple[object, ...]], gold: list[tuple[object, ...]], ordered: bool
) -> bool:
    """Equal row lists, or equal multisets of rows when order does not matter."""
    if not ordered:
        predicted, gold = sorted(predicted, key=repr), sorted(gold, key=repr)
    return predicted == gold


def main() -> None:
    with open("task.json") as handle:
        task = json.load(handle)
    connection = sqlite3.connect("file:db.sqlite?mode=ro", uri=True)
    predicted = rows(connection, task["predicted"])
    for gold in task["golds"]:
        if same_result(predicted, rows(connection, gold["sql"]), gold["ordered"]):
            print(task["marker"])
            return
    sys.exit("the result set differs from every gold query's")


if __name__ == "__main__":
    main()
