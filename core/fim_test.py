import random
import string

import pytest

from core.fim import (
    FIM_MIDDLE,
    FIM_PREFIX,
    FIM_SUFFIX,
    PSM,
    SPM,
    fim_split,
    infill_prompt,
    infill_prompt_ids,
    restore_document,
)


def _texts(count: int) -> list[str]:
    rng = random.Random(0)
    alphabet = string.ascii_letters + " \n\t(){}:=é中☕"
    return ["".join(rng.choices(alphabet, k=rng.randint(0, 300))) for _ in range(count)]


def _sequence(text: str, seed: int, key: str, rate: float = 1.0, spm: float = 0.5) -> str:
    cut = fim_split(text, seed, key, rate, spm)
    if cut is None:
        return text
    return "".join(sentinel or piece for sentinel, piece in cut.pieces())


def test_every_document_is_recovered_exactly_from_its_transformed_form() -> None:
    for index, text in enumerate(_texts(500)):
        cut = fim_split(text, 7, f"doc{index}", 1.0, 0.5)
        assert cut is not None and cut.text == text
        assert restore_document(_sequence(text, 7, f"doc{index}")) == text


def test_rates_match_the_settings() -> None:
    cuts = [fim_split("x" * 50, 3, f"doc{i}", 0.5, 0.25) for i in range(4000)]
    transformed = [cut for cut in cuts if cut is not None]
    assert 0.46 < len(transformed) / len(cuts) < 0.54
    spm = sum(cut.order == SPM for cut in transformed) / len(transformed)
    assert 0.21 < spm < 0.29
    positions = [len(cut.prefix) for cut in transformed]
    assert min(positions) == 0 and max(positions) >= 45  # uniform over the whole document


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_rate_zero_and_one_are_exact(rate: float) -> None:
    cuts = [fim_split("abc", 0, f"doc{i}", rate, 0.5) for i in range(200)]
    assert all((cut is None) == (rate == 0.0) for cut in cuts)


def test_decisions_depend_on_the_seed_and_the_document_only() -> None:
    texts = _texts(50)
    first = [_sequence(t, 11, f"doc{i}", 0.5) for i, t in enumerate(texts)]
    again = [_sequence(t, 11, f"doc{i}", 0.5) for i, t in reversed(list(enumerate(texts)))]
    assert first == again[::-1]
    assert first != [_sequence(t, 12, f"doc{i}", 0.5) for i, t in enumerate(texts)]


def test_layouts_are_starcoders() -> None:
    cut = fim_split("0123456789", 0, "doc", 1.0, 0.0)
    assert cut.order == PSM
    assert cut.pieces()[0] == (FIM_PREFIX, "") and cut.pieces()[4] == (FIM_MIDDLE, "")
    assert infill_prompt("def f(", "):\n", PSM) == f"{FIM_PREFIX}def f({FIM_SUFFIX}):\n{FIM_MIDDLE}"
    assert infill_prompt("def f(", "):\n", SPM) == (
        f"{FIM_PREFIX}{FIM_SUFFIX}):\n{FIM_MIDDLE}def f("
    )


SENTINELS = {FIM_PREFIX: -1, FIM_SUFFIX: -2, FIM_MIDDLE: -3}


def test_infill_prompt_ids_lay_out_psm_and_keep_the_ids_next_to_the_gap() -> None:
    prefix, suffix = list(range(100, 110)), list(range(200, 204))
    assert infill_prompt_ids(prefix, suffix, SENTINELS, 17) == [-1, *prefix, -2, *suffix, -3]
    # A long prefix loses its start; the short suffix stays whole.
    assert infill_prompt_ids(prefix, suffix, SENTINELS, 12) == [-1, *prefix[-5:], -2, *suffix, -3]
    # Both long: each keeps half the space, the prefix its end and the suffix its start.
    both_long = infill_prompt_ids(prefix, prefix, SENTINELS, 9)
    assert both_long == [-1, *prefix[-3:], -2, *prefix[:3], -3]
    assert infill_prompt_ids([], [], SENTINELS, 3) == [-1, -2, -3]
    with pytest.raises(ValueError, match="at least 3 tokens"):
        infill_prompt_ids(prefix, suffix, SENTINELS, 2)
