"""Where documents come from: a local directory tree or a `datasets` dataset (streamed).

Documents from a tree carry only their path; worker processes read them. Problems known while
listing (broken symlinks, links out of the tree, non-regular or oversized files) travel as the
document's `reason`, so every listed file is counted exactly once downstream.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

# A UTF-8 character takes at most 4 bytes: larger files cannot pass the character limit.
_MAX_BYTES_PER_CHAR = 4
_DATASET_FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}


class SourceError(ValueError):
    """The source cannot be opened: a missing path or an unknown dataset."""


@dataclasses.dataclass(frozen=True)
class Document:
    """One source file: a `path` to read, or its `text`; `reason` when it is already rejected.

    `size` is the file size in bytes, or the length of an in-memory `text`.
    """

    id: str
    size: int
    path: str | None = None
    text: str | None = None
    reason: str | None = None


def read_text(document: Document, max_chars: int) -> tuple[str | None, str | None]:
    """The document's text and None, or None and the reason it cannot be used."""
    if document.reason is not None:
        return None, document.reason
    if document.text is not None:
        return document.text, None
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


def _classify(entry: os.DirEntry, root_real: str) -> tuple[str | None, int]:
    """(reason or None, size in bytes) for a listed file."""
    try:
        if entry.is_symlink():
            target = os.path.realpath(entry.path, strict=True)
            if os.path.commonpath([target, root_real]) != root_real:
                return "symlink_outside_tree", 0
        if not entry.is_file():
            return "not_regular_file", 0
        return None, entry.stat().st_size
    except OSError:  # Broken links and link loops fail to resolve.
        return "broken_symlink", 0
    except ValueError:  # commonpath of paths on different drives.
        return "symlink_outside_tree", 0


def walk_tree(root: Path, extensions: Sequence[str]) -> Iterator[Document]:
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
            reason, size = _classify(entry, root_real)
            yield Document(id=entry.path, size=size, path=entry.path, reason=reason)
        stack.extend(reversed(subdirectories))


def dataset_documents(
    name: str, config_name: str, split: str, text_column: str, data_files: str | None = None
) -> Iterator[Document]:
    """Stream rows of a `datasets` dataset (hub name, or a builder such as "json" + data_files)."""
    import datasets  # Imported lazily: loading it costs seconds and only this source needs it.

    try:
        rows = datasets.load_dataset(
            name, config_name or None, split=split, data_files=data_files, streaming=True
        )
    except Exception as error:  # datasets raises many types for "not found / unreachable".
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SourceError(
            f"{name!r} is neither a local path nor a loadable dataset: {detail}"
        ) from error
    for index, row in enumerate(rows):
        if text_column not in row:
            raise SourceError(
                f"dataset {name!r} has no text column {text_column!r} (columns: {sorted(row)})"
            )
        text = row[text_column]
        if not isinstance(text, str):
            yield Document(id=f"{name}:{split}:{index}", size=0, reason="not_text")
            continue
        yield Document(id=f"{name}:{split}:{index}", size=len(text), text=text)


def open_source(
    sources: Sequence[str],
    extensions: Sequence[str],
    dataset_config: str,
    dataset_split: str,
    text_column: str,
) -> Iterator[Document]:
    """Documents from each source in turn: directories are walked, a .json/.jsonl/.parquet file
    is read with `datasets`, anything else is taken as a hub dataset name.

    Raises SourceError at once for a missing or unusable local path.
    """
    plans: list[Callable[[], Iterator[Document]]] = []
    for source in sources:
        path = Path(source).expanduser()
        if path.is_dir():
            plans.append(functools.partial(walk_tree, path, extensions))
        elif path.is_file() and path.suffix in _DATASET_FILE_BUILDERS:
            plans.append(
                functools.partial(
                    dataset_documents,
                    _DATASET_FILE_BUILDERS[path.suffix],
                    "",
                    dataset_split,
                    text_column,
                    data_files=str(path),
                )
            )
        elif path.exists():
            raise SourceError(
                f"source {source!r} is not a directory or a .json/.jsonl/.parquet file"
            )
        elif source.startswith(("/", ".", "~")):
            raise SourceError(f"source path {source!r} does not exist")
        else:
            plans.append(
                functools.partial(
                    dataset_documents, source, dataset_config, dataset_split, text_column
                )
            )
    return itertools.chain.from_iterable(plan() for plan in plans)


def within_budget(
    documents: Iterator[Document], max_files: int, max_bytes: int
) -> Iterator[Document]:
    """Stop after `max_files` documents or `max_bytes` bytes (0 means no limit)."""
    total_bytes = 0
    for count, document in enumerate(documents):
        if max_files and count >= max_files:
            return
        if max_bytes and total_bytes + document.size > max_bytes:
            return
        total_bytes += document.size
        yield document
