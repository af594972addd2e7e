"""Reading human-eval-format samples files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.errors import EvalError
from evals.samples import read_samples


def test_groups_completions_and_stringifies_integer_ids(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    records = [
        {"task_id": "HumanEval/0", "completion": "a"},
        {"task_id": 11, "completion": "b"},
        {"task_id": "HumanEval/0", "completion": "c"},
        {"name": "HumanEval_23_strlen", "completion": "d"},
        {"id": 7, "completion": "e"},
    ]
    path.write_text("\n".join(json.dumps(record) for record in records) + "\n\n")
    assert read_samples(path) == {
        "HumanEval/0": ["a", "c"],
        "11": ["b"],
        "HumanEval_23_strlen": ["d"],
        "7": ["e"],
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "samples.jsonl:2: expected a JSON object"),
        ('{"task_id": 1}', "samples.jsonl:2: expected a JSON object"),
        ('{"completion": ""}', "samples.jsonl:2: expected a JSON object with completion and one"),
        ('{"task_id": 1, "completion": 3}', "samples.jsonl:2: completion must be a string"),
    ],
)
def test_bad_line_is_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_text('{"task_id": 1, "completion": ""}\n' + line + "\n")
    with pytest.raises(EvalError, match=message):
        read_samples(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(EvalError, match=r"cannot read samples file .*absent.jsonl"):
        read_samples(tmp_path / "absent.jsonl")
