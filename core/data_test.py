import json
from pathlib import Path

import numpy as np
import pytest

from core.data import (
    MANIFEST_FILE,
    BatchLoader,
    DataError,
    PackedDataset,
    ShardWriter,
    eval_batches,
)

SEQ_LEN = 7
PAD = 4


def _write(directory: Path, rows: int, shard_rows: int = 4) -> np.ndarray:
    """Pack a stream of `rows * (SEQ_LEN + 1)` distinct tokens; return the expected rows."""
    stream = np.arange(rows * (SEQ_LEN + 1), dtype=np.int32) + 100
    writer = ShardWriter(directory, "train", SEQ_LEN + 1, shard_rows, PAD)
    for piece in np.array_split(stream, 5):
        writer.add(piece)
    split = writer.close()
    empty = ShardWriter(directory, "validation", SEQ_LEN + 1, shard_rows, PAD).close()
    manifest = {"seq_len": SEQ_LEN, "splits": {"train": split, "validation": empty}}
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))
    return stream.reshape(rows, SEQ_LEN + 1)


def test_writer_pads_the_last_row_and_reader_memory_maps(tmp_path: Path) -> None:
    writer = ShardWriter(tmp_path, "train", SEQ_LEN + 1, 2, PAD)
    writer.add(np.arange(20, dtype=np.int32))
    split = writer.close()
    assert split["rows"] == 3 and split["tokens"] == 20
    assert [shard["rows"] for shard in split["shards"]] == [2, 1]
    (tmp_path / MANIFEST_FILE).write_text(
        json.dumps({"seq_len": SEQ_LEN, "splits": {"train": split}})
    )
    dataset = PackedDataset(tmp_path, "train")
    assert len(dataset) == 3 and dataset.seq_len == SEQ_LEN
    np.testing.assert_array_equal(dataset[2], [16, 17, 18, 19, PAD, PAD, PAD, PAD])
    assert isinstance(np.load(tmp_path / "train-00000.npy", mmap_mode="r"), np.memmap)


def test_rows_read_back_across_shards(tmp_path: Path) -> None:
    expected = _write(tmp_path, rows=10)
    dataset = PackedDataset(tmp_path, "train")
    np.testing.assert_array_equal(dataset.rows(np.arange(10)), expected)
    assert dataset.rows(np.arange(3)).dtype == np.int32


def test_each_epoch_visits_every_row_once(tmp_path: Path) -> None:
    _write(tmp_path, rows=10)
    loader = BatchLoader(PackedDataset(tmp_path, "train"), batch_size=4, seed=0)
    firsts = np.concatenate([next(loader)[:, 0] for _ in range(5)])  # 20 rows = 2 epochs
    rows = (firsts - 100) // (SEQ_LEN + 1)
    assert sorted(rows[:10]) == list(range(10)) and sorted(rows[10:]) == list(range(10))
    assert list(rows[:10]) != list(rows[10:])  # Reshuffled per epoch.


def test_shuffle_is_deterministic_by_seed(tmp_path: Path) -> None:
    _write(tmp_path, rows=10)
    dataset = PackedDataset(tmp_path, "train")
    first = next(BatchLoader(dataset, 4, seed=1))
    again = next(BatchLoader(dataset, 4, seed=1))
    other = next(BatchLoader(dataset, 4, seed=2))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_restore_continues_without_repeating_or_skipping(tmp_path: Path) -> None:
    _write(tmp_path, rows=10)
    dataset = PackedDataset(tmp_path, "train")
    reference = BatchLoader(dataset, 4, seed=3)
    expected = [next(reference) for _ in range(6)]
    interrupted = BatchLoader(dataset, 4, seed=3)
    for _ in range(4):
        next(interrupted)
    state = json.loads(json.dumps(interrupted.state()))
    resumed = BatchLoader(dataset, 4, seed=3)
    resumed.restore(state)
    for want in expected[4:]:
        np.testing.assert_array_equal(next(resumed), want)


def test_processes_get_disjoint_slices_of_the_global_batch(tmp_path: Path) -> None:
    _write(tmp_path, rows=10)
    dataset = PackedDataset(tmp_path, "train")
    whole = BatchLoader(dataset, 4, seed=5)
    parts = [BatchLoader(dataset, 4, seed=5, process_index=i, process_count=2) for i in range(2)]
    for _ in range(3):
        local = [next(part) for part in parts]
        assert local[0].shape == (2, SEQ_LEN + 1)
        np.testing.assert_array_equal(np.concatenate(local), next(whole))


def test_mismatched_state_and_settings_are_rejected(tmp_path: Path) -> None:
    _write(tmp_path, rows=10)
    dataset = PackedDataset(tmp_path, "train")
    with pytest.raises(DataError, match="seed=1"):
        BatchLoader(dataset, 4, seed=2).restore(BatchLoader(dataset, 4, seed=1).state())
    with pytest.raises(DataError, match="multiple of process_count"):
        BatchLoader(dataset, 3, seed=0, process_count=2)
    with pytest.raises(DataError, match="empty dataset"):
        BatchLoader(PackedDataset(tmp_path, "validation"), 4, seed=0)


def test_eval_batches_are_fixed_and_in_order(tmp_path: Path) -> None:
    expected = _write(tmp_path, rows=10)
    dataset = PackedDataset(tmp_path, "train")
    batches = eval_batches(dataset, batch_size=4, max_batches=5)
    assert len(batches) == 2
    np.testing.assert_array_equal(np.concatenate(batches), expected[:8])
    assert len(eval_batches(dataset, batch_size=16, max_batches=5)[0]) == 10


def test_missing_directory_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a packed-data directory"):
        PackedDataset(tmp_path / "missing", "train")
