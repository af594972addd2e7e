"""Import a local Hugging Face Llama checkpoint as a run directory that training (a warm start),
the evals and the orchestrator use like any other.

    python -m core.import_hf --hf path/to/llama-dir --out outputs/imported

Reads config.json (LlamaForCausalLM: any number of key/value heads, tied or untied embeddings,
its rope_theta; biases, rope scaling and other model types are refused in one line naming the
field), the safetensors weights (one file or sharded with an index, any float dtype, stored as
float32) and tokenizer.json.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.checkpoint import Checkpointer, run_config_dict, write_run_config
from core.cli import run_main
from core.config import ModelConfig, TrainConfig
from core.hf import HFFormatError, from_hf_tensors, model_config_from_hf, read_config, read_weights
from core.layout import RunLayout
from core.tokenizer import TOKENIZER_FILE, check_special_ids, load_tokenizer


def read_hf(directory: Path) -> tuple[ModelConfig, Any]:
    """(our ModelConfig, host parameters) of a Hugging Face Llama directory."""
    if not (directory / TOKENIZER_FILE).is_file():
        raise HFFormatError(f"{directory}: no {TOKENIZER_FILE} (a fast tokenizer is needed)")
    tokenizer = load_tokenizer(directory)
    model = model_config_from_hf(read_config(directory), str(directory), tokenizer)
    check_special_ids(tokenizer, model.eos_id, model.pad_id, str(directory))
    return model, from_hf_tensors(read_weights(directory), model, str(directory))


def import_hf(directory: Path, out: Path) -> ModelConfig:
    """Write the run directory `out` from the Hugging Face directory; returns its model config."""
    model, params = read_hf(directory)
    layout = RunLayout(out)
    if layout.checkpoints.exists():
        raise ValueError(f"--out {out} already holds checkpoints")
    train = TrainConfig(init_from=str(directory.absolute()))
    write_run_config(layout, model, train)
    checkpointer = Checkpointer(layout.checkpoints, async_save=False)
    try:
        checkpointer.save(0, {"params": params}, {}, run_config_dict(model, train))
    finally:
        checkpointer.close()
    load_tokenizer(directory).save(str(layout.tokenizer))
    return model


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: one-line errors, exit 2."""
    parser = argparse.ArgumentParser(prog="python -m core.import_hf", description=__doc__)
    parser.add_argument("--hf", type=Path, required=True, help="a Hugging Face model directory")
    parser.add_argument("--out", type=Path, required=True, help="the run directory to write")
    args = parser.parse_args(argv)

    def run() -> int:
        model = import_hf(args.hf, args.out)
        print(
            f"imported {args.hf} into {args.out}: {model.num_layers} layers, hidden "
            f"{model.hidden_dim}, {model.num_heads} heads / {model.num_kv_heads} key-value, "
            f"vocab {model.vocab_size}"
        )
        return 0

    return run_main(run)


if __name__ == "__main__":
    sys.exit(main())
