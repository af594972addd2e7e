import re
from pathlib import Path

import pytest
from tokenizers import trainers

from core.tokenizer import (
    EOS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    STARCODER2_VOCAB_SIZE,
    TokenizerError,
    bpe_trainer,
    check_special_ids,
    load_tokenizer,
    new_bpe_tokenizer,
    tokenizer_hash,
    train_tokenizer,
)

_CORPUS = [
    "def add(a, b):\n    return a + b  # sum 12345\n",
    "class Point:\n    def __init__(self, x: float) -> None:\n        self.x = x\n",
    "print('héllo wörld, 日本語, emoji 🎉')\nvalue = 0xFF + 3.14159\n",
] * 20
_SAMPLES = [
    *_CORPUS[:3],
    "tabs\tand\r\nwindows newlines\n\n\n   trailing   ",
    "unseen unicode: Ωμέγα ∑ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u200b zero-width and \x00 null",
    "literal specials <|endoftext|><fim_prefix> inside text",
    "",
]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(_CORPUS, vocab_size=400)


def test_special_tokens_come_first_in_starcoder2_order(tokenizer) -> None:
    assert [tokenizer.id_to_token(i) for i in range(len(SPECIAL_TOKENS))] == list(SPECIAL_TOKENS)
    assert tokenizer.id_to_token(EOS_ID) == "<|endoftext|>"
    assert tokenizer.id_to_token(PAD_ID) == "<fim_pad>"


@pytest.mark.parametrize("text", _SAMPLES)
def test_round_trip_is_lossless(tokenizer, text: str) -> None:
    ids = tokenizer.encode(text).ids
    assert tokenizer.decode(ids, skip_special_tokens=False) == text


def test_digits_are_split_individually(tokenizer) -> None:
    tokens = tokenizer.encode("x = 12345").tokens
    assert [t for t in tokens if t.strip("Ġ").isdigit()] == ["1", "2", "3", "4", "5"]


def test_default_trainer_matches_starcoder2_shape() -> None:
    trainer = bpe_trainer()
    assert trainer.vocab_size == STARCODER2_VOCAB_SIZE == 49152
    assert [token.content for token in trainer.special_tokens] == list(SPECIAL_TOKENS)


def test_load_from_file_and_directory(tokenizer, tmp_path: Path) -> None:
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    for source in (tmp_path / "tokenizer.json", tmp_path):
        loaded = load_tokenizer(source)
        assert tokenizer_hash(loaded) == tokenizer_hash(tokenizer)


def test_wrong_special_token_ids_are_rejected(tmp_path: Path) -> None:
    other = new_bpe_tokenizer()
    reordered = trainers.BpeTrainer(vocab_size=300, special_tokens=list(reversed(SPECIAL_TOKENS)))
    other.train_from_iterator(_CORPUS, trainer=reordered)
    other.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(TokenizerError, match=re.escape("<|endoftext|> at id 36, the model")):
        check_special_ids(load_tokenizer(tmp_path), EOS_ID, PAD_ID, "other")
    check_special_ids(other, 36, 32, "other")  # where this one keeps them


def test_a_foreign_tokenizer_needs_a_special_eos_and_a_pad_outside_the_text(tokenizer) -> None:
    foreign = new_bpe_tokenizer()
    foreign.train_from_iterator(
        _CORPUS, trainer=trainers.BpeTrainer(vocab_size=300, special_tokens=["</s>"])
    )
    check_special_ids(foreign, 0, 300, "foreign")  # pad: a spare embedding row
    with pytest.raises(TokenizerError, match="no special token at the EOS id 5"):
        check_special_ids(foreign, 5, 300, "foreign")
    with pytest.raises(TokenizerError, match="pad id 7 is an ordinary token"):
        check_special_ids(foreign, 0, 7, "foreign")


def test_missing_tokenizer_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="cannot load tokenizer"):
        load_tokenizer(tmp_path / "nothing-here.json")
