"""StarCoder2-shaped tokenizer: load a `tokenizer.json` (path or hub name) or train a byte-level BPE.

The trained tokenizer mirrors StarCoder2's: byte-level BPE, digits split one by one, and
StarCoder2's special tokens at ids 0.. in StarCoder2's order. Byte-level encoding makes
`decode(encode(text))` lossless for any unicode text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<repo_name>",
    "<file_sep>", "<issue_start>", "<issue_comment>", "<issue_closed>", "<jupyter_start>",
    "<jupyter_text>", "<jupyter_code>", "<jupyter_output>", "<jupyter_script>", "<empty_output>",
    "<code_to_intermediate>", "<intermediate_to_code>", "<pr>", "<pr_status>", "<pr_is_merged>",
    "<pr_base>", "<pr_file>", "<pr_base_code>", "<pr_diff>", "<pr_comment>", "<pr_event_id>",
    "<pr_review>", "<pr_review_state>", "<pr_review_comment>", "<pr_in_reply_to_review_id>",
    "<pr_in_reply_to_comment_id>", "<pr_diff_hunk>", "<NAME>", "<EMAIL>", "<KEY>", "<PASSWORD>",
)  # fmt: skip
# StarCoder2's ids, the default ModelConfig.eos_id and pad_id (an imported model brings its own).
EOS_ID = 0  # "<|endoftext|>": also the separator between packed files.
PAD_ID = 4  # "<fim_pad>"
STARCODER2_VOCAB_SIZE = 49152
TOKENIZER_FILE = "tokenizer.json"


class TokenizerError(ValueError):
    """A tokenizer that cannot be loaded or does not have StarCoder2's special-token ids."""


def load_tokenizer(source: str | Path) -> Tokenizer:
    """Load a tokenizer from a tokenizer.json file, a directory holding one, or a hub name."""
    path = Path(source).expanduser()
    if path.is_dir():
        path = path / TOKENIZER_FILE
    try:
        if path.is_file():
            tokenizer = Tokenizer.from_file(str(path))
        else:
            tokenizer = Tokenizer.from_pretrained(str(source))
    except Exception as error:  # tokenizers raises plain Exception subclasses for I/O and parse.
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TokenizerError(f"cannot load tokenizer {str(source)!r}: {detail}") from error
    return tokenizer


def check_special_ids(tokenizer: Tokenizer, eos_id: int, pad_id: int, source: str) -> None:
    """Raise TokenizerError unless a model's EOS and PAD ids fit `tokenizer`.

    A tokenizer with StarCoder2's special tokens must have "<|endoftext|>" at `eos_id` and
    "<fim_pad>" at `pad_id`; another must have a special token at `eos_id`, and `pad_id` must be
    a special token or lie past its vocabulary (a spare embedding row no text encodes to).
    """
    specials = {
        index: token.content
        for index, token in tokenizer.get_added_tokens_decoder().items()
        if token.special
    }
    if SPECIAL_TOKENS[EOS_ID] in specials.values():
        for token, expected in ((SPECIAL_TOKENS[EOS_ID], eos_id), (SPECIAL_TOKENS[PAD_ID], pad_id)):
            actual = tokenizer.token_to_id(token)
            if actual != expected:
                raise TokenizerError(
                    f"tokenizer {source!r} has {token} at id {actual}, the model expects {expected}"
                )
        return
    if eos_id not in specials:
        raise TokenizerError(f"tokenizer {source!r} has no special token at the EOS id {eos_id}")
    if pad_id not in specials and pad_id < tokenizer.get_vocab_size():
        raise TokenizerError(
            f"tokenizer {source!r}: the pad id {pad_id} is an ordinary token, so padding would "
            "hide it from the loss"
        )


def new_bpe_tokenizer() -> Tokenizer:
    """An untrained byte-level BPE with StarCoder2's pre-tokenization (digits split singly)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def bpe_trainer(vocab_size: int = STARCODER2_VOCAB_SIZE) -> trainers.BpeTrainer:
    """A BPE trainer with the special tokens first and every byte in the base alphabet."""
    return trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )


def train_tokenizer(texts: Iterable[str], vocab_size: int = STARCODER2_VOCAB_SIZE) -> Tokenizer:
    """Train a StarCoder2-shaped byte-level BPE on `texts`."""
    tokenizer = new_bpe_tokenizer()
    tokenizer.train_from_iterator(texts, trainer=bpe_trainer(vocab_size))
    return tokenizer


def tokenizer_hash(tokenizer: Tokenizer) -> str:
    """A stable content hash of the tokenizer (its canonical JSON)."""
    return hashlib.sha256(tokenizer.to_str().encode("utf-8")).hexdigest()[:16]
