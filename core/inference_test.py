"""CheckpointCompleter's batched sampling: the same greedy texts as prompts decoded one at a time,
stop strings that end rows early, sampled rows independent of the batch they run in; fill in the
middle from the PSM prompt, ended at <file_sep>."""

from __future__ import annotations

import dataclasses

import jax
import pytest
from tokenizers import trainers

from core.completion import CompletionRequest, SamplingConfig, cut_at_stop, infill
from core.config import ConfigError
from core.fim import FILE_SEPARATOR, FIM_MIDDLE, FIM_PREFIX, infill_prompt
from core.generate import admit, decode, generate
from core.inference import CheckpointCompleter, stop_settled
from core.model import init_params
from core.testing import TINY_RUN, tiny_tokenizer
from core.tokenizer import new_bpe_tokenizer

# Logits spread enough (init_std 0.1) that greedy decoding never meets a near-tie.
MODEL = dataclasses.replace(TINY_RUN, init_std=0.1, dtype="float32")
NEW_TOKENS = 24
# Prompts from 1 to 84 tokens of the tiny BPE: two prompt buckets.
TEXTS = (
    "x",
    "import os\n",
    "def add(a, b):\n    return a + b\n" * 6,
    "SELECT url FROM pages WHERE id = 1;\n" * 2,
    "fn main() {",
    "CREATE TABLE pages (id SERIAL PRIMARY KEY, url TEXT NOT NULL);\n" * 2,
    "import os\n\ndef main():\n    print(os.getcwd())\n",
)


@pytest.fixture(scope="module")
def model():
    tokenizer = tiny_tokenizer()
    return MODEL, init_params(MODEL, jax.random.key(0)), tokenizer


def completer(model, **kwargs) -> CheckpointCompleter:
    config, params, tokenizer = model
    return CheckpointCompleter(config, params, tokenizer, **kwargs)


@pytest.fixture(scope="module")
def alone(model) -> list[str]:
    """Each prompt greedily decoded by itself to NEW_TOKENS (EOS ends it), not cut: the old path."""
    config, params, tokenizer = model
    texts = []
    for text in TEXTS:
        ids = tokenizer.encode(text).ids
        generation = generate(params, config, [ids], NEW_TOKENS, stop_ids=(config.eos_id,))
        texts.append(tokenizer.decode(generation.token_lists()[0]))
    return texts


def test_prompts_span_very_different_lengths(model) -> None:
    lengths = [len(model[2].encode(text).ids) for text in TEXTS]
    assert min(lengths) == 1 and max(lengths) > 64


def test_batched_greedy_gives_each_prompt_decoded_alone_and_cut_at_its_stops(model, alone):
    # Stops that occur early in some of the references, so those rows end early.
    stops = tuple(dict.fromkeys(text[5:7] for text in alone if len(text) > 10))[:3]
    assert stops
    request = CompletionRequest(TEXTS, n_samples=2, max_new_tokens=NEW_TOKENS, stop=stops)
    slots = completer(model, generation_batch_size=4, check_every=3)
    result = slots.complete(request)
    expected = [cut_at_stop(text, stops) for text in alone]
    assert result.texts == [[text, text] for text in expected]
    assert sum(len(text) < len(full) for text, full in zip(expected, alone, strict=True)) >= 2
    stats = slots.last_stats
    assert stats.rows == 2 * len(TEXTS) and stats.batch_size == 4
    assert stats.prefill_calls > 1  # finished slots took new rows
    # Rows ended at their stops instead of running to NEW_TOKENS.
    assert stats.generated_tokens < stats.rows * NEW_TOKENS
    tokenizer = model[2]
    assert result.completion_tokens == [2 * len(tokenizer.encode(text).ids) for text in expected]
    assert result.prompt_tokens == [len(tokenizer.encode(text).ids) for text in TEXTS]


def test_batch_size_does_not_change_greedy_texts(model, alone):
    request = CompletionRequest(TEXTS, max_new_tokens=NEW_TOKENS)
    for size in (1, 2, 16):
        assert completer(model, generation_batch_size=size).complete(request).texts == [
            [text] for text in alone
        ]


def test_per_prompt_stops_apply_to_their_prompt_only(model, alone):
    stop = alone[2][3:6]
    request = CompletionRequest(TEXTS, max_new_tokens=NEW_TOKENS)
    prompt_stops = [()] * len(TEXTS)
    prompt_stops[2] = (stop,)
    texts = completer(model).complete(request, prompt_stops=prompt_stops).texts
    assert texts[2] == [cut_at_stop(alone[2], [stop])]
    assert [t for i, t in enumerate(texts) if i != 2] == [
        [t] for i, t in enumerate(alone) if i != 2
    ]
    with pytest.raises(ValueError, match="prompt_stops"):
        completer(model).complete(request, prompt_stops=[()])


SAMPLED = SamplingConfig(temperature=1.0, top_p=0.9)


def test_sampled_rows_do_not_depend_on_the_request_or_batch(model):
    request = CompletionRequest(TEXTS[:4], n_samples=3, max_new_tokens=12, sampling=SAMPLED, seed=5)
    together = completer(model, generation_batch_size=4).complete(request).texts
    assert len({text for texts in together for text in texts}) > 4  # samples differ
    reversed_order = dataclasses.replace(request, prompts=TEXTS[:4][::-1])
    assert (
        completer(model, generation_batch_size=2).complete(reversed_order).texts == together[::-1]
    )
    for index, text in enumerate(TEXTS[:4]):
        alone = dataclasses.replace(request, prompts=(text,))
        assert completer(model, generation_batch_size=1).complete(alone).texts == [together[index]]
    other_seed = dataclasses.replace(request, seed=6)
    assert completer(model, generation_batch_size=4).complete(other_seed).texts != together


