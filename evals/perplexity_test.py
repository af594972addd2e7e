"""Held-out text for perplexity: files, packed splits, token budgets and bits per byte."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from core.data import MANIFEST_FILE, ShardWriter, token_dtype
from core.tokenizer import EOS_ID, PAD_ID, tokenizer_hash, train_tokenizer
from evals.errors import EvalError
from evals.perplexity import (
    bits_per_byte,
    count_tokens,
    first_tokens,
    packed_texts,
    read_texts,
)


def test_reads_sorted_suffix_files_up_to_the_limit_and_counts_unreadable(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "b.py").write_text("b = 2\n")
    (tmp_path / "pkg" / "a.py").write_text("a = 1\n")
    (tmp_path / "a.py").write_bytes(b"\xff\xfe not utf-8")
    (tmp_path / "notes.txt").write_text("ignored")
    assert read_texts(tmp_path, ".py", max_files=2) == (["b = 2\n"], 1)
    assert read_texts(tmp_path, ".py", max_files=10) == (["b = 2\n", "a = 1\n"], 1)
    assert read_texts(tmp_path / "b.py", ".py", max_files=10) == (["b = 2\n"], 0)


def test_missing_or_empty_data_is_named(tmp_path: Path) -> None:
    with pytest.raises(EvalError, match=r"--perplexity-data .*nowhere: no such"):
        read_texts(tmp_path / "nowhere", ".py", 10)
    with pytest.raises(EvalError, match="no readable non-empty"):
        read_texts(tmp_path, ".py", 10)


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return train_tokenizer(["def f(x):\n    return x + 1\n", "ünïcode = 'ok'\n"] * 20, 300)


def pack_split(directory: Path, texts: list[str], tokenizer: Tokenizer, shard_tokens: int) -> None:
    """A prepared-data directory whose validation split holds `texts`, as data_tools writes it."""
    directory.mkdir()
    writer = ShardWriter(
        directory, "validation", token_dtype(tokenizer.get_vocab_size()), shard_tokens
    )
    for encoding in tokenizer.encode_batch(texts):
        writer.add(np.append(np.asarray(encoding.ids, dtype=np.int32), EOS_ID))
    manifest = {
        "eos_id": EOS_ID,
        "pad_id": PAD_ID,
        "splits": {"validation": writer.close()},
        "tokenizer": {"hash": tokenizer_hash(tokenizer)},
    }
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_packed_split_decodes_back_to_its_files(tmp_path: Path, tokenizer: Tokenizer) -> None:
    texts = ["def f(x):\n    return x + 1\n", "ünïcode = 'ok'\n", "x = f(2)\n" * 5]
    pack_split(tmp_path / "data", texts, tokenizer, shard_tokens=7)  # files cross shards
    assert packed_texts(tmp_path / "data", "validation", tokenizer, 10) == texts
    assert packed_texts(tmp_path / "data", "validation", tokenizer, 2) == texts[:2]


def test_packed_split_errors_are_named(tmp_path: Path, tokenizer: Tokenizer) -> None:
    with pytest.raises(
        EvalError, match=r"nowhere: no prepared data \(manifest.json\); pass --data-dir"
    ):
        packed_texts(tmp_path / "nowhere", "validation", tokenizer, 10)
    pack_split(tmp_path / "empty", [], tokenizer, shard_tokens=7)
    with pytest.raises(EvalError, match="the validation split holds no file"):
        packed_texts(tmp_path / "empty", "validation", tokenizer, 10)
    other = train_tokenizer(["select 1;\n"] * 20, 280)
    with pytest.raises(EvalError, match=r"was packed with tokenizer .*, the model has"):
        packed_texts(tmp_path / "empty", "validation", other, 10)


def test_token_budget_and_bits_per_byte(tokenizer: Tokenizer) -> None:
    texts = ["x = f(2)\n" * 4, "def f(x):\n    return x + 1\n"]
    lengths = [len(encoding.ids) for encoding in tokenizer.encode_batch(texts)]
    assert count_tokens(texts, tokenizer) == sum(lengths) + 2
    assert first_tokens(texts, tokenizer, 10_000) == texts
    assert first_tokens(texts, tokenizer, lengths[0] + 1) == texts[:1]
    (cut,) = first_tokens(texts, tokenizer, 4)  # three tokens of the first text, then its EOS
    assert texts[0].startswith(cut) and len(tokenizer.encode(cut).ids) == 3
    # 2 bits per token, 10 tokens over 4 UTF-8 bytes ("ü" is two): 5 bits per byte.
    assert bits_per_byte(4.0, 10, ["ab", "ü"]) == pytest.approx(5.0)
