"""Fill-in-the-middle in every specialist: on by default in each language's train presets, shown
in the train summary, and one infill among the train job's samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.goodput import CATEGORIES
from core.layout import RunLayout
from core.testing import tiny_run_dir
from specialists.job import parse_args, run_config, summary_lines, write_samples
from specialists.languages import discover, language_named

FIM = {"rate": 0.5, "spm_rate": 0.5, "seed": 0, "train_files": 80, "psm_files": 21,
       "spm_files": 19, "share": 0.5}  # fmt: skip
SPLITS = {"train": {"tokens": 1000}, "validation": {"tokens": 100}}
SUMMARY = {
    "run_dir": "outputs/python-test", "config": "test", "params": 10, "step": 2,
    "tokens_seen": 64, "tokens_per_s": 10.0, "mfu": 0.01, "train_loss_first": 9.0,
    "train_loss_last": 8.0, "val_loss": 8.5, "checkpoint": "outputs/python-test/checkpoints",
    "goodput": {"goodput": 1.0, "total_s": 1.0, **{f"{name}_s": 0.0 for name in CATEGORIES}},
    "samples": 6, "samples_parse": 2, "infill_parses": True,
    "data": {"files_in": 100, "files_kept": 90, "splits": SPLITS, "reused": False, "fim": FIM},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(discover()))
@pytest.mark.parametrize("preset", ["test", "prod"])
def test_every_specialist_trains_with_fim_by_default(name: str, preset: str) -> None:
    language = language_named(name)
    args = parse_args(language, "train", ["--config", preset], "train")
    assert run_config(args).data.fim_rate == 0.5
    assert language.infill_sample is not None
    prefix, suffix = language.infill_sample
    assert prefix.strip() and suffix.strip()


def test_the_summary_shows_the_fim_share_and_the_infill_sample() -> None:
    lines = summary_lines(SUMMARY)
    assert (
        "fim            50.0% of 80 train files in fill-in-the-middle form (21 PSM, 19 SPM; "
        "--fim-rate 0.5)"
    ) in lines
    assert any(line.startswith("samples        2/6 parse, the infill parses (") for line in lines)
    off = {**SUMMARY, "data": {**SUMMARY["data"], "fim": {**FIM, "rate": 0.0}}}
    assert "fim            off (--fim-rate 0)" in summary_lines(off)


def test_samples_include_one_infill(tmp_path: Path) -> None:
    layout = RunLayout(tiny_run_dir(tmp_path / "run"))
    language = language_named("python")
    counts = write_samples(language, layout, seed=0)
    assert counts["samples"] == len(language.sample_prompts)
    assert isinstance(counts["infill_parses"], bool)
    samples = layout.samples.read_text()
    prefix, suffix = language.infill_sample
    assert samples.count("## Infill: ") == 1 and prefix in samples and suffix in samples