def test_repeated_calls_reuse_the_compiled_programs(model):
    slots = completer(model, generation_batch_size=4)
    request = CompletionRequest(TEXTS, n_samples=2, max_new_tokens=8, sampling=SAMPLED)
    slots.complete(request)
    compiled = (admit._cache_size(), decode._cache_size())
    again = slots.complete(dataclasses.replace(request, seed=1))
    assert (admit._cache_size(), decode._cache_size()) == compiled
    assert len(again.texts) == len(TEXTS)


@pytest.mark.parametrize(
    ("text", "stops", "settled"),
    [
        ("abc\ndef", ["\ndef"], True),
        ("no stop yet", ["\ndef"], False),
        ("ab", ["b", "abc"], False),  # "abc" may still begin before "b"
        ("abd", ["b", "abc"], True),
        ("abc", ["b", "abc"], True),
        ("x\nif y\n", ["\nclass", "\ndef", "\n#", "\nif", "\nprint"], True),
        ("x\ufffd", ["\ufffd"], False),  # an incomplete last character is not text yet
        ("x", ["", "y"], False),
    ],
)
def test_stop_settled(text, stops, settled) -> None:
    assert stop_settled(text, stops) == settled


INFILLS = (
    ("def add(a, b):\n    ", "\n    return c\n"),
    ("import os\n", ""),
    ("", "SELECT url FROM pages WHERE id = 1;\n"),
)


def _decoded_alone(model, prompt: str, stop_ids: tuple[int, ...]) -> tuple[list[int], str]:
    config, params, tokenizer = model
    ids = tokenizer.encode(prompt).ids  # sentinel text is read as the special tokens
    generated = generate(params, config, [ids], NEW_TOKENS, stop_ids=stop_ids).token_lists()[0]
    return generated, tokenizer.decode(generated)


def test_infill_decodes_the_psm_prompt_and_stops_at_eos_or_file_separator(model):
    config, _, tokenizer = model
    stops = (config.eos_id, tokenizer.token_to_id(FILE_SEPARATOR))
    expected = [_decoded_alone(model, infill_prompt(*pair), stops)[1] for pair in INFILLS]
    slots = completer(model, generation_batch_size=2, check_every=3)
    requests = [
        CompletionRequest((prefix,), max_new_tokens=NEW_TOKENS, suffix=suffix)
        for prefix, suffix in INFILLS
    ]
    answers = slots.complete_each(requests)
    assert slots.last_stats.rows == len(INFILLS)  # one batched decode
    assert [answer.texts for answer in answers] == [[[text]] for text in expected]
    assert [answer.prompt_tokens for answer in answers] == [
        [len(tokenizer.encode(infill_prompt(*pair)).ids)] for pair in INFILLS
    ]
    request = CompletionRequest(max_new_tokens=NEW_TOKENS)
    assert infill(slots, *INFILLS[0], request) == expected[0]
    shared_suffix = CompletionRequest(("import os\n", "x"), max_new_tokens=NEW_TOKENS, suffix="")
    alone = _decoded_alone(model, infill_prompt("x", ""), stops)[1]
    assert slots.complete(shared_suffix).texts == [[expected[1]], [alone]]


def test_an_infill_ends_at_the_file_separator(model):
    config, params, tokenizer = model
    prompt = infill_prompt(*INFILLS[0])
    first, _ = _decoded_alone(model, prompt, (config.eos_id,))
    # <file_sep>'s logit becomes twice the greedy first token's: the model writes it first.
    separator = tokenizer.token_to_id(FILE_SEPARATOR)
    embedding = params["embed"]["embedding"]
    biased = {
        **params,
        "embed": {"embedding": embedding.at[separator].set(2 * embedding[first[0]])},
    }
    biased_model = (config, biased, tokenizer)
    generated, _ = _decoded_alone(biased_model, prompt, (config.eos_id,))
    assert generated[0] == separator and len(generated) > 1
    assert infill(completer(biased_model), *INFILLS[0], CompletionRequest(max_new_tokens=8)) == ""


def test_infill_prompts_always_hold_the_sentinels(model):
    _, _, tokenizer = model
    slots = completer(model)
    long = "def add(a, b):\n    return a + b\n" * 20
    (ids,), max_new_tokens = slots.infill_prompts([long], long, 1000)
    assert max_new_tokens == MODEL.max_seq_len - 3 and len(ids) == 3
    (ids,), max_new_tokens = slots.infill_prompts([long], long, NEW_TOKENS)
    assert len(ids) == MODEL.max_seq_len - NEW_TOKENS and max_new_tokens == NEW_TOKENS
    assert ids[0] == tokenizer.token_to_id(FIM_PREFIX)
    assert ids[-1] == tokenizer.token_to_id(FIM_MIDDLE)


def test_infill_needs_a_tokenizer_with_the_fim_tokens(model):
    config, params, _ = model
    plain = new_bpe_tokenizer()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"])
    plain.train_from_iterator(TEXTS, trainer=trainer)
    request = CompletionRequest(("def f(",), max_new_tokens=4, suffix="):\n")
    with pytest.raises(ConfigError, match="no <fim_prefix> token: it cannot fill in the middle"):
        CheckpointCompleter(config, params, plain).complete(request)


def test_complete_each_needs_shared_decode_settings(model):
    slots = completer(model)
    plain, other = CompletionRequest(("x",)), CompletionRequest(("x",), max_new_tokens=3)
    for requests in ([plain, other], [plain, dataclasses.replace(plain, suffix="y")]):
        with pytest.raises(ValueError, match="must share sampling"):
            slots.complete_each(requests)
    assert slots.complete_each([]) == []
