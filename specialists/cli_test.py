"""The generic commands: `prepare` then `train` share one prepared dataset in the default place,
languages are found by name or alias, every user error is one line; the train job's trackers
(W&B offline) and its training-time evals."""

from __future__ import annotations

import dataclasses
import json
import types
from pathlib import Path

import jax
import numpy as np
import pytest

from core.checkpoint import load_model
from core.config import TrainConfig
from core.export_hf import export_run
from core.hf import read_config
from core.hooks import RunInfo, StepInfo
from core.layout import RunLayout, default_data_dir, default_run_dir
from core.model import init_params
from core.testing import TINY_RUN, tiny_tokenizer
from core.tokenizer import load_tokenizer, tokenizer_hash
from core.tracking import wandb_records
from data_tools.testing import write_fixture_corpus
from specialists.cli import main
from specialists.job import SYNTAX_METRIC, TrainEvalHook, pass_metric
from specialists.languages import discover, language_named
from specialists.testing import TINY_MODEL_FLAGS

FLAGS = [*TINY_MODEL_FLAGS, "--steps", "2", "--batch-size", "2", "--seq-len", "32",
         "--warmup-steps", "1", "--log-every", "1", "--eval-every", "2", "--eval-batches", "1",
         "--save-every", "2", "--validation-fraction", "0.3", "--workers", "1",
         "--no-progress"]  # fmt: skip


