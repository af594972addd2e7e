"""Hugging Face's Llama format, both ways: config.json, safetensors weights (sharded past a size,
with an index), the tokenizer files, generation_config.json and a model card.

The model is Llama exactly (RMSNorm, SwiGLU, rotate-half RoPE, no biases, tied or untied
embeddings, any number of key/value heads), so every tensor maps one to one:

    embed.embedding                       model.embed_tokens.weight       [V, D]
    layer_i.attention.query.kernel        model.layers.i.self_attn.q_proj [H*Dh, D] (transposed)
    layer_i.attention.{key,value}.kernel  ...k_proj / v_proj              [Hkv*Dh, D]
    layer_i.attention.out.kernel          ...o_proj                       [D, H*Dh]
    layer_i.mlp.{gate,up,down}.kernel     ...mlp.{gate,up,down}_proj      (transposed)
    layer_i.{attention,mlp}_norm.scale    ...{input,post_attention}_layernorm
    final_norm.scale                      model.norm.weight
    lm_head (untied models only)          lm_head.weight                  [V, D]

config.json also keeps our own ModelConfig under "codefactory", so a checkpoint exported here
imports back to the same config and the same parameters, bit for bit in float32.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
from safetensors.numpy import load_file, save_file
from tokenizers import Tokenizer

from core.config import ConfigError, ModelConfig, from_dict, to_dict
from core.model import Params, unstack_layers
from core.tokenizer import PAD_ID, SPECIAL_TOKENS, TOKENIZER_FILE

ARCHITECTURE = "LlamaForCausalLM"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
# Hugging Face's default shard size ("5GB").
MAX_SHARD_BYTES = 5_000_000_000
EXPORT_DTYPES = ("float32", "bfloat16")
_OURS = "codefactory"


class HFFormatError(ValueError):
    """A Hugging Face directory this repo cannot read; the message names the file or field."""


def hf_config(model: ModelConfig, dtype: str) -> dict[str, Any]:
    """config.json of a LlamaForCausalLM with `model`'s architecture, weights stored in `dtype`."""
    return {
        "architectures": [ARCHITECTURE],
        "model_type": "llama",
        "vocab_size": model.vocab_size,
        "hidden_size": model.hidden_dim,
        "intermediate_size": model.ffn_dim,
        "num_hidden_layers": model.num_layers,
        "num_attention_heads": model.num_heads,
        "num_key_value_heads": model.num_kv_heads,
        "head_dim": model.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": model.max_seq_len,
        "rms_norm_eps": model.norm_eps,
        # Both spellings: transformers 5 reads rope_parameters, older readers rope_theta.
        "rope_theta": model.rope_theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": model.rope_theta},
        "attention_bias": False,
        "mlp_bias": False,
        "attention_dropout": 0.0,
        "tie_word_embeddings": model.tie_embeddings,
        "bos_token_id": model.eos_id,
        "eos_token_id": model.eos_id,
        "pad_token_id": model.pad_id,
        "initializer_range": model.init_std,
        "dtype": dtype,
        "torch_dtype": dtype,
        "use_cache": True,
        _OURS: to_dict(model),
    }


def _field(config: Mapping[str, Any], name: str, source: str) -> Any:
    if name not in config:
        raise HFFormatError(f"{source}: config.json has no {name}")
    return config[name]


def _unsupported(config: Mapping[str, Any], source: str) -> None:
    """One line naming the first field that takes the checkpoint beyond plain Llama."""
    if config.get("model_type") != "llama":
        raise HFFormatError(
            f"{source}: model_type {config.get('model_type')!r} is not supported (llama only)"
        )
    architectures = config.get("architectures") or [ARCHITECTURE]
    if architectures != [ARCHITECTURE]:
        raise HFFormatError(f"{source}: architectures {architectures} is not [{ARCHITECTURE!r}]")
    for name in ("attention_bias", "mlp_bias"):
        if config.get(name):
            raise HFFormatError(f"{source}: {name} is true; biases are not supported")
    if config.get("hidden_act", "silu") != "silu":
        raise HFFormatError(f"{source}: hidden_act {config['hidden_act']!r} is not silu")
    if config.get("rope_scaling"):
        raise HFFormatError(f"{source}: rope_scaling {config['rope_scaling']} is not supported")
    rope_type = (config.get("rope_parameters") or {}).get("rope_type", "default")
    if rope_type != "default":
        raise HFFormatError(f"{source}: rope_parameters.rope_type {rope_type!r} is not supported")
    if config.get("pretraining_tp", 1) != 1:
        raise HFFormatError(f"{source}: pretraining_tp {config['pretraining_tp']} is not 1")


