import os
from pathlib import Path

import pytest

from data_tools.sources import (
    Listed,
    SourceError,
    plan_sources,
    read_text,
    walk_tree,
    within_budget,
)


def test_walk_is_sorted_depth_first_and_never_follows_directory_links(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    for name in ("b/z.py", "b/a.py", "a.py", "c.txt"):
        (tmp_path / name).write_text("x = 1\n")
    os.symlink(tmp_path, tmp_path / "b" / "loop")
    ids = [Path(d.path).relative_to(tmp_path).as_posix() for d in walk_tree(tmp_path, (".py",))]
    assert ids == ["a.py", "b/a.py", "b/z.py"]


def test_read_reasons(tmp_path: Path) -> None:
    cases = {"empty.py": b"", "bin.py": b"a\x00b", "bad.py": b"caf\xe9", "ok.py": "é".encode()}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    reasons = {
        d.path.rsplit("/", 1)[1]: read_text(d, 100)[1] for d in walk_tree(tmp_path, (".py",))
    }
    assert reasons == {"bad.py": "invalid_utf8", "bin.py": "binary", "empty.py": "empty",
                       "ok.py": None}  # fmt: skip


def test_file_that_vanishes_after_listing_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "gone.py").write_text("x = 1\n")
    (document,) = walk_tree(tmp_path, (".py",))
    (tmp_path / "gone.py").unlink()
    assert read_text(document, 100) == (None, "unreadable")


def test_file_that_grew_after_listing_is_read_whole(tmp_path: Path) -> None:
    (tmp_path / "grow.py").write_text("x = 1\n")
    (document,) = walk_tree(tmp_path, (".py",))
    (tmp_path / "grow.py").write_text("x = 1\n" * 50)
    assert read_text(document, 1000) == ("x = 1\n" * 50, None)


def test_oversized_file_is_rejected_without_reading(tmp_path: Path) -> None:
    with open(tmp_path / "big.py", "wb") as handle:
        handle.truncate(10_000)
    (document,) = walk_tree(tmp_path, (".py",))
    assert read_text(document, max_chars=100) == (None, "too_large")


def test_budgets_cap_files_and_bytes() -> None:
    documents = [Listed(path=str(i), size=10) for i in range(10)]
    assert len(list(within_budget(iter(documents), 3, 0))) == 3
    assert len(list(within_budget(iter(documents), 0, 45))) == 4


def test_sources_are_classified_and_listed_files_carry_size_and_mtime(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a.py").write_text("x = 1\n")
    (tmp_path / "rows.jsonl").write_text("{}\n")
    (tmp_path / "blobs.parquet").write_bytes(b"")
    plans = plan_sources(
        [str(tmp_path / "tree"), str(tmp_path / "rows.jsonl"), f"stack-v2:{tmp_path}/blobs.parquet"],
        "", "train",
    )  # fmt: skip
    assert [plan.kind for plan in plans] == ["tree", "jsonl", "stack-v2"]
    (listed,) = walk_tree(tmp_path / "tree", (".py",))
    assert listed.size == 6 and listed.mtime_ns == os.stat(listed.path).st_mtime_ns


def test_unknown_dataset_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="neither a local path nor a loadable dataset"):
        plan_sources([str(tmp_path / "missing.jsonl")[1:] + "-no-such"], "", "train")


def test_missing_paths_fail_before_reading_anything(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        plan_sources([str(tmp_path), "./missing"], "", "train")
    with pytest.raises(SourceError, match="listing .* does not exist"):
        plan_sources([f"stack-v2:{tmp_path}/none.parquet"], "", "train")
