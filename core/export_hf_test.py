"""The model card's fill-in-the-middle section: the PSM prompt, the stops, and whether the run
trained with FIM, read from its data manifest."""

from __future__ import annotations

from core.export_hf import model_card
from core.fim import infill_prompt
from core.testing import TINY_RUN

FIM = {"rate": 0.5, "spm_rate": 0.5, "seed": 0, "train_files": 200, "psm_files": 52,
       "spm_files": 48, "share": 0.5}  # fmt: skip


def card(**facts) -> str:
    return model_card(TINY_RUN, {"step": 3, **facts}, "float32")


def test_the_card_says_how_to_prompt_for_the_middle_and_where_to_stop() -> None:
    text = card(fim=FIM)
    section = text[text.index("## Fill-in-the-middle") : text.index("## Use")]
    assert "<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>" in section
    assert infill_prompt("{prefix}", "{suffix}") in section
    assert "`<|endoftext|>`" in section and "<file_sep>" in section
    assert "50% of its 200 training files (52 PSM, 48 SPM; `--fim-rate 0.5`" in section


def test_the_card_says_when_the_run_did_not_train_with_fim_or_did_not_record_it() -> None:
    assert "trained without fill-in-the-middle (`--fim-rate 0`)" in card(fim={**FIM, "rate": 0.0})
    assert "is not in its data manifest" in card()
