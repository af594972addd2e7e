"""Supervised fine-tuning data: (prompt, target) examples from JSONL, framed by a prompt template,
tokenized, and packed several per row with a loss mask on the targets.

Each line of the file is {"prompt": "...", "target": "..."} (what orchestrator/plan_data.py
writes). An example becomes the ids of its framed prompt (core/template.py; encoded as inference
encodes a prompt), its target's ids and EOS; the loss mask is true on the target and the EOS, so
the model learns the answer and where it ends, never the prompt. Lines that are not such an
object, examples with an empty target, examples whose ids hold the EOS id (it would split them in
two segments) and examples longer than a row are counted by reason and skipped.

A share of the examples, chosen by a hash of their text (so the split stays put as the file
grows), is held out for the validation loss. The training examples are shuffled by the seed and
packed in that order, greedily, into rows of seq_len + 1 tokens, padded; the EOS after each
example makes the trainer start a new segment there, so every example attends only to itself and
its positions start at 0, as pretraining's packed files do (core/train_step.py). `PackedExamples`
serves rows as `TokenWindows` serves windows, so `BatchLoader` (deterministic order, resumable
state in every checkpoint) and `eval_batches` draw from it unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from core.cli import flag_field, read_lines
from core.config import ConfigError
from core.template import TEMPLATES, PromptTemplate, template_named
from core.train_step import MaskedRows

NOT_AN_EXAMPLE = 'not a {"prompt": str, "target": str} object'
EMPTY_TARGET = "empty target"
HOLDS_EOS = "holds the EOS id"
TOO_LONG = "longer than a row"


@dataclasses.dataclass(frozen=True)
class SFTConfig:
    """What a supervised fine-tuning run trains on, and how its prompts are framed."""

    data: str = flag_field("", 'JSONL of {"prompt": ..., "target": ...} examples (required)')
    template: str = flag_field(
        "plain", f"prompt template, one of {', '.join(TEMPLATES)} (core/template.py)"
    )
    validation_fraction: float = flag_field(
        0.05, "share of the examples (by content hash) held out for the validation loss"
    )

    def __post_init__(self) -> None:
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(
                f"--validation-fraction must be in [0, 1), got {self.validation_fraction}"
            )


def read_examples(path: Path) -> tuple[list[tuple[str, str]], Counter[str]]:
    """The (prompt, target) pairs of a JSONL file, and the lines skipped by reason; ValueError
    naming --data when the file cannot be read."""
    lines = read_lines(path, "--data")
    pairs, skipped = [], Counter[str]()
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        fields = record if isinstance(record, dict) else {}
        prompt, target = fields.get("prompt"), fields.get("target")
        if not (isinstance(prompt, str) and isinstance(target, str)):
            skipped[NOT_AN_EXAMPLE] += 1
        elif not target:
            skipped[EMPTY_TARGET] += 1
        else:
            pairs.append((prompt, target))
    return pairs, skipped


def held_out(prompt: str, target: str, fraction: float) -> bool:
    """Whether an example belongs to the validation share (a hash of its text decides)."""
    digest = hashlib.sha256(f"{prompt}\0{target}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def encode_examples(
    pairs: Sequence[tuple[str, str]],
    tokenizer: Tokenizer,
    template: PromptTemplate,
    eos_id: int,
    max_tokens: int,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], Counter[str]]:
    """(ids, loss mask) of each example that fits in `max_tokens` with its EOS, and the
    examples skipped by reason."""
    prompts = tokenizer.encode_batch([template.prompt(prompt) for prompt, _ in pairs])
    targets = tokenizer.encode_batch([target for _, target in pairs], add_special_tokens=False)
    examples, skipped = [], Counter[str]()
    for prompt, target in zip(prompts, targets, strict=True):
        ids = [*prompt.ids, *target.ids]
        if eos_id in ids:
            skipped[HOLDS_EOS] += 1
        elif len(ids) + 1 > max_tokens:
            skipped[TOO_LONG] += 1
        else:
            mask = np.arange(len(ids) + 1) >= len(prompt.ids)
            examples.append((np.array([*ids, eos_id], np.int32), mask))
    return examples, skipped


class PackedExamples:
    """Examples packed into rows of seq_len + 1 tokens: `rows` gives MaskedRows."""

    def __init__(
        self, examples: Sequence[tuple[np.ndarray, np.ndarray]], seq_len: int, pad_id: int
    ) -> None:
        self.seq_len = seq_len
        starts: list[list[int]] = []  # each row's examples, by index
        used = seq_len + 1
        for index, (ids, _) in enumerate(examples):
            if used + len(ids) > seq_len + 1:
                starts.append([])
                used = 0
            starts[-1].append(index)
            used += len(ids)
        self.tokens = np.full((len(starts), seq_len + 1), pad_id, np.int32)
        self.loss_mask = np.zeros((len(starts), seq_len + 1), bool)
        for row, members in enumerate(starts):
            offset = 0
            for index in members:
                ids, mask = examples[index]
                self.tokens[row, offset : offset + len(ids)] = ids
                self.loss_mask[row, offset : offset + len(ids)] = mask
                offset += len(ids)

    def __len__(self) -> int:
        return len(self.tokens)

    def rows(self, indices: Sequence[int]) -> MaskedRows:
        """Rows at `indices`: tokens int32 and loss mask bool, each [len(indices), seq_len + 1]."""
        chosen = np.asarray(indices, np.int64)
        return MaskedRows(self.tokens[chosen], self.loss_mask[chosen])


@dataclasses.dataclass(frozen=True)
class SFTData:
    """The packed training and validation examples and what became of every line."""

    train: PackedExamples
    validation: PackedExamples
    counts: dict[str, Any]


def load_sft_data(
    config: SFTConfig, tokenizer: Tokenizer, seq_len: int, eos_id: int, pad_id: int, seed: int
) -> SFTData:
    """The examples of `config.data`, split, framed by its template, tokenized and packed;
    ValueError naming the file when none is usable."""
    path = Path(config.data)
    template = template_named(config.template)
    pairs, skipped = read_examples(path)
    splits: dict[str, list[tuple[str, str]]] = {"train": [], "validation": []}
    for prompt, target in pairs:
        split = "validation" if held_out(prompt, target, config.validation_fraction) else "train"
        splits[split].append((prompt, target))
    encoded = {}
    for split, split_pairs in splits.items():
        encoded[split], split_skipped = encode_examples(
            split_pairs, tokenizer, template, eos_id, seq_len + 1
        )
        skipped += split_skipped
    if not encoded["train"]:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in skipped.most_common())
        raise ValueError(f"--data {path}: no usable training examples ({reasons or 'empty'})")
    order = np.random.default_rng(seed).permutation(len(encoded["train"]))
    train = PackedExamples([encoded["train"][i] for i in order], seq_len, pad_id)
    validation = PackedExamples(encoded["validation"], seq_len, pad_id)
    counts = {
        "file": str(path),
        "examples": {split: len(examples) for split, examples in encoded.items()},
        "rows": {"train": len(train), "validation": len(validation)},
        "target_tokens": {
            split: int(sum(mask.sum() for _, mask in examples))
            for split, examples in encoded.items()
        },
        "skipped": dict(skipped.most_common()),
    }
    return SFTData(train, validation, counts)
