import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from tokenizers import normalizers

from core.config import ALL_TOKENS, DataConfig, ModelConfig, RunConfig, TrainConfig
from core.data import BatchLoader, PackedDataset
from core.tokenizer import EOS_ID, TokenizerError, bpe_trainer, load_tokenizer, new_bpe_tokenizer
from data_tools.filters import generic_language
from data_tools.pack import split_of, validation_budget
from data_tools.prepare import prepare
from data_tools.summary import summary_table
from data_tools.testing import PLANTED_DROPS, python_module, write_fixture_corpus

SPEC = generic_language("fixture", (".py",))


def _config(tmp_path: Path, seq_len: int = 32, **overrides) -> RunConfig:
    """A run whose tokenizer has 300 ids and rows 33 tokens; DataConfig `overrides`."""
    settings = {"max_tokens": ALL_TOKENS, "validation_fraction": 0.2, "shard_rows": 16,
                "progress": False, "workers": 2, "dedup_eval_sample": 50,
                "tokenizer_cache_dir": str(tmp_path / "tokenizers")}  # fmt: skip
    return RunConfig(
        ModelConfig(vocab_size=300, max_seq_len=32),
        TrainConfig(seq_len=seq_len),
        DataConfig(**settings | overrides),
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("fixture") / "src"
    return root, write_fixture_corpus(root)


def test_manifest_counts_every_file_once_by_reason(corpus, tmp_path: Path) -> None:
    root, expected = corpus
    manifest = prepare(SPEC, _config(tmp_path), tmp_path / "out", [str(root)])
    assert manifest["files_in"] == expected["files_in"]
    assert manifest["files_kept"] == expected["kept"]
    for reason in [*PLANTED_DROPS, "exact_duplicate", "near_duplicate"]:
        assert manifest["dropped"][reason] == expected[reason], reason
    assert manifest["files_in"] == manifest["files_kept"] + sum(manifest["dropped"].values())
    assert manifest["dedup"]["lsh_quality"]["true_pairs"] >= 2
    assert manifest["dedup"]["lsh_quality"]["recall"] == 1.0
    assert manifest["stages"][0]["stage"] == "list+read+exact_dedup"


def test_packed_splits_hold_every_kept_file_and_round_trip(corpus, tmp_path: Path) -> None:
    root, expected = corpus
    manifest = prepare(SPEC, _config(tmp_path), tmp_path / "out", [str(root)])
    splits = manifest["splits"]
    assert splits["train"]["files"] + splits["validation"]["files"] == expected["kept"]
    assert splits["validation"]["files"] > 0
    train = PackedDataset(tmp_path / "out", "train")
    assert len(train) == splits["train"]["rows"] and train.seq_len == 32
    stream = np.concatenate([train[i] for i in range(len(train))])
    assert (stream == EOS_ID).sum() == splits["train"]["files"]
    tokenizer = load_tokenizer(manifest["tokenizer"]["path"])
    first_file = stream[: int(np.argmax(stream == EOS_ID))]
    decoded = tokenizer.decode(first_file.tolist(), skip_special_tokens=False)
    assert decoded.startswith('"""Module')
    assert manifest["tokenizer"]["round_trip_files"] == expected["kept"]
    assert next(BatchLoader(train, 4, seed=0)).shape == (4, 33)


def test_rerun_reuses_every_stage(corpus, tmp_path: Path) -> None:
    root, _ = corpus
    first = prepare(SPEC, _config(tmp_path), tmp_path / "out", [str(root)])
    second = prepare(SPEC, _config(tmp_path), tmp_path / "out", [str(root)])
    assert not first["reused"] and second["reused"]
    changed = prepare(SPEC, _config(tmp_path, seq_len=16), tmp_path / "out", [str(root)])
    assert not changed["reused"] and changed["corpus"]["reused"]
    assert changed["tokenizer"]["reused"] and changed["seq_len"] == 16


def test_kept_set_does_not_depend_on_process_count(corpus, tmp_path: Path) -> None:
    root, _ = corpus
    kept = []
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        prepare(SPEC, _config(tmp_path, workers=workers, batch_files=3), out, [str(root)])
        kept.append(json.loads((out / "corpus" / "index.json").read_text()))
    assert kept[0] == kept[1]


def test_token_budget_stops_packing_early(corpus, tmp_path: Path) -> None:
    root, _ = corpus
    full = prepare(SPEC, _config(tmp_path), tmp_path / "full", [str(root)])
    budget = full["splits"]["train"]["tokens"] // 4
    small = prepare(SPEC, _config(tmp_path, max_tokens=budget), tmp_path / "small", [str(root)])
    assert budget <= small["splits"]["train"]["tokens"] < full["splits"]["train"]["tokens"]
    share = validation_budget(budget, _config(tmp_path).data.validation_fraction)
    assert (
        share <= small["splits"]["validation"]["tokens"] <= full["splits"]["validation"]["tokens"]
    )


def test_validation_files_are_spread_over_the_packing_order() -> None:
    hashes = sorted(hashlib.blake2b(str(i).encode()).hexdigest() for i in range(4000))
    splits = [split_of(content_hash, 0.05) for content_hash in hashes]
    halves = splits[:2000].count("validation"), splits[2000:].count("validation")
    assert all(60 <= count <= 140 for count in halves), halves


def test_dataset_file_source_uses_the_datasets_path(tmp_path: Path) -> None:
    rows = [{"content": f"def f{i}(x):\n    return x * {i}\n" + "y = 1\n" * 20 + "#" * i}
            for i in range(3)] + [{"content": "short"}]  # fmt: skip
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows))
    manifest = prepare(SPEC, _config(tmp_path), tmp_path / "out", [str(path)])
    assert manifest["files_in"] == 4 and manifest["dropped"] == {"too_small": 1}
    assert manifest["files_kept"] == 3


