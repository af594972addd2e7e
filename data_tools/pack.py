"""The last stage: every task's sorted run merged into one key-ordered stream (near duplicates
skipped), tokenized and packed into each split's flat token stream (core/data.py).

Files go in content-key order, each followed by EOS; the split is decided by the key alone, and a
token budget cuts both splits in proportion, so the shards depend on neither the number of tasks
nor the workers.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from tokenizers import Tokenizer

from core.config import DataConfig
from core.data import MANIFEST_FILE, SPLITS, ShardWriter, token_dtype
from core.fim import FIM_TOKENS, PSM, SPM, fim_split
from core.tokenizer import TokenizerError
from data_tools.dedup import (
    NearDedupFiles,
    atomic_write,
    lsh_bands,
    lsh_quality,
    read_removed,
    read_run,
)
from data_tools.minhash import MinHasher
from data_tools.stage_stats import filter_stage_counts, read_stage_stats
from data_tools.tokenizer_stage import check_tokenizer, resolve_tokenizer
from data_tools.work_layout import WorkLayout

_ENCODE_BATCH_FILES = 256
ROUND_TRIP_FILES = 64
_MIN_BYTES_PER_TOKEN = 2


def split_of(content_key: str, validation_fraction: float) -> str:
    """The split a file belongs to, decided by its content key alone.

    Files are packed in key order, so the split reads the key's last digits: validation files
    are spread over that order, and a token budget cuts both splits in proportion.
    """
    return "validation" if int(content_key[-8:], 16) < validation_fraction * 16**8 else "train"


def validation_budget(train_tokens: int, validation_fraction: float) -> int:
    """Validation tokens to pack beside `train_tokens` train tokens: the validation fraction's
    share of the total."""
    return math.ceil(train_tokens * validation_fraction / (1 - validation_fraction))


def _run(files: NearDedupFiles, rank: int, skip_removed: bool) -> Iterator[tuple[str, str, str]]:
    removed = iter(read_removed(files, rank).tolist() if skip_removed else ())
    next_removed = next(removed, None)
    for index, document in enumerate(read_run(files.run(rank))):
        if index == next_removed:
            next_removed = next(removed, None)
            continue
        yield document


def merged_documents(
    files: NearDedupFiles, tasks: int, skip_removed: bool = True
) -> Iterator[tuple[str, str, str]]:
    """(key, id, text) of every task's run in one key order, near duplicates skipped unless
    `skip_removed` is False; streams, holding one record per run and every run open (see
    data_tools/open_files.py)."""
    return heapq.merge(*(_run(files, rank, skip_removed) for rank in range(tasks)))


@dataclasses.dataclass(frozen=True)
class FimPlan:
    """Fill-in-the-middle for the train split: the share of files transformed, the share of
    those in SPM order, and the seed the per-file decisions are keyed by (core/fim.py)."""

    rate: float
    spm_rate: float
    seed: int


def _sentinel_ids(tokenizer: Tokenizer) -> dict[str, int]:
    ids = {token: tokenizer.token_to_id(token) for token in FIM_TOKENS}
    missing = [token for token, token_id in ids.items() if token_id is None]
    if missing:
        raise TokenizerError(
            f"the tokenizer has no {', '.join(missing)}: give one with StarCoder2's special "
            "tokens, or turn fill-in-the-middle off with --fim-rate 0"
        )
    return ids


def pack(
    documents: Iterable[tuple[str, str, str]],
    tokenizer: Tokenizer,
    config: DataConfig,
    directory: Path,
    max_tokens: int | None,
    eos_id: int,
    vocab_size: int,
    fim: FimPlan,
) -> tuple[dict[str, dict[str, Any]], dict[str, int], int]:
    """Write the train/validation streams to `directory`; with a `max_tokens` budget, stop once
    train holds that many tokens and validation its share (`validation_budget`); None packs
    every file. Train files are fill-in-the-middle transformed as `fim` says (validation files
    stay whole, so its loss and perplexity read plain code).

    `encode_batch` tokenizes a batch of texts on all cores. Special-token text inside a file is
    encoded as plain text, so the only special tokens are the FIM sentinels and the EOS this
    function adds. The first `ROUND_TRIP_FILES` files are decoded again: a lossy tokenizer
    raises TokenizerError naming the file. Returns the per-split manifest entries, the FIM
    counts by order, and the number of files checked.
    """
    tokenizer.encode_special_tokens = True
    sentinels = _sentinel_ids(tokenizer) if fim.rate else {}
    writers = {split: ShardWriter(directory, split, token_dtype(vocab_size)) for split in SPLITS}
    files = dict.fromkeys(SPLITS, 0)
    orders = dict.fromkeys((PSM, SPM), 0)
    batch: list[tuple[str, str, list[tuple[str | None, str]]]] = []
    round_trips = 0

    def flush() -> None:
        nonlocal round_trips
        texts = [text for *_, pieces in batch for sentinel, text in pieces if sentinel is None]
        encodings = iter(tokenizer.encode_batch(texts, add_special_tokens=False))
        for split, file_id, pieces in batch:
            ids: list[int] = []
            for sentinel, text in pieces:
                if sentinel is not None:
                    ids.append(sentinels[sentinel])
                    continue
                piece = next(encodings).ids
                if round_trips < ROUND_TRIP_FILES and (
                    tokenizer.decode(piece, skip_special_tokens=False) != text
                ):
                    raise TokenizerError(f"tokenizer does not round-trip file {file_id}")
                ids += piece
            round_trips += round_trips < ROUND_TRIP_FILES
            writers[split].add(np.array([*ids, eos_id], dtype=np.int64))
            files[split] += 1
        batch.clear()

    budgets = {
        "train": max_tokens or 0,
        "validation": validation_budget(max_tokens or 0, config.validation_fraction),
    }
    pending_bytes = dict.fromkeys(SPLITS, 0)
    for key, file_id, text in documents:
        split = split_of(key, config.validation_fraction)
        remaining = {name: budgets[name] - writers[name].tokens for name in SPLITS}
        if max_tokens:
            if all(left <= 0 for left in remaining.values()):
                break
            if remaining[split] <= 0:
                continue
        cut = fim_split(text, fim.seed, key, fim.rate, fim.spm_rate) if split == "train" else None
        if cut is not None:
            orders[cut.order] += 1
        batch.append((split, file_id, cut.pieces() if cut else [(None, text)]))
        pending_bytes[split] += len(text)
        # Code runs at more than 2 bytes per token: flushing here keeps the overshoot small.
        if len(batch) == _ENCODE_BATCH_FILES or (
            max_tokens and pending_bytes[split] >= _MIN_BYTES_PER_TOKEN * remaining[split]
        ):
            flush()
            pending_bytes = dict.fromkeys(SPLITS, 0)
    if batch:
        flush()
    splits = {split: {**writers[split].close(), "files": files[split]} for split in SPLITS}
    return splits, orders, round_trips


@dataclasses.dataclass(frozen=True)
class PackJob:
    """Everything the pack stage needs: the corpus (its layout, tasks and stage names), the
    model's ids and budget, and what the manifest records."""

    language: str
    sources: tuple[str, ...]
    config: DataConfig
    vocab_size: int
    eos_id: int
    pad_id: int
    max_tokens: int | None
    fim: FimPlan
    out_dir: str
    corpus_key: str
    pack_key: str
    tasks: int
    step_names: dict[str, str]


