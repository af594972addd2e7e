"""The pipeline's first steps: datatrove readers for every kind of source, and the listing of local
trees they read from.

Local trees are listed once (a jsonl file of path, size and reason, within the byte and file
budgets), then each task reads its share of the listing (entry i goes to task i % tasks), so
every stage that reads the source sees the same documents in the same order. Local .jsonl and
.parquet files and hub datasets go through datatrove's own readers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.readers import HuggingFaceDatasetReader, JsonlReader, ParquetReader

from core.config import DataConfig
from data_tools.sources import Listed, SourceError, SourcePlan, read_text, walk_tree, within_budget
from data_tools.stack_v2 import StackV2Reader

DEFAULT_STACK_V2_CACHE = "~/.cache/codefactory/swh"


def write_listing(
    plans: Sequence[SourcePlan], extensions: Sequence[str], config: DataConfig, path: Path
) -> dict[str, Any]:
    """List the tree sources' files (within the budgets) into `path`, one JSON list [path, size,
    reason, mtime] a line, streaming; their count, bytes and a digest of the listing."""
    trees = (Path(plan.location) for plan in plans if plan.kind == "tree")
    entries = (entry for root in trees for entry in walk_tree(root, extensions))
    files = size = 0
    digest = hashlib.sha256()
    partial = path.with_suffix(".partial")
    with open(partial, "w") as handle:
        for entry in within_budget(entries, config.max_files, config.max_bytes):
            line = json.dumps([entry.path, entry.size, entry.reason, entry.mtime_ns]) + "\n"
            handle.write(line)
            digest.update(line.encode("utf-8", "surrogateescape"))
            files, size = files + 1, size + entry.size
    partial.replace(path)
    return {"files": files, "bytes": size, "digest": digest.hexdigest()}


def shard_listing(listing: Path, tasks: int, directory: Path) -> None:
    """Split `listing` into one file per task (entry i to task i % tasks), then mark it done."""
    if (directory / "done").is_file():
        return
    directory.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as files:
        shards = [files.enter_context(open(directory / f"{rank:05d}.jsonl", "w"))
                  for rank in range(tasks)]  # fmt: skip
        with open(listing) as handle:
            for index, line in enumerate(handle):
                shards[index % tasks].write(line)
    (directory / "done").touch()


class ListingReader(PipelineStep):
    """Reads this task's share of the listing; a file that cannot be used is counted by reason
    (`dropped_<reason>`)."""

    type = "📖 - READER"
    name = "📂 local trees"

    def __init__(self, directory: str, max_chars: int) -> None:
        super().__init__()
        self.directory = directory
        self.max_chars = max_chars

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        if data:
            yield from data
        with open(Path(self.directory) / f"{rank:05d}.jsonl") as handle:
            for line in handle:
                path, size, reason, _ = json.loads(line)
                self.stat_update("total")
                text, reason = read_text(Listed(path, size, reason), self.max_chars)
                if text is None:
                    self.stat_update(f"dropped_{reason}")
                    continue
                yield Document(text=text, id=path)


class TextOnly(BaseFilter):
    """Counts every document that reaches the pipeline and drops those whose text is not a
    string (a dataset column of another type) as "not_text"."""

    name = "🔤 text only"

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return True if isinstance(doc.text, str) else (False, "not_text")


def _check_text_column(plan: SourcePlan, text_column: str) -> None:
    if plan.kind == "jsonl":
        with open(plan.location) as handle:
            first = next((line for line in handle if line.strip()), None)
        columns = sorted(json.loads(first)) if first else []
    else:
        import pyarrow.parquet as pq

        columns = sorted(pq.read_schema(plan.location).names)
    if columns and text_column not in columns:
        raise SourceError(
            f"{plan.location} has no text column {text_column!r} (columns: {columns})"
        )


def source_readers(
    plans: Sequence[SourcePlan], listing_dir: Path, config: DataConfig, tasks: int
) -> list[Any]:
    """The reader steps of `plans` (the tree sources through the sharded listing in
    `listing_dir`), then TextOnly."""
    readers: list[Any] = []
    if any(plan.kind == "tree" for plan in plans):
        readers.append(ListingReader(str(listing_dir), config.max_chars))
    for plan in plans:
        # datatrove's readers limit each task: a local file is one task's, a hub dataset is
        # streamed in shards, one per task, so its file budget is split over the tasks.
        limit = config.max_files or -1
        if plan.kind == "hub" and config.max_files:
            limit = -(-config.max_files // tasks)
        if plan.kind in ("jsonl", "parquet"):
            _check_text_column(plan, config.text_column)
            reader = JsonlReader if plan.kind == "jsonl" else ParquetReader
            folder = str(Path(plan.location).parent)
            readers.append(
                reader(folder, glob_pattern=Path(plan.location).name, text_key=config.text_column,
                       limit=limit)
            )  # fmt: skip
        elif plan.kind == "hub":
            dataset_options = {"split": config.dataset_split}
            if config.dataset_config:
                dataset_options["name"] = config.dataset_config
            readers.append(
                HuggingFaceDatasetReader(
                    plan.location, dataset_options=dataset_options, streaming=True,
                    text_key=config.text_column, limit=limit,
                )
            )  # fmt: skip
        elif plan.kind == "stack-v2":
            readers.append(
                StackV2Reader(
                    plan.location,
                    cache_dir=Path(
                        config.stack_v2_cache_dir or DEFAULT_STACK_V2_CACHE
                    ).expanduser(),
                    endpoint_url=config.s3_endpoint_url or None,
                    anonymous=config.s3_anonymous,
                    limit=limit,
                )
            )
    return [*readers, TextOnly()]
