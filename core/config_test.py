import dataclasses
import re

import pytest

from core.config import (
    PROD,
    TEST,
    ConfigError,
    ModelConfig,
    TrainConfig,
    from_dict,
    load_json,
    save_json,
    to_dict,
)


def test_presets_match_context_md():
    assert (TEST.vocab_size, TEST.hidden_dim, TEST.num_layers, TEST.num_heads) == (49152, 256, 6, 4)
    assert (TEST.head_dim, TEST.ffn_dim, TEST.max_seq_len) == (64, 1024, 512)
    assert (PROD.vocab_size, PROD.hidden_dim, PROD.num_layers, PROD.num_heads) == (
        49152,
        1024,
        24,
        16,
    )
    assert (PROD.head_dim, PROD.ffn_dim, PROD.max_seq_len) == (64, 4096, 2048)
    for preset in (TEST, PROD):
        assert preset.dropout == 0.0
        assert preset.dtype == "bfloat16"
        assert preset.num_kv_heads == 1  # multi-query attention


def test_json_round_trip(tmp_path):
    for config in (TEST, PROD, TrainConfig(steps=7, mesh="data=2,fsdp=4")):
        path = tmp_path / "config.json"
        save_json(config, path)
        assert load_json(type(config), path) == config


def test_for_backend_picks_compute_dtype_and_attention_but_keeps_the_preset():
    cpu, gpu, tpu = (TEST.for_backend(backend) for backend in ("cpu", "gpu", "tpu"))
    assert (cpu.dtype, cpu.attention) == ("float32", "einsum")
    assert (gpu.dtype, gpu.attention) == ("bfloat16", "cudnn")
    assert (tpu.dtype, tpu.attention) == ("bfloat16", "einsum")
    assert dataclasses.replace(TEST, dtype="float32").for_backend("gpu").attention == "einsum"
    assert dataclasses.replace(TEST, attention="xla").for_backend("gpu").attention == "xla"
    assert (TEST.dtype, TEST.attention) == ("bfloat16", "auto")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hidden_dim": 300}, "hidden_dim (300) must equal num_heads × head_dim"),
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
