"""HumanEval-js through the eval CLI: hand-written right answers pass, wrong ones fail."""

from __future__ import annotations

import json
from pathlib import Path

from specialists.cli import main

SAMPLES = [
    ("HumanEval_23_strlen", "  return string.length;\n}\n", "passed", True),
    ("HumanEval_23_strlen", "  return 0;\n}\n", "failed", True),  # node:assert throws
    ("HumanEval_23_strlen", "  process.exit(0);\n}\n", "failed", True),  # skips the tests
    ("HumanEval_23_strlen", "  return (;\n}\n", "failed", False),
    ("HumanEval_23_strlen", "  while (true) {}\n}\n", "timeout", True),
]


def test_right_answers_pass_and_wrong_ones_fail(tmp_path: Path) -> None:
    samples = tmp_path / "samples.jsonl"
    samples.write_text(
        "".join(json.dumps({"name": n, "completion": c}) + "\n" for n, c, *_ in SAMPLES)
    )
    out = tmp_path / "run"
    args = ["--samples", str(samples), "--limit", "1", "--timeout", "2", "--out", str(out)]
    assert main(["eval", "--language", "js", *args]) == 0
    samples_out = json.loads((out / "results.json").read_text())["tasks"][0]["samples"]
    assert [sample["status"] for sample in samples_out] == [s[2] for s in SAMPLES]
    assert [sample["syntax_valid"] for sample in samples_out] == [s[3] for s in SAMPLES]


def test_missing_data_file_is_one_line(tmp_path: Path, capsys) -> None:
    assert (
        main(
            [
                "eval",
                "--language",
                "js",
                "--samples",
                "x.jsonl",
                "--data",
                str(tmp_path / "none.jsonl"),
            ]
        )
        == 2
    )
    assert (
        capsys.readouterr().err
        == f"error: --data {tmp_path / 'none.jsonl'}: no such file or directory\n"
    )
