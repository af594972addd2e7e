"""Supervised fine-tuning: prompt positions carry no loss, packed examples are isolated, the data
file's bad lines are counted and skipped, an SFT run resumes exactly, and its template is recorded
and applied again at inference."""

import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core.completion import CompletionRequest, Completions
from core.data import BatchLoader
from core.layout import RunLayout
from core.model import Transformer, init_params
from core.sft import main
from core.sft_data import (
    EMPTY_TARGET,
    HOLDS_EOS,
    NOT_AN_EXAMPLE,
    TOO_LONG,
    PackedExamples,
    SFTConfig,
    held_out,
    load_sft_data,
)
from core.template import ISSUE, recorded_template, templated
from core.testing import TINY_TRAINED, tiny_run_dir, tiny_tokenizer
from core.tokenizer import EOS_ID, PAD_ID
from core.tracking import read_metrics
from core.train_step import MaskedRows, batch_loss_sum, loss_sum, prepare_batch

pytestmark = pytest.mark.usefixtures("compilation_cache")


def random_example(rng: np.random.Generator, prompt: int, target: int) -> tuple:
    """(ids, loss mask) of an example of `prompt` + `target` random ids and its EOS."""
    ids = [*rng.integers(40, TINY_TRAINED.vocab_size, prompt + target), EOS_ID]
    return np.array(ids, np.int32), np.arange(len(ids)) >= prompt


def write_jsonl(path: Path, lines: list) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                            for line in lines))  # fmt: skip
    return path


def test_masked_rows_leave_prompt_targets_out_and_keep_segments():
    rows = MaskedRows(
        jnp.array([[7, 8, 9, 10, EOS_ID, 11, 12, EOS_ID, PAD_ID]]),
        jnp.array([[0, 0, 1, 1, 1, 0, 1, 1, 0]], bool),
    )
    batch = prepare_batch(rows, EOS_ID, PAD_ID)
    np.testing.assert_array_equal(batch.loss_mask, [[0, 1, 1, 1, 0, 1, 1, 0]])
    np.testing.assert_array_equal(batch.segment_ids, [[0, 0, 0, 0, 0, 1, 1, 1]])
    np.testing.assert_array_equal(batch.positions, [[0, 1, 2, 3, 4, 0, 1, 2]])


def test_labels_at_prompt_positions_change_neither_loss_nor_gradients():
    model = Transformer(TINY_TRAINED)
    params = init_params(TINY_TRAINED, jax.random.key(0))
    rng = np.random.default_rng(0)
    tokens = rng.integers(40, TINY_TRAINED.vocab_size, (2, 17)).astype(np.int32)
    mask = np.zeros((2, 17), bool)
    mask[0, 6:], mask[1, 9:14] = True, True  # the rest are prompt positions
    batch = prepare_batch(MaskedRows(jnp.asarray(tokens), jnp.asarray(mask)), EOS_ID, PAD_ID)
    other_labels = rng.integers(0, TINY_TRAINED.vocab_size, batch.targets.shape)
    relabelled = batch._replace(targets=jnp.where(batch.loss_mask, batch.targets, other_labels))
    assert not np.array_equal(relabelled.targets, batch.targets)
    loss_and_grads = jax.jit(
        jax.value_and_grad(lambda p, b: batch_loss_sum(model, p, b), has_aux=True)
    )
    (loss, count), grads = loss_and_grads(params, batch)
    (loss_relabelled, count_relabelled), grads_relabelled = loss_and_grads(params, relabelled)
    assert float(count) == float(count_relabelled) == 11 + 5
    assert float(loss) == float(loss_relabelled)
    for grad, grad_relabelled in zip(
        jax.tree.leaves(grads), jax.tree.leaves(grads_relabelled), strict=True
    ):
        np.testing.assert_array_equal(grad, grad_relabelled)
    # A label the loss does count changes it.
    target_changed = batch._replace(targets=batch.targets.at[0, 10].add(1))
    assert float(loss_and_grads(params, target_changed)[0][0]) != float(loss)


