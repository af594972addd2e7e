"""Hugging Face interop against transformers itself: the export's logits and greedy tokens are
transformers', a Llama checkpoint made by transformers imports to the same logits and tokens,
and export followed by import gives back the parameters bit for bit.

transformers runs in its own resolve: the `core:hf_reference` pex (Pants builds it for this test;
outside Pants, CODEFACTORY_HF_PYTHON names a Python with torch and transformers).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core import export_hf, import_hf
from core.checkpoint import Checkpointer, load_model, run_config_dict, write_run_config
from core.config import TrainConfig
from core.generate import generate
from core.hf import HFFormatError, model_config_from_hf, read_config, read_weights
from core.inference import load_completer
from core.layout import RunLayout
from core.model import Transformer, init_params
from core.testing import TINY_RUN, tiny_tokenizer
from core.tokenizer import SPECIAL_TOKENS

REFERENCE = Path("core/hf_reference.pex")
# Weights large enough that greedy decoding never meets a near-tie.
MODEL = dataclasses.replace(TINY_RUN, init_std=0.1, dtype="float32")
PROMPTS = ["def add(a, b):\n    return", "import os\n", "SELECT url FROM pages WHERE"]


def reference(job: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """Run `job` in transformers (see core/hf_reference.py); its result."""
    if REFERENCE.exists():  # a packed pex: a directory any Python 3.11 runs
        program = [sys.executable, str(REFERENCE)]
    else:
        python = os.environ.get("CODEFACTORY_HF_PYTHON")
        assert python, "no core/hf_reference.pex here: run under Pants or set CODEFACTORY_HF_PYTHON"
        program = [python, str(Path(__file__).with_name("hf_reference.py"))]
    (tmp_path / "job.json").write_text(json.dumps(job))
    subprocess.run(
        [*program, str(tmp_path / "job.json"), str(tmp_path / "result.json")],
        check=True, capture_output=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    return json.loads((tmp_path / "result.json").read_text())


def write_run(run_dir: Path, model=MODEL, seed: int = 0) -> Any:
    """A run directory with random `model` weights and the tiny tokenizer; its parameters."""
    layout = RunLayout(run_dir)
    train = TrainConfig(steps=1)
    write_run_config(layout, model, train)
    params = init_params(model, jax.random.key(seed))
    checkpointer = Checkpointer(layout.checkpoints, async_save=False)
    try:
        checkpointer.save(1, {"params": params}, {}, run_config_dict(model, train))
    finally:
        checkpointer.close()
    tiny_tokenizer().save(str(layout.tokenizer))
    return params


def padded(rows: list[list[int]], pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded ids and the attention mask."""
    width = max(map(len, rows))
    ids = np.full((len(rows), width), pad, np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    for index, row in enumerate(rows):
        ids[index, : len(row)], mask[index, : len(row)] = row, 1
    return ids, mask


def our_logits(model, params, ids: np.ndarray) -> np.ndarray:
    return np.asarray(Transformer(model).apply({"params": params}, jnp.asarray(ids)))


def assert_same_logits(ours: np.ndarray, theirs: np.ndarray, mask: np.ndarray) -> None:
    real = mask.astype(bool)
    assert np.max(np.abs(ours[real] - theirs[real])) <= 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    """(run dir, its float32 export, its params)."""
    root = tmp_path_factory.mktemp("export")
    params = write_run(root / "run")
    export_hf.export_run(root / "run", root / "hf", dtype="float32")
    return root / "run", root / "hf", params


def test_export_is_a_complete_llama_directory(exported) -> None:
    _, hf, _ = exported
    names = {path.name for path in hf.iterdir()}
    assert names == {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                     "special_tokens_map.json", "generation_config.json", "README.md"}  # fmt: skip
    config = read_config(hf)
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert (config["num_key_value_heads"], config["tie_word_embeddings"]) == (1, True)
    assert (config["eos_token_id"], config["pad_token_id"]) == (0, 4)
    assert config["max_position_embeddings"] == MODEL.max_seq_len
    tokenizer_config = json.loads((hf / "tokenizer_config.json").read_text())
    assert tokenizer_config["eos_token"] == SPECIAL_TOKENS[0]
    assert tokenizer_config["model_max_length"] == MODEL.max_seq_len
    card = (hf / "README.md").read_text()
    assert "step 1" in card and "AutoModelForCausalLM" in card


def test_transformers_gives_our_logits_tokens_and_greedy_generation(exported, tmp_path) -> None:
    run_dir, hf, params = exported
    tokenizer = tiny_tokenizer()
    rows = [tokenizer.encode(text).ids for text in PROMPTS]
    ids, mask = padded(rows, MODEL.pad_id)
    job = {"model": str(hf), "tokenize": PROMPTS, "logits": {"ids": ids.tolist(),
           "mask": mask.tolist()}, "generate": {"ids": rows, "max_new_tokens": 64}}  # fmt: skip
    result = reference(job, tmp_path)
    assert result["token_ids"] == rows and result["decoded"] == PROMPTS
    assert_same_logits(our_logits(MODEL, params, ids), np.array(result["logits"]), mask)
    ours = generate(params, MODEL, rows, 64).token_lists()
    assert ours == result["generated"]
    assert all(len(row) == 64 for row in ours)


def test_export_then_import_is_bit_exact(exported, tmp_path) -> None:
    _, hf, params = exported
    import_hf.import_hf(hf, tmp_path / "imported")
    model, restored = load_model(RunLayout(tmp_path / "imported").checkpoints)
    assert model == MODEL
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(restored), jax.device_get(params))