class PackStep(PipelineStep):
    """The last stage (one task): tokenizer, token streams and manifest.json of a corpus."""

    type = "🔢 - TOKENIZER"
    name = "📦 tokenize + pack"

    def __init__(self, job: PackJob) -> None:
        super().__init__()
        self.job = job

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        with self.track_time():
            manifest = write_corpus(self.job)
        self.stat_update("files_packed", value=manifest["files_packed"])
        return iter(())


def _lsh_sample(files: NearDedupFiles, job: PackJob) -> dict[str, Any]:
    """LSH precision/recall on the first `dedup_eval_sample` filtered files in key order."""
    config = job.config
    hasher = MinHasher(config.num_perm, config.shingle_size)
    sample = itertools.islice(
        merged_documents(files, job.tasks, skip_removed=False), config.dedup_eval_sample
    )
    shingles = [hasher.shingles(text) for _, _, text in sample]
    signatures = np.array([hasher.signature(s) for s in shingles], dtype=np.uint32).reshape(
        len(shingles), config.num_perm
    )
    bands, rows = lsh_bands(config.jaccard_threshold, config.num_perm)
    return lsh_quality(shingles, signatures, config.jaccard_threshold, bands, rows)


def write_corpus(job: PackJob) -> dict[str, Any]:
    """Tokenize and pack the deduplicated corpus into `job.out_dir` and write its manifest."""
    config, out_dir = job.config, Path(job.out_dir)
    layout = WorkLayout(out_dir, job.corpus_key, job.tasks)
    files = layout.near
    tokenizer, tokenizer_info = resolve_tokenizer(
        lambda: merged_documents(files, job.tasks), config, job.vocab_size
    )
    check_tokenizer(tokenizer, tokenizer_info, job.vocab_size, job.eos_id, job.pad_id)
    (out_dir / MANIFEST_FILE).unlink(missing_ok=True)
    for old_shard in [*out_dir.glob("train-*.npy"), *out_dir.glob("validation-*.npy")]:
        old_shard.unlink()
    splits, fim_orders, round_trip_files = pack(
        merged_documents(files, job.tasks), tokenizer, config, out_dir, job.max_tokens,
        job.eos_id, job.vocab_size, job.fim,
    )  # fmt: skip
    clusters = json.loads(files.summary.read_text())
    counts = filter_stage_counts(
        read_stage_stats(layout.logs / "filter"), job.step_names, clusters["near_duplicates"]
    )
    files_packed = sum(split["files"] for split in splits.values())
    manifest = {
        "language": job.language,
        "sources": list(job.sources),
        "files_in": counts["files_in"],
        "files_kept": counts["files_kept"],
        "files_packed": files_packed,
        "dropped": counts["dropped"],
        "stages": [*counts["stages"], {"stage": "pack", "files_in": counts["files_kept"],
                                       "files_out": files_packed}],
        "decontamination": {"enabled": config.decontaminate,
                            "by_benchmark": counts["decontaminated_by_benchmark"]},
        "dedup": {
            "exact_duplicates": counts["dropped"].get("exact_duplicate", 0),
            "near_duplicates": clusters["near_duplicates"],
            "candidate_pairs": clusters["candidate_pairs"],
            "verified_pairs": clusters["verified_pairs"],
            "jaccard_threshold": config.jaccard_threshold,
            "num_perm": config.num_perm,
            "shingle_size": config.shingle_size,
            "lsh_quality": _lsh_sample(files, job),
        },
        "fim": {
            "rate": job.fim.rate, "spm_rate": job.fim.spm_rate, "seed": job.fim.seed,
            "train_files": splits["train"]["files"], "psm_files": fim_orders[PSM],
            "spm_files": fim_orders[SPM],
            "share": sum(fim_orders.values()) / max(splits["train"]["files"], 1),
        },
        "eos_id": job.eos_id,
        "pad_id": job.pad_id,
        "max_tokens": job.max_tokens,
        "splits": splits,
        "tokenizer": {**tokenizer_info, "round_trip_files": round_trip_files},
        "config": config.recorded(),
        "corpus_key": job.corpus_key,
        "pack_key": job.pack_key,
    }  # fmt: skip
    atomic_write(out_dir / MANIFEST_FILE, lambda h: json.dump(manifest, h, indent=2), text=True)
    return manifest
