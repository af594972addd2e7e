"""The syntax-validity eval on hand-written Go samples, checked by the tree-sitter Go filter."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from core.language import Language
from data_tools.tree_sitter_filter import syntax_drop_reason
from evals.syntax import check_syntax, summarize_syntax
from evals.syntax_eval import syntax_eval_main

go_reason = functools.partial(syntax_drop_reason, grammar="go")
FIB = "func fib(n int) int {\n\tif n < 2 {\n\t\treturn n\n\t}\n\treturn fib(n-1) + fib(n-2)\n}\n"
GO = Language(
    name="go",
    extensions=(".go",),
    line_comment="//",
    drop_reason=go_reason,
    default_roots=list,
    sample_prompts=("// Return the n-th Fibonacci number.\n", "func add(a, b int) int {\n"),
)


def test_valid_invalid_and_codeless_completions() -> None:
    prompts = {"fib": "// Return the n-th Fibonacci number.\n", "add": "func add(a, b int) int {\n"}
    completions = {
        "fib": [FIB, "func fib(n int) int {\n\treturn fib(n-1) +\n", "// TODO\n\n// later\n", ""],
        "add": ["\treturn a + b\n}\n", "\treturn a + b\n"],
        "free": ["\treturn a + b\n}\n", 'package main\n\nimport "fmt"\n'],
    }
    results = check_syntax(completions, prompts, go_reason, "//")
    reasons = {task.task_id: [sample.reason for sample in task.samples] for task in results}
    assert reasons == {
        "fib": [None, "syntax_error", "no_code", "no_code"],
        "add": [None, "syntax_error"],  # the prompt opens the function the completion closes
        "free": ["syntax_error", None],  # no prompt of ours: checked alone
    }
    assert summarize_syntax(results) == {
        "n_tasks": 3,
        "n_samples": 8,
        "n_valid": 3,
        "syntax_valid_rate": 3 / 8,
        "failures": {"syntax_error": 3, "no_code": 2},
    }


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_samples_file_written_from_the_prompts_is_scored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts_file = tmp_path / "prompts.jsonl"
    assert syntax_eval_main(GO, ["--write-prompts", str(prompts_file)]) == 0
    prompts = [json.loads(line) for line in prompts_file.read_text().splitlines()]
    assert prompts == [{"task_id": "go/0", "prompt": GO.sample_prompts[0]},
                       {"task_id": "go/1", "prompt": GO.sample_prompts[1]}]  # fmt: skip
    samples = write_jsonl(
        tmp_path / "samples.jsonl",
        [
            {"task_id": "go/0", "completion": FIB},
            {"task_id": "go/1", "completion": "\treturn a + b\n}\n"},
            {"name": "other", "completion": "func broken( {\n"},
        ],
    )
    assert syntax_eval_main(GO, ["--samples", str(samples), "--out", str(tmp_path / "out")]) == 0
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    assert (document["n_valid"], document["n_samples"], document["failures"]) == (
        2,
        3,
        {"syntax_error": 1},
    )
    assert document["tasks"][1] == {
        "task_id": "go/1",
        "prompt": "func add(a, b int) int {\n",
        "samples": [{"completion": "\treturn a + b\n}\n", "valid": True, "reason": None}],
    }
    assert "syntax-valid   2/3 (66.67%); failed: syntax_error 1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--checkpoint", "nowhere"],
            "--checkpoint nowhere: no trained run there (train one with :train first)",
        ),
        ([], "--checkpoint outputs/go-test: no trained run there"),
        (["--samples", "missing.jsonl"], "cannot read samples file missing.jsonl"),
        (["--samples", "s.jsonl", "--data-dir", "d"], "--data-dir and --perplexity-data need"),
        (["--perplexity-data", "p", "--data-dir", "d"], "give --data-dir or --perplexity-data"),
        (["--max-new-tokens", "0"], "CompletionRequest.max_new_tokens must be positive"),
        (["--n-samples", "2"], "--n-samples > 1 needs --temperature > 0"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert syntax_eval_main(GO, args) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {message}") and error.count("\n") == 1
