import dataclasses
import os
import re
from pathlib import Path

import pytest

from core.config import (
    ALL_TOKENS,
    PRESETS,
    PROD,
    TEST,
    ConfigError,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    from_dict,
    load_json,
    save_json,
    to_dict,
)
from core.model import count_params


def context_md() -> str:
    """The project specification, beside the shared data (../shared/context.md)."""
    data = Path(os.environ.get("CODEFACTORY_SHARED_DATA", Path.cwd().parent / "shared" / "data"))
    return (data.parent / "context.md").read_text()


def spec_block(name: str) -> dict[str, str]:
    """The `field: value` lines of a config block of context.md (e.g. "TestConfig")."""
    block = re.search(rf"{name}:\n(.*?)\n\n", context_md(), re.DOTALL)
    assert block, f"context.md has no {name} block"
    return dict(re.findall(r"^\s+(\w+): (\S+)", block.group(1), re.MULTILINE))


@pytest.mark.parametrize(("block", "preset"), [("TestConfig", TEST), ("ProdConfig", PROD)])
def test_model_presets_are_context_mds_configs(block: str, preset: ModelConfig) -> None:
    spec = spec_block(block)
    assert set(spec) <= {f.name for f in dataclasses.fields(ModelConfig)}
    for field, value in spec.items():
        assert str(getattr(preset, field)) == value, field
    # The architecture table: multi-query attention, one key/value head.
    assert "Multi-Query Attention (MQA)" in context_md() and preset.num_kv_heads == 1


def test_production_training_preset_is_context_mds_training_configuration() -> None:
    text = context_md()
    train = PRESETS["prod"].train

    def number(pattern: str) -> float:
        match = re.search(pattern, text)
        assert match, pattern
        return float(match.group(1).replace(",", ""))

    assert train.weight_decay == number(r"AdamW\*\* with weight decay ([\d.]+)")
    assert train.grad_clip == number(r"Gradient clipping: ([\d.]+)")
    assert train.peak_lr == number(r"Linear 0 → ([\de.-]+) over")
    assert train.warmup_steps == number(r"over ([\d,]+) steps")
    assert train.peak_lr * train.end_lr_ratio == pytest.approx(
        number(r"Cosine [\de.-]+ → ([\de.-]+)")
    )
    assert train.batch_size == number(r"Global batch size: (\d+)")
    assert train.seq_len == PROD.max_seq_len


def test_parameter_counts_are_the_designs() -> None:
    # DESIGN.md: TEST ≈ 18M with the 12.6M embedding, PROD ≈ 0.4B.
    assert count_params(TEST) == pytest.approx(18e6, rel=0.05)
    assert TEST.vocab_size * TEST.hidden_dim == pytest.approx(12.6e6, rel=0.01)
    assert count_params(PROD) == pytest.approx(0.4e9, rel=0.1)


def test_every_preset_fits_its_own_sequence_length() -> None:
    for name, run in PRESETS.items():
        assert run.train.seq_len <= run.model.max_seq_len, name


def test_a_run_whose_rows_exceed_the_model_is_one_line_error() -> None:
    with pytest.raises(
        ConfigError, match=r"TrainConfig.seq_len \(1024\) exceeds ModelConfig.max_seq_len \(512\)"
    ):
        RunConfig(TEST, TrainConfig(seq_len=1024))


def test_the_token_budget_follows_the_steps_unless_given() -> None:
    train = TrainConfig(steps=10, batch_size=4, seq_len=64)
    assert RunConfig(TEST, train).token_budget() == 10 * 4 * 64
    assert RunConfig(TEST, train, DataConfig(max_tokens=ALL_TOKENS)).token_budget() is None
    assert RunConfig(TEST, train, DataConfig(max_tokens=500)).token_budget() == 500


def test_json_round_trip(tmp_path):
    for config in (TEST, PROD, TrainConfig(steps=7, mesh="data=2,fsdp=4"), DataConfig(workers=3)):
        path = tmp_path / "config.json"
        save_json(config, path)
        assert load_json(type(config), path) == config


def test_for_backend_picks_compute_dtype_and_attention_but_keeps_the_preset():
    cpu, gpu, tpu = (TEST.for_backend(backend) for backend in ("cpu", "gpu", "tpu"))
    assert (cpu.dtype, cpu.attention) == ("float32", "einsum")
    assert (gpu.dtype, gpu.attention) == ("bfloat16", "cudnn")
    assert (tpu.dtype, tpu.attention) == ("bfloat16", "splash")
    assert dataclasses.replace(TEST, dtype="float32").for_backend("gpu").attention == "einsum"
    assert dataclasses.replace(TEST, attention="xla").for_backend("gpu").attention == "xla"
    assert (TEST.dtype, TEST.attention) == ("bfloat16", "auto")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"eos_id": 49152}, "ModelConfig.eos_id (49152) must be a token id below vocab_size"),
        ({"pad_id": 0}, "ModelConfig.eos_id and pad_id must differ"),
        ({"num_kv_heads": 3}, "multiple of num_kv_heads"),
        ({"head_dim": 63, "hidden_dim": 252}, "head_dim must be even"),
        ({"dtype": "int8"}, "ModelConfig.dtype must be one of"),
        ({"num_layers": 0}, "ModelConfig.num_layers must be positive"),
        ({"remat_policy": "some"}, "ModelConfig.remat_policy must be one of"),
    ],
)
def test_inconsistent_model_config_names_the_field(changes, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        dataclasses.replace(TEST, **changes)


def test_train_config_validation():
    with pytest.raises(ConfigError, match=r"batch_size .* multiple of grad_accum"):
        TrainConfig(batch_size=6, grad_accum=4)
    with pytest.raises(ConfigError, match="end_lr_ratio"):
        TrainConfig(end_lr_ratio=0.0)


def test_unknown_fields_are_rejected_by_name():
    data = to_dict(TEST) | {"n_layer": 3}
    with pytest.raises(ConfigError, match=r"unknown ModelConfig field.*n_layer"):
        from_dict(ModelConfig, data)


def test_unreadable_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match=str(bad)):
        load_json(ModelConfig, bad)