def test_prepare_then_train_prepares_once_in_the_default_places(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_fixture_corpus(tmp_path / "src")
    monkeypatch.chdir(tmp_path)
    flags = [*FLAGS, "--source", "src", "--tokenizer-cache-dir", str(tmp_path / "tokenizers")]
    assert main(["prepare", "--language", "python", *flags]) == 0
    manifest = (default_data_dir("python", "test") / "manifest.json").read_text()
    assert "near_dedup" in capsys.readouterr().out
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):  # nothing in $HOME
        monkeypatch.setenv(name, str(tmp_path / "wandb-home"))
    wandb = ["--wandb-project", "codefactory-test", "--wandb-run-name", "tiny"]
    assert main(["train", "--language", "py", *flags, *wandb]) == 0
    out = capsys.readouterr().out
    assert "(prepared before, reused)" in out
    assert "goodput " in out and "eval           eval/humaneval/pass@1: last" in out
    assert (default_data_dir("python", "test") / "manifest.json").read_text() == manifest
    layout = RunLayout(default_run_dir("python", "test"))
    assert layout.data_dir() == default_data_dir("python", "test").absolute()
    summary = json.loads(layout.summary.read_text())
    assert summary["step"] == 2
    # The W&B run (offline, in the run directory) has the whole config and the data's counts.
    (run_file,) = (layout.root / "wandb").glob("offline-run-*/run-*.wandb")
    records = wandb_records(run_file)
    (run,) = (r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run.project == "codefactory-test" and run.display_name == "tiny"
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert {"model", "train", "data", "data_manifest"} <= set(config)
    assert config["data_manifest"]["files_kept"] == summary["data"]["files_kept"]
    assert config["data"]["validation_fraction"] == 0.3
    logged = {
        item.key or "/".join(item.nested_key)
        for r in records
        if r.WhichOneof("record_type") == "history"
        for item in r.history.item
    }
    assert {
        "train/loss",
        "eval/val_loss",
        "eval/humaneval/pass_1",
        "eval/samples/syntax_valid_rate",
    } <= logged


def test_languages_are_found_by_name_or_alias() -> None:
    assert set(discover()) >= {"python", "rust", "js", "sql"}
    assert language_named("JavaScript") is discover()["js"]
    assert language_named("py") is discover()["python"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--language", "cobol"], "--language 'cobol': no specialists/<name> package"),
        (["train", "--language", "python", "--seq-len", "1024"],
         "TrainConfig.seq_len (1024) exceeds ModelConfig.max_seq_len (512)"),
        (["prepare", "--language", "python", "--source", "/no/such/dir"], "does not exist"),
        (["prepare", "--language", "python", "--dropout", "1.5"], "ModelConfig.dropout"),
    ],
)  # fmt: skip
def test_user_errors_are_one_line(
    argv: list[str], message: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and error.count("\n") == 1


def test_help_lists_a_commands_config_fields(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--language", "rust", "--help"])
    out = capsys.readouterr().out
    for flag in ("--num-layers", "--remat-policy", "--peak-lr", "--jaccard-threshold", "--fresh",
                 "--train-eval-tasks", "--profile-steps", "--wandb-project", "--wandb-run-name"):  # fmt: skip
        assert flag in out
    assert main(["--help"]) == 0 and "prepare" in capsys.readouterr().out


def test_a_warm_start_from_an_export_trains_on_its_tokenizer_and_exports_while_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_fixture_corpus(tmp_path / "src")
    monkeypatch.chdir(tmp_path)
    common = [*FLAGS, "--source", "src", "--tokenizer-cache-dir", str(tmp_path / "tokenizers")]
    assert main(["train", "--language", "python", *common, "--out", "first"]) == 0
    export_run(Path("first"), Path("first-hf"), dtype="float32")
    # The source decides the architecture: flags for it are overridden, not mixed in.
    warm = [*common, "--out", "warm", "--data-dir", "warm-data", "--init-from", "first-hf",
            "--num-layers", "3", "--peak-lr", "1e-30", "--weight-decay", "0",
            "--export-hf-every", "1"]  # fmt: skip
    assert main(["train", "--language", "python", *warm]) == 0
    layout = RunLayout(Path("warm"))
    config = json.loads(layout.config.read_text())
    assert config["train"]["init_from"] == "first-hf" and config["model"]["num_layers"] == 1
    assert tokenizer_hash(load_tokenizer(layout.tokenizer)) == tokenizer_hash(
        load_tokenizer(Path("first-hf"))
    )
    _, source = load_model(RunLayout(Path("first")).checkpoints)
    _, started = load_model(layout.checkpoints)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(started), jax.device_get(source))
    assert sorted(path.name for path in (layout.root / "hf").iterdir()) == ["step_1", "step_2"]
    assert read_config(layout.hf_export(2))["architectures"] == ["LlamaForCausalLM"]


def _tiny_step(step: int = 4, stopping: str | None = None) -> StepInfo:
    state = types.SimpleNamespace(params=init_params(TINY_RUN, jax.random.key(0)))
    return StepInfo(step, state, {}, {}, final=False, stopping=stopping)


def _run_info(tmp_path: Path) -> RunInfo:
    return RunInfo(RunLayout(tmp_path), 0, 4, {}, True)


def test_training_time_evals_score_a_benchmark_subset_and_the_samples(tmp_path: Path) -> None:
    python = language_named("python")
    train = TrainConfig(eval_every=4, train_eval_tasks=2, train_eval_new_tokens=8)
    evals = TrainEvalHook(python, TINY_RUN, tiny_tokenizer(), train)
    evals.start(_run_info(tmp_path))
    try:
        assert [task.task_id for task in evals.benchmark.tasks] == ["HumanEval/0", "HumanEval/1"]
        info = _tiny_step()
        evals.run(info)
        assert set(info.metrics) == {
            pass_metric("humaneval"),
            "eval/humaneval/syntax_valid_rate",
            SYNTAX_METRIC,
        }
        assert all(0.0 <= value <= 1.0 for value in info.metrics.values())
        stopping = _tiny_step(stopping="SIGTERM")
        evals.run(stopping)  # a signal's stop saves at once: no evals
        assert stopping.metrics == {}
    finally:
        evals.close()


def test_a_language_without_benchmarks_gets_only_the_syntax_valid_rate(tmp_path: Path) -> None:
    plain = dataclasses.replace(language_named("python"), benchmarks=None)
    evals = TrainEvalHook(plain, TINY_RUN, tiny_tokenizer(), TrainConfig(train_eval_new_tokens=8))
    evals.start(_run_info(tmp_path))
    info = _tiny_step()
    evals.run(info)
    evals.close()
    assert list(info.metrics) == [SYNTAX_METRIC]
