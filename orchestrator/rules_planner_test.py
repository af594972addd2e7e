"""The rules planner on a table of requests: languages, splitting, files, dependencies."""

import pytest

from orchestrator.plan import PlanError, dependency_order
from orchestrator.rules_planner import RulePlanner, named_language, split_clauses

# request -> [(language, file, [files it depends on])] in plan order
PLANS = {
    "Build a web scraper in Python that saves to Postgres": [
        ("python", "web_scraper.py", ["db.py"]),
        ("sql", "schema.sql", []),
        ("python", "db.py", ["schema.sql"]),
    ],
    "Write a function that parses CSV and returns a dict": [
        ("python", "parses_csv.py", []),
    ],
    "Write a Rust CLI and a JavaScript frontend": [
        ("rust", "cli.rs", []),
        ("js", "frontend.js", []),
    ],
    "Write a SQL query to count users and a Python function that runs it": [
        ("sql", "query_count.sql", []),
        ("python", "runs.py", ["query_count.sql"]),
    ],
    "Design a Postgres schema for a blog": [("sql", "postgres_schema.sql", [])],
    "Create a Python class for users and write tests for it": [
        ("python", "class_users.py", []),
        ("python", "tests.py", ["class_users.py"]),
    ],
    "- parse args in main.rs\n- implement utils.js": [
        ("rust", "main.rs", []),
        ("js", "utils.js", []),
    ],
    "Build a Go HTTP server. Store sessions in SQLite.": [
        ("go", "http_server.go", ["db.go"]),
        ("sql", "schema.sql", []),
        ("go", "db.go", ["schema.sql"]),
    ],
    "Write a Rust service that reads orders from MySQL and a SQL view of daily totals": [
        ("rust", "service.rs", ["db.rs"]),
        ("sql", "schema.sql", []),
        ("rust", "db.rs", ["schema.sql"]),
        ("sql", "view_daily.sql", ["schema.sql"]),
    ],
    "sort a list of numbers": [("python", "sort_list.py", [])],
}


@pytest.mark.parametrize("request_text", PLANS)
def test_plans_for_requests(request_text):
    plan = RulePlanner().plan(request_text).plan
    files = {subtask.id: subtask.file for subtask in plan.subtasks}
    got = [(s.language, s.file, [files[d] for d in s.depends_on]) for s in plan.subtasks]
    assert got == PLANS[request_text]


def test_dependency_order_puts_the_schema_before_the_code_using_it():
    plan = RulePlanner().plan("Build a web scraper in Python that saves to Postgres").plan
    assert [s.file for s in dependency_order(plan)] == ["schema.sql", "db.py", "web_scraper.py"]
    assert [s.language for s in plan.subtasks] == ["python", "sql", "python"]
    assert plan.subtasks[0].task == "Build a web scraper"


def test_code_fence_sets_language_and_becomes_the_start_of_the_file():
    request = "Finish this please:\n```rust\nfn add(a: i32, b: i32) -> i32 {\n```"
    [subtask] = RulePlanner().plan(request).plan.subtasks
    assert subtask.language == "rust"
    assert subtask.code == "fn add(a: i32, b: i32) -> i32 {\n"


def test_default_language_answers_requests_that_name_none():
    [subtask] = RulePlanner(default_language="rust").plan("reverse a string").plan.subtasks
    assert (subtask.language, subtask.file) == ("rust", "reverse_string.rs")


def test_language_detection_by_word_file_name_and_case():
    assert named_language("a server in Node.js") == "js"
    assert named_language("edit lib.rs and then app.py") == "rust"
    assert named_language("let's go home") is None
    assert named_language("written in Go") == "go"
    assert named_language("a tree node class") is None


def test_clauses_split_only_where_a_new_part_starts():
    assert split_clauses("Write a parser that reads JSON and returns a tree") == [
        "Write a parser that reads JSON and returns a tree"
    ]
    assert split_clauses("Write a parser; then add tests") == ["Write a parser", "add tests"]


def test_empty_request_is_a_plan_error():
    with pytest.raises(PlanError, match="empty request"):
        RulePlanner().plan("  \n ")


@pytest.mark.parametrize(
    "request_text",
    [
        "```" + "a" * 50 + "\nx\n```",
        "```c#\nint x;\n```",
        "x" * 5000,
        "in Python in Python in Python",
        "write данные.py and sql",
        "edit " + "/".join(["a" * 70] * 6) + ".py",
        "save to db. " * 30,
        "\x00\x01 write code",
    ],
)
def test_hostile_requests_still_get_valid_plans(request_text):
    plan = RulePlanner().plan(request_text).plan
    assert 1 <= len(plan.subtasks) <= 16