def test_summary_table_shows_stages_drops_and_dedup_quality(corpus, tmp_path: Path) -> None:
    root, _ = corpus
    table = summary_table(prepare(SPEC, _config(tmp_path), tmp_path / "out", [str(root)]))
    assert "near_dedup" in table and "exact_duplicate=3" in table and "precision" in table


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("/no/such/dir", "does not exist"),
        ("rows.csv", "not a directory or a .json"),
        ("not a dataset!", "neither a local path nor a loadable dataset"),
    ],
)
def test_bad_source_is_one_clear_error(tmp_path: Path, source: str, message: str) -> None:
    (tmp_path / "rows.csv").write_text("a,b\n")
    source = str(tmp_path / source) if source.endswith(".csv") else source
    with pytest.raises(ValueError, match=message):
        prepare(SPEC, _config(tmp_path), tmp_path / "out", [source])


def test_a_given_tokenizer_larger_than_the_model_vocabulary_is_rejected(
    corpus, tmp_path: Path
) -> None:
    root, _ = corpus
    large = new_bpe_tokenizer()
    large.train_from_iterator([python_module(i) for i in range(40)], trainer=bpe_trainer(400))
    large.save(str(tmp_path / "tokenizer.json"))
    config = _config(tmp_path, tokenizer=str(tmp_path / "tokenizer.json"))
    with pytest.raises(TokenizerError, match=r"more than ModelConfig.vocab_size \(300\)"):
        prepare(SPEC, config, tmp_path / "out", [str(root)])


def test_given_tokenizer_is_used_and_must_be_lossless(corpus, tmp_path: Path) -> None:
    root, _ = corpus
    lossy = new_bpe_tokenizer()
    lossy.normalizer = normalizers.Lowercase()
    lossy.train_from_iterator([python_module(0)], trainer=bpe_trainer(300))
    lossy.save(str(tmp_path / "tokenizer.json"))
    config = _config(tmp_path, tokenizer=str(tmp_path / "tokenizer.json"))
    with pytest.raises(TokenizerError, match="does not round-trip"):
        prepare(SPEC, config, tmp_path / "out", [str(root)])
