"""The Python language: its filter, its default corpus, data preparation and the whole train job
(with its training-time HumanEval and syntax evals, TensorBoard events and goodput)."""

import json
import os
import sysconfig
from pathlib import Path

import pytest

from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.goodput import CATEGORIES
from core.layout import RunLayout
from core.tracking import tag, tensorboard_scalars
from core.trainer import read_metrics
from data_tools.prepare import prepare
from data_tools.testing import python_module, write_fixture_corpus
from specialists.python.language import LANGUAGE, MAX_INDENT_COLUMNS, default_roots, drop_reason
from specialists.testing import train_tiny


def test_valid_python_is_kept() -> None:
    assert drop_reason("def f(x):\n    return [i async for i in x]\n") is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("def f(:\n    pass\n", "syntax_error"),
        ("print 'python 2'\n", "syntax_error"),
        ("x = 1\x00\n", "syntax_error"),
        ("x = " + "(" * 100_000 + ")" * 100_000 + "\n", "syntax_error"),  # parser nesting limit
        ("x = " + "-" * 200_000 + "1\n", "too_deeply_nested"),  # recursion in the AST builder
        ("if x:\n" + " " * MAX_INDENT_COLUMNS + "y = 1\n", "too_deeply_nested"),
        ("x = 1\n" * 200_000, "too_large"),
    ],
)
def test_pathological_inputs_are_dropped_not_raised(text: str, reason: str) -> None:
    assert drop_reason(text) == reason


def test_default_roots_cover_stdlib_and_pyenv_without_nesting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for version in ("3.9.1", "3.12.0"):
        stdlib = tmp_path / "versions" / version / "lib" / f"python{version[:-2]}"
        (stdlib / "site-packages").mkdir(parents=True)
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    roots = default_roots()
    assert Path(sysconfig.get_path("stdlib")).resolve() in roots
    assert tmp_path / "versions" / "3.9.1" / "lib" / "python3.9" in roots
    assert not any(a != b and a.is_relative_to(b) for a in roots for b in roots)


def test_python_spec_drops_syntax_errors_and_duplicates(tmp_path: Path) -> None:
    expected = write_fixture_corpus(tmp_path / "src")
    (tmp_path / "src" / "broken.py").write_text(python_module(950) + "\ndef broken(:\n")
    run = RunConfig(
        ModelConfig(vocab_size=300, max_seq_len=32),
        TrainConfig(seq_len=32),
        DataConfig(max_tokens=-1, progress=False, workers=2,
                   tokenizer_cache_dir=str(tmp_path / "tok")),
    )  # fmt: skip
    manifest = prepare(LANGUAGE, run, tmp_path / "out", [str(tmp_path / "src")])
    assert manifest["dropped"]["syntax_error"] == 1
    assert manifest["dropped"]["near_duplicate"] == expected["near_duplicate"]
    assert manifest["files_kept"] == expected["kept"]
    assert manifest["language"] == "python" and os.path.isfile(manifest["tokenizer"]["path"])


def test_train_job_writes_its_outputs_resumes_and_restarts(tmp_path: Path) -> None:
    corpus = tmp_path / "src"
    write_fixture_corpus(corpus)
    work = tmp_path / "work"
    run_dir = work / "run"

    first = train_tiny(LANGUAGE, [corpus], work)
    layout = RunLayout(run_dir)
    run_files = (layout.config, layout.tokenizer, layout.data_link, layout.checkpoints,
                 layout.metrics, layout.loss_curve, layout.samples, layout.summary)  # fmt: skip
    assert all(path.exists() for path in run_files)
    assert layout.data_dir() == (work / "data" / "run").absolute()
    summary = json.loads(layout.summary.read_text())
    assert summary["step"] == 3 and summary["tokens_seen"] == 3 * 2 * 32
    for key in ("params", "tokens_per_s", "mfu", "train_loss_first", "train_loss_last",
                "val_loss", "checkpoint", "data"):  # fmt: skip
        assert summary[key] is not None, key
    assert summary["data"]["files_kept"] > 0
    assert summary["samples"] == len(LANGUAGE.sample_prompts)
    # One block per sample prompt, and the infill sample written out whole.
    assert "infill_parses" in summary
    assert layout.samples.read_text().count("```python") == summary["samples"] + 1
    history = {record["step"]: record["loss"] for record in read_metrics(layout.metrics)}
    # Training-time evals at the end (--eval-every 3): HumanEval's first tasks and the samples.
    (evaluated,) = (r for r in read_metrics(layout.metrics) if "val_loss" in r)
    evals = ("val_loss", "eval/humaneval/pass@1", "eval/humaneval/syntax_valid_rate",
             "eval/samples/syntax_valid_rate")  # fmt: skip
    assert evaluated["step"] == 3 and set(evals) <= set(evaluated)
    assert all(0.0 <= evaluated[name] <= 1.0 for name in evals[1:])
    # TensorBoard holds every metric of the records.
    scalars = tensorboard_scalars(layout.tensorboard)
    for key in ("loss", "lr", "grad_norm", "tokens_per_s", "mfu", *evals):
        assert [step for step, _ in scalars[tag(key)]] == [
            r["step"] for r in read_metrics(layout.metrics) if key in r
        ], key
    assert summary["evals"]["eval/humaneval/pass@1"] == {
        "best": evaluated["eval/humaneval/pass@1"], "best_step": 3,
        "last": evaluated["eval/humaneval/pass@1"], "last_step": 3,
    }  # fmt: skip
    goodput = summary["goodput"]
    assert goodput["eval_s"] > 0 and goodput["compile_s"] > 0 and goodput["restart_s"] == 0
    assert sum(goodput[f"{name}_s"] for name in CATEGORIES) == pytest.approx(goodput["total_s"])

    resumed = train_tiny(LANGUAGE, [corpus], work, "--steps", "5")
    resumed_history = read_metrics(layout.metrics)
    assert [record["step"] for record in resumed_history] == [1, 2, 3, 4, 5]
    assert {r["step"]: r["loss"] for r in resumed_history if r["step"] <= 3} == history
    assert resumed["train_loss_first"] == first["train_loss_first"] and resumed["step"] == 5
    # The summary's evals span the whole run: step 3's before the resume, step 5's after.
    assert resumed["evals"]["val_loss"]["last_step"] == 5
    assert resumed["evals"]["val_loss"]["best"] == min(
        r["val_loss"] for r in resumed_history if "val_loss" in r
    )
    assert resumed["goodput"]["restart_s"] > 0

    restarted = train_tiny(LANGUAGE, [corpus], work, "--fresh")
    assert [record["step"] for record in read_metrics(layout.metrics)] == [1, 2, 3]
    assert restarted["train_loss_first"] == first["train_loss_first"]
