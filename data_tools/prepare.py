"""The data pipeline: sources -> filtered, deduplicated, decontaminated corpus -> tokenizer ->
flat token streams + manifest.json, as datatrove stages on the configured executor.

  listing         (this process) the local trees' files within the budgets, split per task
  exact-signatures  N tasks: read -> datatrove's exact-dedup signatures (whitespace-blind)
  exact-duplicates  1 task:  datatrove's duplicate finder
  filter            N tasks: read -> exact dedup -> quality + language filters ->
                             decontamination -> sorted runs + MinHash band files
  near-buckets      one task per LSH band: datatrove's bucket matcher
  near-clusters     1 task:  verify candidate pairs, cluster, pick the survivors
  pack-<key>        1 task:  tokenizer, token streams, manifest

No stage holds the corpus: a task holds its own share (16 MB of local source), the finder and
the clusters hold only signatures' heads and duplicates. Every task's completion is recorded,
so a killed prepare resumes where it stopped; the output depends on the sources and the
settings only (the corpus key), never on the executor, the tasks or the workers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xxhash
from datatrove.pipeline.dedup.exact_dedup import (
    ExactDedupConfig,
    ExactDedupFilter,
    ExactDedupSignature,
    ExactFindDedups,
)
from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets

from core.config import DataConfig, RunConfig
from core.data import MANIFEST_FILE
from core.language import Language
from core.tokenizer import load_tokenizer, tokenizer_hash
from data_tools.decontaminate import Decontaminate
from data_tools.dedup import ClusterNearDuplicates, SortedSignatures, atomic_write, minhash_config
from data_tools.executors import Stage, run_stages, worker_count
from data_tools.filters import CodeFilter
from data_tools.open_files import OpenFiles, allow_open_files
from data_tools.pack import FimPlan, PackJob, PackStep
from data_tools.readers import ListingReader, TextOnly, shard_listing, source_readers, write_listing
from data_tools.sources import SourcePlan, plan_sources
from data_tools.stack_v2 import StackV2Reader
from data_tools.tokenizer_stage import check_tokenizer
from data_tools.work_layout import REPORT_FILE, WorkLayout, listing_path

# Bump when a change in the code alters what a stage produces, so old work is not reused.
PIPELINE_VERSION = 4
# The fields that only the pack stage reads: changing them repacks the same corpus.
_PACK_FIELDS = frozenset({"tokenizer", "tokenizer_train_bytes", "tokenizer_cache_dir",
                          "max_tokens", "validation_fraction", "dedup_eval_sample", "fim_rate",
                          "fim_spm_rate"})  # fmt: skip
# Local source bytes per task when --tasks is 0: a task holds its share in memory, so a fixed
# share keeps every process's memory flat as the corpus grows.
_TASK_BYTES = 16 << 20
_WHITESPACE = b" \t\n\r\x0b\x0c"


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def exact_content(doc: Any) -> bytes:
    """What exact dedup compares: the text without whitespace, so reformatted copies collide."""
    return doc.text.encode("utf-8", "surrogatepass").translate(None, _WHITESPACE)


def exact_priority(doc: Any) -> int:
    """Which copy exact dedup keeps (the highest): a function of the text, not of its task."""
    return 1 + xxhash.xxh3_64_intdigest(doc.text.encode("utf-8", "surrogatepass")) % 65535


def _file_fingerprint(plan: SourcePlan) -> Any:
    """What identifies a source's content: files' sizes and mtimes; a dataset's name."""
    if plan.kind == "hub":
        return plan.location
    path = Path(plan.location)
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    return [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files if f.is_file()]


def _task_count(config: DataConfig, listed_bytes: int) -> int:
    if config.tasks:
        return config.tasks
    return max(worker_count(config), math.ceil(listed_bytes / _TASK_BYTES))


# Each counting step's datatrove name, by its role in the manifest's counts.
_STEP_NAMES = {
    "listing": ListingReader.name, "stack_v2": StackV2Reader.name, "text_only": TextOnly.name,
    "exact": ExactDedupFilter.name, "code": CodeFilter.name,
    "decontaminate": Decontaminate.name, "signatures": SortedSignatures.name,
}  # fmt: skip


def _stages(
    language: Language,
    plans: Sequence[SourcePlan],
    config: DataConfig,
    layout: WorkLayout,
    tasks: int,
    job: PackJob,
) -> list[Stage]:
    exact = ExactDedupConfig(content_getter=exact_content, document_priority=exact_priority)
    near = minhash_config(config.jaccard_threshold, config.num_perm, config.shingle_size)

    def readers() -> list[Any]:
        return source_readers(plans, layout.listing, config, tasks)

    filters: list[Any] = [
        ExactDedupFilter(str(layout.exact_duplicates), exact),
        CodeFilter(language, config),
    ]
    if config.decontaminate:
        decontaminate = Decontaminate()
        if config.executor == "local":
            _ = decontaminate.index  # built once here: forked workers inherit it
        filters.append(decontaminate)
    return [
        Stage("exact-signatures",
              [*readers(), ExactDedupSignature(str(layout.exact_signatures), exact)], tasks),
        Stage("exact-duplicates",
              [OpenFiles(tasks),
               ExactFindDedups(str(layout.exact_signatures), str(layout.exact_duplicates), exact)],
              1),
        Stage("filter", [*readers(), *filters,
                         SortedSignatures(str(layout.near.root), near, config.num_perm)], tasks),
        Stage("near-buckets", [OpenFiles(tasks), MinhashDedupBuckets(str(layout.near.buckets),
                                                                   str(layout.near.dups),
                                                                   config=near)],
              near.num_buckets),
        Stage("near-clusters",
              [OpenFiles(tasks),
               ClusterNearDuplicates(str(layout.near.root), config.jaccard_threshold, tasks)], 1),
        Stage(f"pack-{job.pack_key}", [OpenFiles(tasks), PackStep(job)], 1),
    ]  # fmt: skip


