from pathlib import Path

from specialists.sql.specialist import SPECIALIST
from specialists.testing import check_train_job


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
    check_train_job(SPECIALIST, tmp_path, modules, sql_script(99) + "SELECT FROM WHERE (;\n")
