import json
from pathlib import Path

import fsspec
import numpy as np
import pytest

from core.data import (
    MANIFEST_FILE,
    BatchLoader,
    DataError,
    ShardWriter,
    TokenStream,
    eval_batches,
    open_windows,
    token_dtype,
)

SEQ_LEN = 7
PAD, EOS = 4, 0


def _write(directory: Path, tokens: int, shard_tokens: int = 16, vocab: int = 300) -> np.ndarray:
    """A train stream of `tokens` distinct ids (written in uneven pieces) and an empty
    validation split; returns the stream."""
    stream = (np.arange(tokens) % (vocab - 100) + 100).astype(np.int64)
    writer = ShardWriter(directory, "train", token_dtype(vocab), shard_tokens)
    for piece in np.array_split(stream, 5):
        writer.add(piece)
    split = writer.close()
    empty = ShardWriter(directory, "validation", token_dtype(vocab), shard_tokens).close()
    manifest = {"eos_id": EOS, "pad_id": PAD, "splits": {"train": split, "validation": empty}}
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))
    return stream


def test_streams_are_uint16_while_the_vocabulary_fits() -> None:
    assert token_dtype(49152) == np.uint16 and token_dtype(1 << 16) == np.uint16
    assert token_dtype((1 << 16) + 1) == np.uint32


def test_writer_cuts_shards_and_the_stream_reads_across_them(tmp_path: Path) -> None:
    stream = _write(tmp_path, tokens=70)
    split = json.loads((tmp_path / MANIFEST_FILE).read_text())["splits"]["train"]
    assert [shard["tokens"] for shard in split["shards"]] == [16, 16, 16, 16, 6]
    assert split["dtype"] == "uint16"
    assert np.load(tmp_path / "train-00000.npy", mmap_mode="r").dtype == np.uint16
    tokens = TokenStream(tmp_path, "train")
    assert len(tokens) == 70
    np.testing.assert_array_equal(tokens.read(10, 50), stream[10:50])
    assert tokens.read(60, 99).tolist() == stream[60:].tolist()


def test_windows_overlap_by_one_token_and_pad_the_last(tmp_path: Path) -> None:
    stream = _write(tmp_path, tokens=30)
    windows = open_windows(tmp_path, "train", SEQ_LEN)
    assert len(windows) == 5  # ceil((30 - 1) / 7): every target token is in one window
    rows = windows.rows(range(len(windows)))
    assert rows.shape == (5, SEQ_LEN + 1) and rows.dtype == np.int32
    np.testing.assert_array_equal(rows[1], stream[7:15])
    targets = np.concatenate([row[1:] for row in rows])
    np.testing.assert_array_equal(targets[:29], stream[1:])
    assert (targets[29:] == PAD).all()


def test_one_dataset_serves_every_sequence_length(tmp_path: Path) -> None:
    stream = _write(tmp_path, tokens=200)
    for seq_len in (4, 16, 50):
        windows = open_windows(tmp_path, "train", seq_len)
        first = windows.rows([0])[0]
        np.testing.assert_array_equal(first, stream[: seq_len + 1])


def test_shards_read_through_fsspec_match_the_memory_map(tmp_path: Path) -> None:
    _write(tmp_path, tokens=90)
    memory = fsspec.filesystem("memory")
    for path in tmp_path.iterdir():
        memory.pipe(f"/prepared/{path.name}", path.read_bytes())
    local, remote = TokenStream(tmp_path, "train"), TokenStream("memory://prepared", "train")
    assert len(remote) == len(local)
    np.testing.assert_array_equal(remote.read(5, 80), local.read(5, 80))


def test_each_epoch_visits_every_window_once(tmp_path: Path) -> None:
    _write(tmp_path, tokens=71)  # 10 windows of 7 targets
    windows = open_windows(tmp_path, "train", SEQ_LEN)
    loader = BatchLoader(windows, batch_size=4, seed=0)
    firsts = np.concatenate([next(loader)[:, 0] for _ in range(5)])  # 20 windows = 2 epochs
    indices = (firsts - 100) // SEQ_LEN
    assert sorted(indices[:10]) == list(range(10)) and sorted(indices[10:]) == list(range(10))


def test_shuffle_is_deterministic_by_seed(tmp_path: Path) -> None:
    _write(tmp_path, tokens=200)
    windows = open_windows(tmp_path, "train", SEQ_LEN)
    first = next(BatchLoader(windows, 4, seed=1))
    again = next(BatchLoader(windows, 4, seed=1))
    other = next(BatchLoader(windows, 4, seed=2))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_restore_continues_without_repeating_or_skipping(tmp_path: Path) -> None:
    _write(tmp_path, tokens=200)
    windows = open_windows(tmp_path, "train", SEQ_LEN)
    straight = BatchLoader(windows, 4, seed=3)
    expected = [next(straight) for _ in range(12)]
    first = BatchLoader(windows, 4, seed=3)
    for _ in range(5):
        next(first)
    resumed = BatchLoader(open_windows(tmp_path, "train", SEQ_LEN), 4, seed=3)
    resumed.restore(json.loads(json.dumps(first.state())))
    for batch in expected[5:]:
        np.testing.assert_array_equal(next(resumed), batch)


def test_processes_get_disjoint_slices_of_the_global_batch(tmp_path: Path) -> None:
    _write(tmp_path, tokens=200)
    windows = open_windows(tmp_path, "train", SEQ_LEN)
    whole = next(BatchLoader(windows, 4, seed=0))
    parts = [
        next(BatchLoader(windows, 4, seed=0, process_index=i, process_count=2)) for i in (0, 1)
    ]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_mismatched_state_and_settings_are_rejected(tmp_path: Path) -> None:
    _write(tmp_path, tokens=200)
    state = BatchLoader(open_windows(tmp_path, "train", SEQ_LEN), 4, seed=0).state()
    other_length = BatchLoader(open_windows(tmp_path, "train", SEQ_LEN + 1), 4, seed=0)
    with pytest.raises(DataError, match="windows=29, this loader has 25"):
        other_length.restore(state)
    with pytest.raises(DataError, match="batch_size"):
        BatchLoader(open_windows(tmp_path, "train", SEQ_LEN), 8, seed=0).restore(state)
    with pytest.raises(DataError, match="empty dataset"):
        BatchLoader(open_windows(tmp_path, "validation", SEQ_LEN), 4, seed=0)


def test_eval_batches_are_fixed_and_in_order(tmp_path: Path) -> None:
    stream = _write(tmp_path, tokens=200)
    windows = open_windows(tmp_path, "train", SEQ_LEN)
    batches = eval_batches(windows, batch_size=4, max_batches=2)
    assert len(batches) == 2
    np.testing.assert_array_equal(batches[1][0], stream[28:36])


def test_missing_directory_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a prepared-data directory"):
        open_windows(tmp_path / "missing", "train", SEQ_LEN)
    _write(tmp_path, tokens=20)
    with pytest.raises(DataError, match="no split 'test'"):
        open_windows(tmp_path, "test", SEQ_LEN)