def test_sharded_untied_multi_kv_head_export_round_trips(tmp_path) -> None:
    model = dataclasses.replace(MODEL, tie_embeddings=False, num_heads=4, num_kv_heads=2,
                                head_dim=16, scan_layers=False, rope_theta=500000.0)  # fmt: skip
    params = write_run(tmp_path / "run", model)
    files = export_hf.export_run(tmp_path / "run", tmp_path / "hf", dtype="float32",
                                 max_shard_bytes=100_000)  # fmt: skip
    assert "model.safetensors.index.json" in files and len(files) > 3
    tensors = read_weights(tmp_path / "hf")
    assert tensors["model.layers.0.self_attn.k_proj.weight"].shape == (2 * 16, model.hidden_dim)
    assert "lm_head.weight" in tensors
    import_hf.import_hf(tmp_path / "hf", tmp_path / "imported")
    restored_model, restored = load_model(RunLayout(tmp_path / "imported").checkpoints)
    assert restored_model == model
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(restored), jax.device_get(params))


def test_bfloat16_export_is_close(exported, tmp_path) -> None:
    run_dir, _, params = exported
    export_hf.export_run(run_dir, tmp_path / "hf", dtype="bfloat16")
    embedding = read_weights(tmp_path / "hf")["model.embed_tokens.weight"]
    assert embedding.dtype.name == "bfloat16"
    np.testing.assert_allclose(
        embedding.astype(np.float32), np.asarray(params["embed"]["embedding"]), rtol=1e-2
    )


def test_a_transformers_llama_imports_to_its_logits_and_greedy_tokens(tmp_path) -> None:
    hf = tmp_path / "llama"
    llama = {"vocab_size": 400, "hidden_size": 64, "intermediate_size": 160,
             "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
             "max_position_embeddings": 128, "rope_theta": 500000.0, "rms_norm_eps": 1e-6,
             "tie_word_embeddings": False, "initializer_range": 0.1, "bos_token_id": 0,
             "eos_token_id": 0, "pad_token_id": None}  # fmt: skip
    tokenizer = tiny_tokenizer()
    rows = [tokenizer.encode(text).ids for text in PROMPTS]
    ids, mask = padded(rows, 4)
    result = reference(
        {"create": {"dir": str(hf), "config": llama}, "model": str(hf),
         "logits": {"ids": ids.tolist(), "mask": mask.tolist()},
         "generate": {"ids": rows, "max_new_tokens": 32}},
        tmp_path,
    )  # fmt: skip
    tokenizer.save(str(hf / "tokenizer.json"))
    model = import_hf.import_hf(hf, tmp_path / "run")
    assert (model.num_kv_heads, model.tie_embeddings, model.rope_theta) == (2, False, 500000.0)
    assert (model.eos_id, model.pad_id) == (0, 4)  # no pad token: StarCoder2's <fim_pad>
    completer = load_completer(tmp_path / "run")
    assert_same_logits(
        our_logits(completer.config, completer.params, ids), np.array(result["logits"]), mask
    )
    assert (
        generate(completer.params, completer.config, rows, 32).token_lists() == result["generated"]
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_type": "mistral"}, "model_type 'mistral' is not supported"),
        ({"attention_bias": True}, "attention_bias is true"),
        ({"rope_scaling": {"type": "linear", "factor": 2.0}}, "rope_scaling"),
        ({"rope_parameters": {"rope_type": "yarn"}}, "rope_parameters.rope_type 'yarn'"),
        ({"hidden_act": "gelu"}, "hidden_act 'gelu'"),
        ({"eos_token_id": None}, "no eos_token_id"),
    ],
)
def test_unsupported_checkpoints_are_one_line_naming_the_field(change, message) -> None:
    config = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 384,
              "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 2, "eos_token_id": 0} | change  # fmt: skip
    with pytest.raises(HFFormatError, match=message):
        model_config_from_hf(config, "ckpt", tiny_tokenizer())


def test_command_lines_and_their_errors(exported, tmp_path, capsys) -> None:
    run_dir, _, _ = exported
    out = tmp_path / "hf"
    assert export_hf.main(["--run", str(run_dir), "--out", str(out), "--dtype", "float32"]) == 0
    assert import_hf.main(["--hf", str(out), "--out", str(tmp_path / "run")]) == 0
    assert "imported" in capsys.readouterr().out
    assert import_hf.main(["--hf", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert export_hf.main(["--run", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and all(line.startswith("error: ") for line in errors)
