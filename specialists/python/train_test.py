import json
from pathlib import Path

from core.trainer import read_metrics
from data_tools.testing import write_fixture_corpus
from specialists.job import SAMPLES_FILE, SUMMARY_FILE
from specialists.python.specialist import SPECIALIST
from specialists.testing import train_tiny

RUN_FILES = {"config.json", "tokenizer.json", "checkpoints", "metrics.jsonl", "loss.png",
             SAMPLES_FILE, SUMMARY_FILE}  # fmt: skip


def test_train_job_writes_its_outputs_resumes_and_restarts(tmp_path: Path) -> None:
    corpus = tmp_path / "src"
    write_fixture_corpus(corpus)
    work = tmp_path / "work"
    run_dir = work / "run"

    first = train_tiny(SPECIALIST, [corpus], work)
    assert {path.name for path in run_dir.iterdir()} >= RUN_FILES
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    assert summary["step"] == 3 and summary["tokens_seen"] == 3 * 2 * 32
    for key in ("params", "tokens_per_s", "mfu", "train_loss_first", "train_loss_last",
                "val_loss", "checkpoint", "data"):  # fmt: skip
        assert summary[key] is not None, key
    assert summary["data"]["files_kept"] > 0 and summary["samples"] == len(
        SPECIALIST.sample_prompts
    )
    assert (run_dir / SAMPLES_FILE).read_text().count("```python") == summary["samples"]
    history = {record["step"]: record["loss"] for record in read_metrics(run_dir / "metrics.jsonl")}

    resumed = train_tiny(SPECIALIST, [corpus], work, "--steps", "5")
    resumed_history = read_metrics(run_dir / "metrics.jsonl")
    assert [record["step"] for record in resumed_history] == [1, 2, 3, 4, 5]
    assert {r["step"]: r["loss"] for r in resumed_history if r["step"] <= 3} == history
    assert resumed["train_loss_first"] == first["train_loss_first"] and resumed["step"] == 5

    restarted = train_tiny(SPECIALIST, [corpus], work, "--fresh")
    assert [record["step"] for record in read_metrics(run_dir / "metrics.jsonl")] == [1, 2, 3]
    assert restarted["train_loss_first"] == first["train_loss_first"]
