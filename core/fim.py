"""Fill-in-the-middle (Bavarian et al., 2022) as StarCoder trains and prompts it: the one place
that knows the sentinel tokens and the two orders.

A document is split at two character positions into prefix, middle and suffix, and trained as
  PSM: <fim_prefix> prefix <fim_suffix> suffix <fim_middle> middle
  SPM: <fim_prefix> <fim_suffix> suffix <fim_middle> prefix middle   (the paper's variant 2)
so at inference the model, given everything before <fim_middle> (and, in SPM, the prefix after
it), writes the middle and then ends it with EOS. Pure Python: importing it loads neither JAX nor
a tokenizer.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence

import numpy as np

FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX = "<fim_prefix>", "<fim_middle>", "<fim_suffix>"
FIM_TOKENS = (FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX)
FILE_SEPARATOR = "<file_sep>"  # where an infill also stops: the next file starts
PSM, SPM = "psm", "spm"


@dataclasses.dataclass(frozen=True)
class FimSplit:
    """A document cut in three, and the order it is trained in (PSM or SPM)."""

    prefix: str
    middle: str
    suffix: str
    order: str

    def pieces(self) -> list[tuple[str | None, str]]:
        """The training sequence as (sentinel or None, text) pieces in order; the text of a
        sentinel piece is empty."""
        if self.order == PSM:
            return [(FIM_PREFIX, ""), (None, self.prefix), (FIM_SUFFIX, ""), (None, self.suffix),
                    (FIM_MIDDLE, ""), (None, self.middle)]  # fmt: skip
        return [(FIM_PREFIX, ""), (FIM_SUFFIX, ""), (None, self.suffix), (FIM_MIDDLE, ""),
                (None, self.prefix), (None, self.middle)]  # fmt: skip

    @property
    def text(self) -> str:
        """The original document."""
        return self.prefix + self.middle + self.suffix


def document_rng(seed: int, document_key: str) -> np.random.Generator:
    """The generator of one document's FIM decisions: a function of the seed and the document
    alone, so a dataset is the same whatever the order or the sharding it is built in."""
    digest = hashlib.blake2b(document_key.encode(), digest_size=8).digest()
    return np.random.default_rng([seed, int.from_bytes(digest, "little")])


def fim_split(
    text: str, seed: int, document_key: str, fim_rate: float, spm_rate: float
) -> FimSplit | None:
    """With probability `fim_rate`, `text` cut at two uniform character positions, ordered SPM
    with probability `spm_rate` (else PSM); None when the document stays as it is."""
    rng = document_rng(seed, document_key)
    if rng.random() >= fim_rate:
        return None
    low, high = sorted(int(position) for position in rng.integers(0, len(text) + 1, size=2))
    order = SPM if rng.random() < spm_rate else PSM
    return FimSplit(text[:low], text[low:high], text[high:], order)


def infill_prompt(prefix: str, suffix: str, order: str = PSM) -> str:
    """The prompt whose completion is the middle between `prefix` and `suffix`, in the layout the
    model was trained on (sentinels as text: encode it with special tokens recognised)."""
    if order == PSM:
        return f"{FIM_PREFIX}{prefix}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}"
    return f"{FIM_PREFIX}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}{prefix}"


def infill_prompt_ids(
    prefix: Sequence[int], suffix: Sequence[int], sentinels: Mapping[str, int], room: int
) -> list[int]:
    """`infill_prompt`'s PSM layout as ids (`sentinels`: each FIM token's id), at most `room` ids:
    when the prefix and the suffix do not both fit beside the sentinels, the prefix keeps its last
    ids and the suffix its first, the longer one cut to what the other leaves, and neither to less
    than half the space."""
    space = room - len(FIM_TOKENS)
    if space < 0:
        raise ValueError(f"an infill prompt needs at least {len(FIM_TOKENS)} tokens, got {room}")
    suffix_kept = min(len(suffix), max(space // 2, space - len(prefix)))
    prefix_kept = min(len(prefix), space - suffix_kept)
    return [
        sentinels[FIM_PREFIX],
        *prefix[len(prefix) - prefix_kept :],
        sentinels[FIM_SUFFIX],
        *suffix[:suffix_kept],
        sentinels[FIM_MIDDLE],
    ]


def restore_document(sequence: str) -> str:
    """The original document of a training sequence (its decoded text, sentinels included)."""
    if not sequence.startswith(FIM_PREFIX):
        return sequence
    body = sequence.removeprefix(FIM_PREFIX)
    if body.startswith(FIM_SUFFIX):  # SPM: suffix, then prefix + middle
        suffix, _, prefix_middle = body.removeprefix(FIM_SUFFIX).partition(FIM_MIDDLE)
        return prefix_middle + suffix
    prefix, _, rest = body.partition(FIM_SUFFIX)
    suffix, _, middle = rest.partition(FIM_MIDDLE)
    return prefix + middle + suffix
