"""`new` end to end: a specialist for another language, created in a temporary tree, passes its
own tests (filter, prepare, a few training steps, its eval of the trained model) and its eval
command runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from specialists.template.new import create, main

REPO = Path(__file__).resolve().parents[2]


def test_new_language_passes_its_own_tests(tmp_path: Path) -> None:
    specialists = tmp_path / "specialists"
    target = create(specialists, "lua", [".lua"], "lua", "--", [])
    assert sorted(path.name for path in target.iterdir()) == [
        "BUILD", "config.py", "corpus.py", "eval.py", "filters.py", "prepare.py",
        "specialist.py", "specialist_test.py", "train.py",
    ]  # fmt: skip
    assert "specialists.template" not in (target / "specialist.py").read_text()
    build = (target / "BUILD").read_text()
    assert ":new" not in build and 'name="eval", entry_point="eval.py"' in build
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(target)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:]
    assert "3 passed" in result.stdout
    prompts = tmp_path / "prompts.jsonl"
    command = [sys.executable, "-m", "specialists.lua.eval", "--write-prompts", str(prompts)]
    subprocess.run(command, cwd=tmp_path, env=env, check=True, capture_output=True, timeout=60)
    first = json.loads(prompts.read_text().splitlines()[0])
    assert first == {"task_id": "lua/0", "prompt": "-- Return the n-th Fibonacci number.\n"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--language", "Go!", "--extensions", ".go", "--grammar", "go"], "--language must be"),
        (["--language", "go", "--extensions", "go", "--grammar", "go"], "--extensions must start"),
        (["--language", "go", "--extensions", ".go", "--grammar", "nope"], "has no grammar 'nope'"),
    ],
)
def test_bad_flags_are_one_line(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--specialists-dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
