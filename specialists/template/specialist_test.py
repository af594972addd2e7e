"""The specialist's filter, its whole train job on a small synthetic corpus, and its eval of the
model that job trained.

The corpus is comments in the language's comment syntax, so the test holds for any language; the
filter thresholds for comments are relaxed to let it through.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

from specialists.template.config import EXTENSIONS, LINE_COMMENT
from specialists.template.eval import SUITE
from specialists.template.filters import drop_reason
from specialists.template.specialist import SPECIALIST
from specialists.testing import eval_tiny, train_tiny

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "parse",
    "render",
    "buffer",
    "socket",
    "stream",
    "packet",
    "window",
    "cursor",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The work directory of a 3-step training run on 12 comment files, and the job summary."""
    tmp_path = tmp_path_factory.mktemp("trained")
    source = tmp_path / "src"
    source.mkdir()
    rng = random.Random(0)
    for index in range(12):
        lines = [f"{LINE_COMMENT} {' '.join(rng.choices(WORDS, k=12))}\n" for _ in range(20)]
        (source / f"file_{index}{EXTENSIONS[0]}").write_text("".join(lines))
    relaxed = ("--max-comment-fraction", "1.0", "--min-code-lines", "0")
    work = tmp_path / "work"
    return work, train_tiny(SPECIALIST, [source], work, *relaxed)


def test_unbalanced_code_is_a_syntax_error_and_comments_parse() -> None:
    assert drop_reason("((( {{{ ]]] )))\n") == "syntax_error"
    assert drop_reason(f"{LINE_COMMENT} a comment\n") is None


def test_train_job_runs_on_a_small_corpus(trained: tuple[Path, dict[str, Any]]) -> None:
    _, summary = trained
    assert summary["step"] == 3 and summary["data"]["files_kept"] == 12


def test_eval_scores_the_trained_model(trained: tuple[Path, dict[str, Any]]) -> None:
    work, summary = trained
    results = eval_tiny(SUITE, work)
    prompts = len(SPECIALIST.sample_prompts)
    assert (results["n_tasks"], results["n_samples"]) == (prompts, prompts)
    assert results["n_valid"] + sum(results["failures"].values()) == prompts
    # The held-out text is the whole validation split, decoded back to the same tokens.
    validation = summary["data"]["splits"]["validation"]
    perplexity = results["perplexity"]
    assert (perplexity["files"], perplexity["tokens"]) == (
        validation["files"],
        validation["tokens"],
    )
    assert 1 < perplexity["value"] < math.inf and perplexity["bits_per_byte"] > 0
    assert (work / "eval" / "samples.jsonl").read_text().count("\n") == prompts
