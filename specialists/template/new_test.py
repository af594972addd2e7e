"""`new` end to end without Pants: a language created in a temporary tree passes its own tests
(filter, a few training steps, its eval of the trained model) and every command discovers it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from specialists.template.new import create, main

REPO = Path(__file__).resolve().parents[2]


def test_new_language_passes_its_own_tests_and_is_discovered(tmp_path: Path) -> None:
    target = create(tmp_path / "specialists", "lua", [".lua"], "lua", "--", [])
    assert sorted(path.name for path in target.iterdir()) == [
        "BUILD", "language.py", "language_test.py",
    ]  # fmt: skip
    assert (target / "BUILD").read_text() == "specialist_language()\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(target)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:]
    assert "3 passed" in result.stdout
    prompts = tmp_path / "prompts.jsonl"
    command = [sys.executable, "-m", "specialists", "eval", "--language", "lua",
               "--write-prompts", str(prompts)]  # fmt: skip
    subprocess.run(command, cwd=tmp_path, env=env, check=True, capture_output=True, timeout=120)
    first = json.loads(prompts.read_text().splitlines()[0])
    assert first == {"task_id": "lua/0", "prompt": "-- Return the n-th Fibonacci number.\n"}


@pytest.mark.parametrize("form", [["--line-comment=--"], ["--line-comment", "--"]])
def test_a_dash_comment_marker_survives_the_command_line(form: list[str], tmp_path: Path) -> None:
    argv = ["--language", "lua", "--extensions", ".lua", "--grammar", "lua", *form,
            "--roots", "/usr/share/lua", "--specialists-dir", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    text = (tmp_path / "lua" / "language.py").read_text()
    assert 'LINE_COMMENT = "--"\n' in text
    assert 'DEFAULT_ROOTS: tuple[Path, ...] = (Path("/usr/share/lua"),)\n' in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--language", "Go!", "--extensions", ".go", "--grammar", "go"], "--language must be"),
        (["--language", "go", "--extensions", "go", "--grammar", "go"], "--extensions must start"),
        (["--language", "go", "--extensions", ".go", "--grammar", "nope"], "has no grammar 'nope'"),
        (["--language", "go", "--extensions", ".go", "--grammar", "go", "--line-comment"],
         "--line-comment needs a value"),
    ],
)  # fmt: skip
def test_bad_flags_are_one_line(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--specialists-dir", str(tmp_path), *argv]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_an_existing_language_is_not_overwritten(tmp_path: Path, capsys) -> None:
    (tmp_path / "lua").mkdir()
    argv = ["--language", "lua", "--extensions", ".lua", "--grammar", "lua"]
    assert main([*argv, "--specialists-dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
