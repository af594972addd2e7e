"""Test helpers: a language's whole train job (a few steps of a tiny model on a small corpus),
and the syntax eval of the model it trained."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.language import Language
from evals.syntax_eval import syntax_eval_main
from specialists.job import parse_args, train_job

# A one-layer model and its tokenizer's vocabulary, as train-job flags.
TINY_MODEL_FLAGS = (
    "--vocab-size", "512", "--hidden-dim", "32", "--num-layers", "1", "--num-heads", "2",
    "--num-kv-heads", "1", "--head-dim", "16", "--ffn-dim", "64", "--max-seq-len", "64",
    "--dtype", "float32",
)  # fmt: skip


def tiny_train_flags(sources: Sequence[Path], work: Path) -> list[str]:
    """Train-job flags for 3 steps of the tiny model on `sources`, the run in work/run and its
    data in work/data/run."""
    return [
        *TINY_MODEL_FLAGS, "--source", *map(str, sources),
        "--out", str(work / "run"), "--data-dir", str(work / "data" / "run"),
        "--steps", "3", "--batch-size", "2", "--seq-len", "32", "--warmup-steps", "1",
        "--log-every", "1", "--eval-every", "3", "--eval-batches", "1", "--save-every", "3",
        "--tokenizer-cache-dir", str(work / "tokenizers"), "--validation-fraction", "0.3",
        "--workers", "1", "--no-progress",
    ]  # fmt: skip


def train_tiny(
    language: Language, sources: Sequence[Path], work: Path, *flags: str
) -> dict[str, Any]:
    """Prepare `sources` and train the tiny model for 3 steps under `work`; returns the job
    summary. `flags` are extra job flags, e.g. relaxed filter thresholds for a synthetic corpus."""
    work.mkdir(parents=True, exist_ok=True)
    argv = [*tiny_train_flags(sources, work), *flags]
    return train_job(language, parse_args(language, "train", argv, "test"))


def check_train_job(
    language: Language, work: Path, modules: Sequence[str], broken: str
) -> dict[str, Any]:
    """Train on `modules` (distinct valid files) plus one `broken` file and check that the job
    dropped exactly the broken one, trained and sampled; returns the summary."""
    source = work / "src"
    source.mkdir(parents=True)
    for index, text in enumerate(modules):
        (source / f"module_{index}{language.extension}").write_text(text)
    (source / f"broken{language.extension}").write_text(broken)
    summary = train_tiny(language, [source], work / "job")
    assert summary["step"] == 3
    assert summary["data"]["dropped"] == {"syntax_error": 1}
    assert summary["data"]["files_kept"] == len(modules)
    assert summary["samples"] == len(language.sample_prompts)
    assert summary["data"]["fim"]["rate"] > 0 and "infill_parses" in summary  # FIM by default
    return summary


def eval_tiny(language: Language, work: Path) -> dict[str, Any]:
    """Run the syntax eval on the model `train_tiny` trained under `work` (a few new tokens per
    prompt, perplexity on the validation split it trained beside); returns results.json."""
    out = work / "eval"
    argv = ["--checkpoint", str(work / "run"), "--max-new-tokens", "4", "--out", str(out)]
    assert syntax_eval_main(language, argv) == 0
    return json.loads((out / "results.json").read_text())