def test_an_example_packed_with_others_has_the_loss_it_has_alone():
    model = Transformer(TINY_TRAINED)
    params = init_params(TINY_TRAINED, jax.random.key(1))
    rng = np.random.default_rng(1)
    before, example, after = (random_example(rng, p, t) for p, t in ((2, 1), (4, 5), (1, 1)))
    alone = PackedExamples([example], TINY_TRAINED.max_seq_len, PAD_ID).rows([0])
    packed = PackedExamples([before, example, after], TINY_TRAINED.max_seq_len, PAD_ID)
    assert len(packed) == 1  # 4 + 10 + 3 tokens: one row of max_seq_len + 1
    rows = packed.rows([0])
    only_example = np.zeros_like(rows.loss_mask)
    start = len(before[0])
    only_example[0, start : start + len(example[0])] = example[1]
    loss_fn = jax.jit(lambda p, r: loss_sum(model, p, r))
    alone_loss, alone_count = loss_fn(params, alone)
    packed_loss, packed_count = loss_fn(params, MaskedRows(rows.tokens, only_example))
    assert float(alone_count) == float(packed_count) == 6
    np.testing.assert_allclose(float(packed_loss), float(alone_loss), rtol=1e-6)


def test_examples_pack_greedily_in_order_into_padded_rows():
    rng = np.random.default_rng(2)
    examples = [random_example(rng, p, t) for p, t in ((2, 2), (3, 3), (1, 1), (4, 4))]
    packed = PackedExamples(examples, seq_len=15, pad_id=PAD_ID)  # rows of 16 tokens
    assert len(packed) == 2  # 5 + 7 + 3 = 15 fit one row; the 9-token example starts the next
    np.testing.assert_array_equal(
        packed.tokens[0, :15], np.concatenate([e[0] for e in examples[:3]])
    )
    assert packed.tokens[0, 15] == PAD_ID and not packed.loss_mask[0, 15]
    np.testing.assert_array_equal(packed.loss_mask[1, :9], examples[3][1])


def test_examples_are_framed_by_the_template_and_only_the_target_is_learnt(tmp_path):
    tokenizer = tiny_tokenizer()
    target = "def add(a, b):\n    return a + b\n"
    path = write_jsonl(tmp_path / "tasks.jsonl", [{"prompt": "add two numbers", "target": target}])
    config = SFTConfig(data=str(path), template="issue", validation_fraction=0.0)
    data = load_sft_data(config, tokenizer, 96, EOS_ID, PAD_ID, seed=0)
    rows = data.train.rows([0])
    tokens, mask = rows.tokens[0], rows.loss_mask[0]
    prompt_ids = tokenizer.encode(ISSUE.prompt("add two numbers")).ids
    np.testing.assert_array_equal(tokens[: len(prompt_ids)], prompt_ids)
    assert tokenizer.decode(prompt_ids, skip_special_tokens=False).startswith("<issue_start>add")
    assert not mask[: len(prompt_ids)].any()
    learnt = tokens[mask].tolist()
    assert learnt[-1] == EOS_ID and tokenizer.decode(learnt[:-1]) == target
    assert (tokens[len(prompt_ids) + len(learnt) :] == PAD_ID).all()


def test_bad_lines_and_unusable_examples_are_counted_and_skipped(tmp_path):
    good = [{"prompt": f"task {i}", "target": f"x = {i}\n"} for i in range(3)]
    path = write_jsonl(tmp_path / "tasks.jsonl", [
        *good, "not json", "[]", {"prompt": "no target"}, {"prompt": 1, "target": "x"}, "",
        {"prompt": "a", "target": ""}, {"prompt": "<|endoftext|>", "target": "x"},
        {"prompt": "long", "target": "x = 1\n" * 40},
    ])  # fmt: skip
    config = SFTConfig(data=str(path), validation_fraction=0.0)
    data = load_sft_data(config, tiny_tokenizer(), 48, EOS_ID, PAD_ID, seed=0)
    assert data.counts["examples"] == {"train": 3, "validation": 0}
    assert data.counts["skipped"] == {NOT_AN_EXAMPLE: 4, EMPTY_TARGET: 1, HOLDS_EOS: 1, TOO_LONG: 1}
    with pytest.raises(ValueError, match=r"^--data .*bad.jsonl: no usable training examples \("):
        load_sft_data(
            SFTConfig(data=str(write_jsonl(tmp_path / "bad.jsonl", ["{}"]))),
            tiny_tokenizer(), 48, EOS_ID, PAD_ID, seed=0,
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"^--data .*missing.jsonl: cannot read"):
        load_sft_data(SFTConfig(data=str(tmp_path / "missing.jsonl")), None, 48, 0, 4, seed=0)


