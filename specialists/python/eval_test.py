"""The eval CLI end to end on a few tasks: samples files, a fake model, results.json and errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evals import cli as shared_cli
from specialists.python import eval as eval_cli
from specialists.python.benchmarks import load_humaneval, load_mbpp

FAST = ["--limit", "3", "--timeout", "3"]
FORK_BOMB = "    import os\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n"


class CanonicalCompleter:
    """A fake model that answers each prompt with the reference solution, plus a wrong sample."""

    def __init__(self) -> None:
        tasks = [*load_humaneval(), *load_mbpp(split="all")]
        self.answers = {task.prompt: task.canonical for task in tasks}
        self.perplexity_texts: list[str] = []

    def complete(self, prompts: list[str], n_samples: int, **settings: Any) -> list[list[str]]:
        wrong = ["    return None\n"] * (n_samples - 1)
        return [[self.answers[prompt], *wrong] for prompt in prompts]

    def perplexity(self, texts: list[str]) -> float:
        self.perplexity_texts = texts
        return 3.5


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def results(out: Path) -> dict[str, Any]:
    return json.loads((out / "results.json").read_text())


def test_write_canonical_then_score_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    canonical = tmp_path / "canonical.jsonl"
    assert eval_cli.main(["--write-canonical", str(canonical), *FAST]) == 0
    ids = [json.loads(line)["task_id"] for line in canonical.read_text().splitlines()]
    assert ids == ["HumanEval/0", "HumanEval/1", "HumanEval/2", 11, 12, 13]

    assert eval_cli.main(["--samples", str(canonical), "--out", str(tmp_path / "run"), *FAST]) == 0
    document = results(tmp_path / "run")
    assert (document["benchmark"], document["n_tasks"], document["pass@1"]) == ("all", 6, 1.0)
    assert document["benchmarks"]["mbpp"]["n_tasks"] == 3
    assert document["sandbox"]["network"].startswith("none")
    assert "humaneval  3" in capsys.readouterr().out


def test_correct_wrong_and_hostile_samples(tmp_path: Path) -> None:
    first, second, third = load_humaneval()[:3]
    samples = write_jsonl(
        tmp_path / "samples.jsonl",
        [
            {"task_id": first.task_id, "completion": first.canonical},
            {"task_id": second.task_id, "completion": "    return ['wrong']\n"},
            {"task_id": third.task_id, "completion": FORK_BOMB},
            {"task_id": "HumanEval/100", "completion": "outside --limit"},
        ],
    )
    out = tmp_path / "run"
    args = ["--samples", str(samples), "--benchmark", "humaneval", "--out", str(out), *FAST]
    assert eval_cli.main(args) == 0
    document = results(out)
    assert (document["benchmark"], document["n_tasks"]) == ("humaneval", 3)
    assert document["pass@1"] == pytest.approx(1 / 3)
    assert [task["samples"][0]["status"] for task in document["tasks"]] == [
        "passed",
        "failed",
        "timeout",
    ]
    assert document["timeouts"] == 1


def test_mbpp_samples_use_integer_ids_and_the_chosen_split(tmp_path: Path) -> None:
    tasks = load_mbpp(split="validation")[:2]
    samples = write_jsonl(
        tmp_path / "samples.jsonl",
        [
            {"task_id": tasks[0].sample_id, "completion": tasks[0].canonical},
            {"task_id": tasks[1].sample_id, "completion": "def nothing():\n    pass\n"},
        ],
    )
    out = tmp_path / "run"
    args = [
        "--samples",
        str(samples),
        "--benchmark",
        "mbpp",
        "--split",
        "validation",
        "--out",
        str(out),
    ]
    assert eval_cli.main([*args, "--limit", "2"]) == 0
    document = results(out)
    assert [task["task_id"] for task in document["tasks"]] == ["511", "512"]
    assert [task["n_passed"] for task in document["tasks"]] == [1, 0]


def test_checkpoint_generation_and_perplexity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    completer = CanonicalCompleter()
    loaded: list[Path] = []
    monkeypatch.setattr(
        shared_cli, "_load_completer", lambda path: loaded.append(path) or completer
    )
    held_out = tmp_path / "held_out"
    held_out.mkdir()
    (held_out / "module.py").write_text("def f():\n    return 1\n")
    out = tmp_path / "run"
    args = [
        "--checkpoint",
        str(tmp_path / "ckpt"),
        "--perplexity-data",
        str(held_out),
        "--out",
        str(out),
    ]
    assert eval_cli.main([*args, "--n-samples", "2", "--temperature", "0.8", *FAST]) == 0
    document = results(out)
    assert loaded == [tmp_path / "ckpt"]
    assert document["pass@1"] == pytest.approx(0.5) and document["pass@2"] == pytest.approx(1.0)
    assert document["generation"]["n_samples"] == 2
    assert document["perplexity"] == {"value": 3.5, "data": str(held_out), "files": 1, "skipped": 0}
    assert completer.perplexity_texts == ["def f():\n    return 1\n"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--samples", "missing.jsonl"],
            "cannot read samples file missing.jsonl: No such file or directory",
        ),
        (
            ["--samples", "x.jsonl", "--perplexity-data", "d"],
            "--perplexity-data needs --checkpoint",
        ),
        (["--write-canonical", "x.jsonl", "--limit", "0"], "--limit must be positive"),
        (["--samples", "x.jsonl", "--timeout", "-1"], "--timeout must be positive"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert eval_cli.main(args) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {message}") and error.count("\n") == 1
