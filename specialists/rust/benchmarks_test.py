"""HumanEval-rs through the eval CLI: hand-written right answers pass, wrong ones fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specialists.cli import main

SAMPLES = [
    ("HumanEval_23_strlen", "    string.len() as isize\n", "passed"),
    ("HumanEval_23_strlen", "    0\n", "failed"),  # an assertion panics
    ("HumanEval_23_strlen", "    string.len()\n", "failed"),  # usize for isize: no compile
    ("HumanEval_23_strlen", "    std::process::exit(0)\n", "failed"),  # skips the tests
    ("HumanEval_23_strlen", "    loop {}\n", "timeout"),
]


def test_right_answers_pass_and_wrong_ones_fail(tmp_path: Path) -> None:
    samples = tmp_path / "samples.jsonl"
    samples.write_text(
        "".join(json.dumps({"name": n, "completion": c}) + "\n" for n, c, _ in SAMPLES)
    )
    out = tmp_path / "run"
    args = ["--samples", str(samples), "--limit", "1", "--timeout", "2", "--out", str(out)]
    assert main(["eval", "--language", "rust", *args]) == 0
    document = json.loads((out / "results.json").read_text())
    assert document["toolchain"].endswith("rustc") and not document["toolchain"].startswith("/root")
    assert [sample["status"] for sample in document["tasks"][0]["samples"]] == [
        s for *_, s in SAMPLES
    ]
    assert document["pass@1"] == pytest.approx(0.2)
