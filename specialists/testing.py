"""Test helpers: a specialist's whole train job, a few steps of a tiny model on a small corpus,
and the syntax eval of the model it trained."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.config import ModelConfig, save_json
from evals.syntax_eval import SyntaxSuite, syntax_eval_main
from specialists.job import Specialist, parse_args, run

TINY_VOCAB = 512
TINY_MODEL = ModelConfig(
    vocab_size=TINY_VOCAB, hidden_dim=32, num_layers=1, num_heads=2, num_kv_heads=1,
    head_dim=16, ffn_dim=64, max_seq_len=64, dtype="float32",
)  # fmt: skip


def train_tiny(
    specialist: Specialist, sources: Sequence[Path], work: Path, *flags: str
) -> dict[str, Any]:
    """Prepare `sources` and train TINY_MODEL for 3 steps under `work`; returns the job summary.

    The run goes to work/run and its data to work/data/run, the train job's layout.

    `flags` are extra job flags, e.g. relaxed filter thresholds for a synthetic corpus.
    """
    model = work / "model.json"
    work.mkdir(parents=True, exist_ok=True)
    save_json(TINY_MODEL, model)
    argv = [
        "--model-config", str(model), "--source", *map(str, sources),
        "--out", str(work / "run"), "--data-dir", str(work / "data" / "run"),
        "--steps", "3", "--batch-size", "2", "--seq-len", "32", "--warmup-steps", "1",
        "--log-every", "1", "--eval-every", "3", "--eval-batches", "1", "--save-every", "3",
        "--vocab-size", str(TINY_VOCAB), "--tokenizer-cache-dir", str(work / "tokenizers"),
        "--validation-fraction", "0.3", "--workers", "1", "--no-progress", *flags,
    ]  # fmt: skip
    return run(specialist, parse_args(specialist, argv))


def check_train_job(
    specialist: Specialist, work: Path, modules: Sequence[str], broken: str
) -> dict[str, Any]:
    """Train on `modules` (distinct valid files) plus one `broken` file and check that the job
    dropped exactly the broken one, trained and sampled; returns the summary."""
    source = work / "src"
    source.mkdir(parents=True)
    extension = specialist.language.extensions[0]
    for index, text in enumerate(modules):
        (source / f"module_{index}{extension}").write_text(text)
    (source / f"broken{extension}").write_text(broken)
    summary = train_tiny(specialist, [source], work / "job")
    assert summary["step"] == 3
    assert summary["data"]["dropped"] == {"syntax_error": 1}
    assert summary["data"]["files_kept"] == len(modules)
    assert summary["samples"] == len(specialist.sample_prompts)
    return summary


def eval_tiny(suite: SyntaxSuite, work: Path) -> dict[str, Any]:
    """Run `suite`'s eval on the model `train_tiny` trained under `work` (a few new tokens per
    prompt, perplexity on its prepared validation split); returns results.json."""
    out = work / "eval"
    argv = ["--checkpoint", str(work / "run"), "--max-new-tokens", "4", "--out", str(out)]
    assert syntax_eval_main(suite, argv) == 0
    return json.loads((out / "results.json").read_text())