def test_validation_holds_out_the_examples_their_hash_picks_in_any_file_order(tmp_path):
    pairs = [(f"task {i}", f"x = {i}\n") for i in range(40)]
    lines = [{"prompt": p, "target": t} for p, t in pairs]
    expected = sum(held_out(p, t, 0.25) for p, t in pairs)
    assert 0 < expected < len(pairs)
    tokenizer = tiny_tokenizer()
    for order in (lines, lines[::-1]):
        path = write_jsonl(tmp_path / "tasks.jsonl", order)
        config = SFTConfig(data=str(path), validation_fraction=0.25)
        data = load_sft_data(config, tokenizer, 32, EOS_ID, PAD_ID, seed=0)
        assert data.counts["examples"] == {"validation": expected, "train": len(pairs) - expected}


class CrashingLoader(BatchLoader):
    """A BatchLoader killed while fetching its fourth batch (step 4's, after step 3 ran)."""

    def __next__(self) -> MaskedRows:
        if self.state()["position"] == 3 * self.batch_size:
            raise KeyboardInterrupt
        return super().__next__()


def test_a_killed_sft_command_resumes_exactly_and_records_its_template(
    tmp_path, capsys, monkeypatch
):
    base = tiny_run_dir(tmp_path / "base")
    tasks = [{"prompt": f"return {i}", "target": f"def f():\n    return {i}\n"} for i in range(24)]
    data = write_jsonl(tmp_path / "tasks.jsonl", [*tasks, "oops"])

    def sft(out: str) -> int:
        return main([
            "--init-from", str(base), "--data", str(data), "--out", str(tmp_path / out),
            "--template", "issue", "--steps", "4", "--batch-size", "2", "--seq-len", "32",
            "--warmup-steps", "1", "--log-every", "1", "--eval-every", "4", "--save-every", "2",
            "--validation-fraction", "0.25",
        ])  # fmt: skip

    assert sft("full") == 0
    printed = capsys.readouterr().out
    assert "template issue; skipped not a" in printed and "eval           val_loss" in printed
    with monkeypatch.context() as patched:
        patched.setattr("core.sft.BatchLoader", CrashingLoader)
        with pytest.raises(KeyboardInterrupt):
            sft("resumed")  # step 3 ran but was never saved: the newest checkpoint is step 2
    assert sft("resumed") == 0  # the same command again: it resumes at step 2
    full, resumed = (read_metrics(RunLayout(tmp_path / out).metrics) for out in ("full", "resumed"))
    assert [r["step"] for r in resumed] == [1, 2, 3, 4]
    assert [(r["loss"], r.get("val_loss")) for r in resumed] == [
        (r["loss"], r.get("val_loss")) for r in full
    ]
    layout = RunLayout(tmp_path / "full")
    config = json.loads(layout.config.read_text())
    assert config["sft"]["template"] == {
        "name": "issue", "prefix": "<issue_start>", "separator": "<issue_comment>"
    }  # fmt: skip
    assert config["sft"]["data"] == str(data) and recorded_template(layout.root) == ISSUE
    assert layout.tokenizer.read_text() == RunLayout(base).tokenizer.read_text()
    assert json.loads(layout.summary.read_text())["step"] == 4


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--data", "x.jsonl"], "error: --init-from is required"),
        (["--init-from", "base"], "error: --data is required"),
        (["--init-from", "base", "--data", "x.jsonl", "--template", "chat"],
         "error: --template 'chat': one of plain, issue"),
        (["--init-from", "/no/such/run", "--data", "x.jsonl"], "error: --init-from /no/such/run"),
    ],
)  # fmt: skip
def test_bad_flags_are_one_line_errors(tmp_path, capsys, flags, message):
    assert main([*flags, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


class Recorder:
    """A completer that answers every prompt with the prompt it got."""

    def complete(self, request: CompletionRequest) -> Completions:
        n = len(request.prompts)
        return Completions([[prompt] for prompt in request.prompts], [0] * n, [0] * n)


def test_a_fine_tuned_run_frames_prompts_with_its_recorded_template(tmp_path):
    sft_run, plain_run = tmp_path / "sft", tmp_path / "plain"
    sft_run.mkdir(), plain_run.mkdir()
    recorded = {"sft": {"template": dataclasses.asdict(ISSUE)}}
    RunLayout(sft_run).config.write_text(json.dumps(recorded))
    RunLayout(plain_run).config.write_text(json.dumps({"model": {}, "train": {}}))
    request = CompletionRequest(("sum a list",))
    assert templated(Recorder(), sft_run).complete(request).texts == [[ISSUE.prompt("sum a list")]]
    model = Recorder()
    assert templated(model, plain_run) is model and recorded_template(plain_run) is None