def _first_id(value: Any) -> int | None:
    return value[0] if isinstance(value, list) and value else value


def model_config_from_hf(
    config: Mapping[str, Any], source: str, tokenizer: Tokenizer
) -> ModelConfig:
    """Our ModelConfig for a Llama config.json (ours is kept as written when it carries one).

    A checkpoint with no pad token distinct from its EOS pads with StarCoder2's <fim_pad> when its
    tokenizer has one, else with the first embedding row past the tokenizer's ids (no text
    encodes to it), when it has one.
    """
    _unsupported(config, source)
    if _OURS in config:
        return from_dict(ModelConfig, dict(config[_OURS]))
    heads = _field(config, "num_attention_heads", source)
    hidden = _field(config, "hidden_size", source)
    vocab = _field(config, "vocab_size", source)
    eos = _first_id(config.get("eos_token_id"))
    if eos is None:
        raise HFFormatError(f"{source}: config.json has no eos_token_id")
    pad = _first_id(config.get("pad_token_id"))
    if pad is None or pad == eos:
        pad = tokenizer.token_to_id(SPECIAL_TOKENS[PAD_ID])
    if pad is None:
        if tokenizer.get_vocab_size() >= vocab:
            raise HFFormatError(
                f"{source}: no pad_token_id distinct from eos_token_id {eos} and no spare "
                "embedding row to pad with; set pad_token_id in its config.json"
            )
        pad = tokenizer.get_vocab_size()
    rope = config.get("rope_parameters") or {}
    try:
        return ModelConfig(
            vocab_size=vocab,
            hidden_dim=hidden,
            num_layers=_field(config, "num_hidden_layers", source),
            num_heads=heads,
            num_kv_heads=config.get("num_key_value_heads") or heads,
            head_dim=config.get("head_dim") or hidden // heads,
            ffn_dim=_field(config, "intermediate_size", source),
            max_seq_len=config.get("max_position_embeddings", 2048),
            norm_eps=config.get("rms_norm_eps", 1e-6),
            rope_theta=float(rope.get("rope_theta", config.get("rope_theta", 10000.0))),
            init_std=config.get("initializer_range", 0.02),
            tie_embeddings=config.get("tie_word_embeddings", True),
            eos_id=eos,
            pad_id=pad,
            scan_layers=False,
        )
    except ConfigError as error:
        raise HFFormatError(f"{source}: {error}") from None


def _layer_names(index: int) -> dict[tuple[str, ...], str]:
    prefix = f"model.layers.{index}."
    return {
        ("attention", "query", "kernel"): prefix + "self_attn.q_proj.weight",
        ("attention", "key", "kernel"): prefix + "self_attn.k_proj.weight",
        ("attention", "value", "kernel"): prefix + "self_attn.v_proj.weight",
        ("attention", "out", "kernel"): prefix + "self_attn.o_proj.weight",
        ("mlp", "gate", "kernel"): prefix + "mlp.gate_proj.weight",
        ("mlp", "up", "kernel"): prefix + "mlp.up_proj.weight",
        ("mlp", "down", "kernel"): prefix + "mlp.down_proj.weight",
        ("attention_norm", "scale"): prefix + "input_layernorm.weight",
        ("mlp_norm", "scale"): prefix + "post_attention_layernorm.weight",
    }


def _to_hf(path: tuple[str, ...], array: np.ndarray) -> np.ndarray:
    """Our kernel [in..., out...] as a torch Linear weight [out, in]."""
    name = path[-2]
    if path[-1] != "kernel":
        return array
    if name == "out":  # [H, Dh, D]
        return array.reshape(-1, array.shape[-1]).T
    if name in ("query", "key", "value"):  # [D, H, Dh]
        return array.reshape(array.shape[0], -1).T
    return array.T  # gate/up [D, F], down [F, D]


def _from_hf(path: tuple[str, ...], weight: np.ndarray, model: ModelConfig) -> np.ndarray:
    """The inverse of `_to_hf`."""
    name = path[-2]
    if path[-1] != "kernel":
        return weight
    if name == "out":
        return weight.T.reshape(model.num_heads, model.head_dim, model.hidden_dim)
    heads = {"query": model.num_heads, "key": model.num_kv_heads, "value": model.num_kv_heads}
    if name in heads:
        return weight.T.reshape(model.hidden_dim, heads[name], model.head_dim)
    return weight.T