def _check_given_tokenizer(run: RunConfig) -> Any:
    """The given tokenizer's hash, checked against the model before any stage runs."""
    if not run.data.tokenizer:
        return None
    tokenizer = load_tokenizer(run.data.tokenizer)
    info = {"source": run.data.tokenizer, "vocab_size": tokenizer.get_vocab_size()}
    check_tokenizer(tokenizer, info, run.model.vocab_size, run.model.eos_id, run.model.pad_id)
    return tokenizer_hash(tokenizer)


def prepare(
    language: Language, run: RunConfig, out_dir: Path, sources: Sequence[str] = ()
) -> dict[str, Any]:
    """Run the pipeline for `language` with `run`'s data config (default sources:
    `language.default_roots()`) into `out_dir`: a tokenizer of `run.model.vocab_size` ids
    unless one is given, `run.token_budget()` train tokens. Returns the manifest with
    "reused" (nothing had to run) and "execution" (executor, tasks, each stage's start and
    seconds: prepare_report.json), or, with the Slurm executor before its jobs finish,
    {"submitted": True, ...}.

    Raises ValueError subclasses (SourceError, TokenizerError, ConfigError) with one-line
    messages, PipelineError when a stage's tasks fail.
    """
    config = run.data
    source_list = [str(source) for source in sources] or [
        str(root) for root in language.default_roots()
    ]
    out_dir = Path(out_dir)
    plans = plan_sources(source_list, config.dataset_config, config.dataset_split)
    given_tokenizer = _check_given_tokenizer(run)
    listing = listing_path(out_dir)
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing_start = time.time()
    listed = write_listing(plans, language.extensions, config, listing)
    listing_seconds = time.time() - listing_start
    tasks = _task_count(config, listed["bytes"])
    settings = {k: v for k, v in config.recorded().items() if k not in _PACK_FIELDS}
    corpus_key = _digest({
        "version": PIPELINE_VERSION, "language": language.name, "extensions": language.extensions,
        "listing": listed["digest"], "settings": settings,
        "sources": [[plan.kind, _file_fingerprint(plan)] for plan in plans if plan.kind != "tree"],
    })  # fmt: skip
    budget = run.token_budget()
    fim = FimPlan(config.fim_rate, config.fim_spm_rate, run.train.seed)
    pack_key = _digest({
        "corpus": corpus_key, "tokenizer": [config.tokenizer, given_tokenizer],
        "tokenizer_train_bytes": config.tokenizer_train_bytes, "vocab_size": run.model.vocab_size,
        "max_tokens": budget, "eos_id": run.model.eos_id, "pad_id": run.model.pad_id,
        "validation_fraction": config.validation_fraction,
        "dedup_eval_sample": config.dedup_eval_sample, "fim": dataclasses.asdict(fim),
    })  # fmt: skip
    manifest_path = out_dir / MANIFEST_FILE
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("pack_key") == pack_key:
            report = out_dir / REPORT_FILE
            previous = json.loads(report.read_text()) if report.is_file() else None
            return manifest | {"reused": True, "execution": previous}
        manifest_path.unlink()  # about to be replaced: never read as this prepare's result
    layout = WorkLayout(out_dir, corpus_key, tasks)
    for stale in layout.stale():
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    shard_start = time.time()
    allow_open_files(tasks)  # the split writes every task's share at once
    shard_listing(listing, tasks, layout.listing)
    listing_seconds += time.time() - shard_start
    for pack_logs in layout.logs.glob("pack-*"):  # its manifest is gone: it must run again
        shutil.rmtree(pack_logs)
    job = PackJob(
        language=language.name, sources=tuple(source_list), config=config,
        vocab_size=run.model.vocab_size, eos_id=run.model.eos_id, pad_id=run.model.pad_id,
        max_tokens=budget, fim=fim, out_dir=str(out_dir), corpus_key=corpus_key, pack_key=pack_key,
        tasks=tasks, step_names=_STEP_NAMES,
    )  # fmt: skip
    stages = _stages(language, plans, config, layout, tasks, job)
    listing_row = {"stage": "listing", "start": listing_start, "seconds": listing_seconds}
    timings = [listing_row, *run_stages(stages, layout.logs, config)]
    report = {"executor": config.executor, "workers": worker_count(config), "tasks": tasks,
              "corpus_key": corpus_key, "work_dir": str(layout.root), "stages": timings}  # fmt: skip
    atomic_write(layout.report, lambda h: json.dump(report, h, indent=2), text=True)
    if not manifest_path.is_file():  # Slurm: the jobs are queued
        return {"submitted": True, **report, "logs": str(layout.logs)}
    return json.loads(manifest_path.read_text()) | {"reused": False, "execution": report}
