"""Where documents come from: local directory trees (listed here, read by the pipeline's tasks),
local .jsonl/.parquet files and `datasets` names on the hub (read by datatrove's readers).

Listed files carry only their path; the tasks read them. Problems known while listing (broken
symlinks, links out of the tree, non-regular files) travel as the entry's `reason`, so every
listed file is counted exactly once downstream.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

# A UTF-8 character takes at most 4 bytes: larger files cannot pass the character limit.
_MAX_BYTES_PER_CHAR = 4
# A source "stack-v2:PATH" reads The Stack v2 rows (blob ids) from the .parquet/.jsonl at PATH.
STACK_V2_PREFIX = "stack-v2:"
_DATASET_FILE_KINDS = {".json": "jsonl", ".jsonl": "jsonl", ".parquet": "parquet"}


class SourceError(ValueError):
    """The source cannot be opened: a missing path or an unknown dataset."""


@dataclasses.dataclass(frozen=True)
class Listed:
    """One listed file: its `path`, size in bytes and modification time; `reason` when it is
    already rejected."""

    path: str
    size: int
    reason: str | None = None
    mtime_ns: int = 0


def read_text(document: Listed, max_chars: int) -> tuple[str | None, str | None]:
    """The file's text and None, or None and the reason it cannot be used."""
    if document.reason is not None:
        return None, document.reason
    limit = max_chars * _MAX_BYTES_PER_CHAR
    if document.size > limit:
        return None, "too_large"
    try:  # os.read of the listed size: a buffered file and a limit-sized buffer cost more.
        handle = os.open(document.path, os.O_RDONLY)  # type: ignore[arg-type]
        try:
            data = os.read(handle, document.size + 1)
            if len(data) > document.size:  # Grew since it was listed.
                data += os.read(handle, limit + 1 - len(data))
        finally:
            os.close(handle)
    except OSError:
        return None, "unreadable"
    if not data:
        return None, "empty"
    if b"\x00" in data:
        return None, "binary"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, "invalid_utf8"


def _listed_entries(
    directory: str, suffixes: tuple[str, ...]
) -> tuple[list[os.DirEntry], list[str]]:
    """(files with one of `suffixes`, subdirectory paths) of `directory`, each in name order.

    Other files are dropped before sorting: trees such as stdlib installs hold more of them
    (__pycache__) than source files.
    """
    files: list[os.DirEntry] = []
    subdirectories: list[str] = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    subdirectories.append(entry.path)
                elif entry.name.endswith(suffixes):
                    files.append(entry)
    except OSError:
        return [], []
    files.sort(key=lambda entry: entry.name)
    subdirectories.sort()
    return files, subdirectories


def _classify(entry: os.DirEntry, root_real: str) -> Listed:
    """The listed file, with the reason it is rejected if it is."""
    try:
        if entry.is_symlink():
            target = os.path.realpath(entry.path, strict=True)
            if os.path.commonpath([target, root_real]) != root_real:
                return Listed(entry.path, 0, "symlink_outside_tree")
        if not entry.is_file():
            return Listed(entry.path, 0, "not_regular_file")
        stat = entry.stat()
        return Listed(entry.path, stat.st_size, None, stat.st_mtime_ns)
    except OSError:  # Broken links and link loops fail to resolve.
        return Listed(entry.path, 0, "broken_symlink")
    except ValueError:  # commonpath of paths on different drives.
        return Listed(entry.path, 0, "symlink_outside_tree")


def walk_tree(root: Path, extensions: Sequence[str]) -> Iterator[Listed]:
    """Files under `root` with one of `extensions`, depth first in name order.

    Directory symlinks are never followed (so no loops); a file symlink is read only when its
    target lies inside the tree.
    """
    suffixes = tuple(extensions)
    root_real = os.path.realpath(root)
    stack = [str(root)]
    while stack:
        files, subdirectories = _listed_entries(stack.pop(), suffixes)
        for entry in files:
            yield _classify(entry, root_real)
        stack.extend(reversed(subdirectories))


@dataclasses.dataclass(frozen=True)
class SourcePlan:
    """One source, classified: a directory tree ("tree"), a local "jsonl" or "parquet" file, a
    `datasets` name on the hub ("hub"), or a listing of The Stack v2's blob ids ("stack-v2",
    contents fetched from Software Heritage's S3 bucket)."""

    kind: str
    location: str


def plan_sources(
    sources: Sequence[str], dataset_config: str, dataset_split: str
) -> list[SourcePlan]:
    """Each source classified, failing at once (one SourceError line) for a missing or unusable
    local path or a dataset that cannot be loaded."""
    plans = []
    for source in sources:
        if source.startswith(STACK_V2_PREFIX):
            listing = Path(source.removeprefix(STACK_V2_PREFIX)).expanduser()
            if not listing.exists():
                raise SourceError(f"source {source!r}: listing {str(listing)!r} does not exist")
            plans.append(SourcePlan("stack-v2", str(listing.resolve())))
            continue
        path = Path(source).expanduser()
        if path.is_dir():
            plans.append(SourcePlan("tree", str(path)))
        elif path.is_file() and path.suffix in _DATASET_FILE_KINDS:
            plans.append(SourcePlan(_DATASET_FILE_KINDS[path.suffix], str(path.resolve())))
        elif path.exists():
            raise SourceError(
                f"source {source!r} is not a directory or a .json/.jsonl/.parquet file"
            )
        elif source.startswith(("/", ".", "~")):
            raise SourceError(f"source path {source!r} does not exist")
        else:
            _check_dataset(source, dataset_config, dataset_split)
            plans.append(SourcePlan("hub", source))
    return plans


def _check_dataset(name: str, config_name: str, split: str) -> None:
    import datasets  # Imported lazily: loading it costs seconds and only hub sources need it.

    try:
        builder = datasets.load_dataset_builder(name, config_name or None)
    except Exception as error:  # datasets raises many types for "not found / unreachable".
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SourceError(
            f"{name!r} is neither a local path nor a loadable dataset: {detail}"
        ) from error
    splits = builder.info.splits
    if splits and split not in splits:
        raise SourceError(f"dataset {name!r} has no split {split!r} (splits: {sorted(splits)})")


def within_budget(documents: Iterator[Listed], max_files: int, max_bytes: int) -> Iterator[Listed]:
    """Stop after `max_files` documents or `max_bytes` bytes (0 means no limit)."""
    total_bytes = 0
    for count, document in enumerate(documents):
        if max_files and count >= max_files:
            return
        if max_bytes and total_bytes + document.size > max_bytes:
            return
        total_bytes += document.size
        yield document