def to_hf_tensors(params: Params, model: ModelConfig) -> dict[str, np.ndarray]:
    """Every parameter under its Hugging Face name, in Hugging Face's layout (host arrays)."""
    params, unrolled = unstack_layers(params, model)
    params = {key: _host(value) for key, value in params.items()}
    tensors = {
        "model.embed_tokens.weight": params["embed"]["embedding"],
        "model.norm.weight": params["final_norm"]["scale"],
    }
    if not unrolled.tie_embeddings:
        tensors["lm_head.weight"] = params["lm_head"]
    for index in range(unrolled.num_layers):
        layer = params[f"layer_{index}"]
        for path, name in _layer_names(index).items():
            tensors[name] = np.ascontiguousarray(_to_hf(path, _get(layer, path)))
    return tensors


def from_hf_tensors(tensors: Mapping[str, np.ndarray], model: ModelConfig, source: str) -> Params:
    """Our parameters (float32, in `model.param_dtype`) from Hugging Face's tensors."""

    def take(name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in tensors:
            raise HFFormatError(f"{source}: the weights have no {name}")
        array = np.asarray(tensors[name], dtype=model.param_dtype)
        if array.shape != shape:
            raise HFFormatError(f"{source}: {name} is {array.shape}, the config needs {shape}")
        return array

    d, v = model.hidden_dim, model.vocab_size
    params: dict[str, Any] = {
        "embed": {"embedding": take("model.embed_tokens.weight", (v, d))},
        "final_norm": {"scale": take("model.norm.weight", (d,))},
    }
    if not model.tie_embeddings:
        params["lm_head"] = take("lm_head.weight", (v, d))
    shapes = _hf_shapes(model)
    for index in range(model.num_layers):
        layer: dict[str, Any] = {}
        for path, name in _layer_names(index).items():
            weight = take(name, shapes[path])
            _set(layer, path, _from_hf(path, weight, model))
        params[f"layer_{index}"] = layer
    if model.scan_layers:
        layers = [params.pop(f"layer_{index}") for index in range(model.num_layers)]
        params["layers"] = _stack(layers)
    return params


def _hf_shapes(model: ModelConfig) -> dict[tuple[str, ...], tuple[int, ...]]:
    d, f = model.hidden_dim, model.ffn_dim
    q, kv = model.num_heads * model.head_dim, model.num_kv_heads * model.head_dim
    return {
        ("attention", "query", "kernel"): (q, d),
        ("attention", "key", "kernel"): (kv, d),
        ("attention", "value", "kernel"): (kv, d),
        ("attention", "out", "kernel"): (d, q),
        ("mlp", "gate", "kernel"): (f, d),
        ("mlp", "up", "kernel"): (f, d),
        ("mlp", "down", "kernel"): (d, f),
        ("attention_norm", "scale"): (d,),
        ("mlp_norm", "scale"): (d,),
    }


def _host(tree: Any) -> Any:
    if isinstance(tree, Mapping):
        return {key: _host(value) for key, value in tree.items()}
    return np.asarray(tree)


def _get(tree: Mapping[str, Any], path: tuple[str, ...]) -> np.ndarray:
    for key in path:
        tree = tree[key]
    return tree  # type: ignore[return-value]


def _set(tree: dict[str, Any], path: tuple[str, ...], value: np.ndarray) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _stack(layers: list[dict[str, Any]]) -> dict[str, Any]:
    first = layers[0]
    if isinstance(first, Mapping):
        return {key: _stack([layer[key] for layer in layers]) for key in first}
    return np.stack(layers)


def cast(tensors: Mapping[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    """The tensors in `dtype` ("float32" or "bfloat16")."""
    if dtype not in EXPORT_DTYPES:
        raise HFFormatError(f"--dtype must be one of {EXPORT_DTYPES}, got {dtype!r}")
    target = np.float32 if dtype == "float32" else ml_dtypes.bfloat16
    return {name: array.astype(target) for name, array in tensors.items()}


def write_weights(
    tensors: Mapping[str, np.ndarray], directory: Path, max_shard_bytes: int = MAX_SHARD_BYTES
) -> list[str]:
    """model.safetensors, or model-0000i-of-0000n.safetensors plus the index when the tensors
    exceed `max_shard_bytes`; returns the files written."""
    total = sum(array.nbytes for array in tensors.values())
    if total <= max_shard_bytes:
        save_file(dict(tensors), str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
        return [WEIGHTS_FILE]
    shards: list[dict[str, np.ndarray]] = [{}]
    for name, array in tensors.items():
        if (
            shards[-1]
            and sum(a.nbytes for a in shards[-1].values()) + array.nbytes > max_shard_bytes
        ):
            shards.append({})
        shards[-1][name] = array
    files = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    weight_map = {}
    for file, shard in zip(files, shards, strict=True):
        save_file(shard, str(directory / file), metadata={"format": "pt"})
        weight_map |= dict.fromkeys(shard, file)
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (directory / WEIGHTS_INDEX).write_text(json.dumps(index, indent=2) + "\n")
    return [*files, WEIGHTS_INDEX]


def read_weights(directory: Path) -> dict[str, np.ndarray]:
    """Every tensor of a directory's model.safetensors or sharded safetensors with an index."""
    if (directory / WEIGHTS_INDEX).is_file():
        index = json.loads((directory / WEIGHTS_INDEX).read_text())
        files = sorted(set(index["weight_map"].values()))
    elif (directory / WEIGHTS_FILE).is_file():
        files = [WEIGHTS_FILE]
    else:
        raise HFFormatError(f"{directory}: no {WEIGHTS_FILE} or {WEIGHTS_INDEX}")
    tensors: dict[str, np.ndarray] = {}
    for file in files:
        tensors |= load_file(str(directory / file))
    return tensors


def read_config(directory: Path) -> dict[str, Any]:
    """A Hugging Face directory's config.json."""
    path = directory / CONFIG_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise HFFormatError(f"cannot read {path}: {error}") from None


def tokenizer_files(tokenizer: Tokenizer, model: ModelConfig) -> dict[str, str]:
    """tokenizer.json, tokenizer_config.json and special_tokens_map.json for `model`, which
    AutoTokenizer loads as a fast tokenizer (no BOS is added: the model never saw one)."""
    eos = tokenizer.id_to_token(model.eos_id)
    pad = tokenizer.id_to_token(model.pad_id)
    specials = {
        "bos_token": eos,
        "eos_token": eos,
        "unk_token": eos,
        **({"pad_token": pad} if pad is not None else {}),
    }
    extra = [token for token in SPECIAL_TOKENS if tokenizer.token_to_id(token) is not None]
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": model.max_seq_len,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "additional_special_tokens": [t for t in extra if t not in specials.values()],
        **specials,
    }
    return {
        TOKENIZER_FILE: tokenizer.to_str(),
        "tokenizer_config.json": json.dumps(config, indent=2) + "\n",
        "special_tokens_map.json": json.dumps(specials, indent=2) + "\n",
    }


def generation_config(model: ModelConfig) -> dict[str, Any]:
    """generation_config.json: generation ends at EOS; greedy unless the caller samples."""
    return {
        "bos_token_id": model.eos_id,
        "eos_token_id": model.eos_id,
        "pad_token_id": model.pad_id,
        "do_sample": False,
        "max_length": model.max_seq_len,
    }


def write_hf(
    directory: Path,
    params: Params,
    model: ModelConfig,
    tokenizer: Tokenizer,
    dtype: str,
    card: str,
    max_shard_bytes: int = MAX_SHARD_BYTES,
) -> list[str]:
    """A complete Hugging Face model directory; returns the files written. The weights go to a
    temporary directory renamed into place, so a kill never leaves a half-written export."""
    tensors = cast(to_hf_tensors(params, model), dtype)
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    files = write_weights(tensors, partial, max_shard_bytes)
    texts = {
        CONFIG_FILE: json.dumps(hf_config(model, dtype), indent=2) + "\n",
        "generation_config.json": json.dumps(generation_config(model), indent=2) + "\n",
        "README.md": card,
        **tokenizer_files(tokenizer, model),
    }
    for name, text in texts.items():
        (partial / name).write_text(text)
    for path in partial.iterdir():
        path.chmod(0o644)  # safetensors writes its files private; a model directory is shared
    shutil.rmtree(directory, ignore_errors=True)
    partial.rename(directory)
    return [*files, *texts]
