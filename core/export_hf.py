"""Export a trained run as a Hugging Face Llama checkpoint: transformers, vLLM, llama.cpp's
converter and the Hub read the directory without custom code.

    python -m core.export_hf --run outputs/python-test --out exports/python-test [--step N]
        [--dtype bfloat16|float32] [--eval-results outputs/eval/.../results.json ...]

Writes config.json (LlamaForCausalLM), model.safetensors (sharded with an index past
--max-shard-bytes), tokenizer.json, tokenizer_config.json, special_tokens_map.json,
generation_config.json and a model card (README.md) with the run's data, steps, tokens, losses,
the eval results given, and how to prompt it to fill in the middle (and whether it trained to).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.checkpoint import Checkpointer, load_model
from core.cli import run_main
from core.config import ModelConfig
from core.fim import FILE_SEPARATOR, infill_prompt
from core.hf import EXPORT_DTYPES, MAX_SHARD_BYTES, write_hf
from core.layout import RunLayout
from core.model import Params, count_params
from core.tokenizer import load_tokenizer
from core.trainer import read_metrics


def _run_facts(layout: RunLayout, step: int) -> dict[str, Any]:
    """What the model card says about the run: its summary, or its metrics up to `step`."""
    facts: dict[str, Any] = {"step": step}
    if layout.summary.is_file():
        facts |= json.loads(layout.summary.read_text())
    records = [r for r in read_metrics(layout.metrics) if r["step"] <= step]
    if records:
        facts["train_loss_first"] = records[0]["loss"]
        facts["train_loss_last"] = records[-1]["loss"]
        facts["val_loss"] = next(
            (r["val_loss"] for r in reversed(records) if "val_loss" in r), None
        )
    return facts


def _eval_rows(paths: Sequence[Path]) -> list[str]:
    rows = []
    for path in paths:
        try:
            result = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"--eval-results {path}: {error}") from None
        metrics = {k: v for k, v in result.items() if k.startswith("pass@") or k.endswith("_rate")}
        shown = ", ".join(f"{k} {v:.2%}" for k, v in metrics.items() if isinstance(v, float))
        rows.append(f"| {result.get('benchmark', result.get('language', path.parent.name))} | "
                    f"{result.get('n_tasks', '')} | {shown} |")  # fmt: skip
    return rows


def fim_section(fim: dict[str, Any] | None) -> list[str]:
    """The model card's fill-in-the-middle section: whether the run trained with FIM (its data
    manifest's "fim" entry; None: not recorded) and how to prompt for it (core.fim's PSM layout)."""
    if fim is None:
        trained = "Whether this run trained with fill-in-the-middle is not in its data manifest."
    elif not fim["rate"]:
        trained = (
            "This run trained without fill-in-the-middle (`--fim-rate 0`): it continues code "
            "left to right, and the prompt below will not give useful middles."
        )
    else:
        trained = (
            f"Trained with fill-in-the-middle (Bavarian et al., 2022, as StarCoder): "
            f"{fim['share']:.0%} of its {fim['train_files']:,} training files "
            f"({fim['psm_files']:,} PSM, {fim['spm_files']:,} SPM; `--fim-rate {fim['rate']:g}`, "
            f"`--fim-spm-rate {fim['spm_rate']:g}`)."
        )
    example = infill_prompt("def area(width, height):\n    ", "\n    return result\n")
    return [
        "## Fill-in-the-middle",
        "",
        trained,
        "",
        "Give the code before the gap (prefix) and after it (suffix) in this prompt, special tokens "
        "included; the model writes the middle and ends it with `<|endoftext|>` (stop there, or at "
        f"`{FILE_SEPARATOR}`):",
        "",
        "```",
        infill_prompt("{prefix}", "{suffix}"),
        "```",
        "",
        "```python",
        f"prompt = {example!r}",
        'ids = tokenizer(prompt, return_tensors="pt").input_ids',
        f'stops = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("{FILE_SEPARATOR}")]',
        "middle = model.generate(ids, max_new_tokens=32, eos_token_id=stops)[0, ids.shape[1]:]",
        "print(tokenizer.decode(middle, skip_special_tokens=True))",
        "```",
        "",
        "OpenAI-compatible servers that take `suffix` on `/v1/completions` (codefactory's "
        "orchestrator does) build this prompt from `prompt` and `suffix` themselves.",
    ]


def model_card(
    model: ModelConfig, facts: dict[str, Any], dtype: str, eval_results: Sequence[Path] = ()
) -> str:
    """README.md of an exported model: what it is, what it was trained on, how it did."""
    language = facts.get("language", "code")
    data = facts.get("data", {})
    splits = data.get("splits", {})
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-generation",
        f"tags: [code, {language}, codefactory]",
        "---",
        "",
        f"# {facts.get('run_name', 'codefactory')} ({language} specialist)",
        "",
        f"A {count_params(model):,}-parameter decoder-only code model (Llama architecture: "
        f"{model.num_layers} layers, hidden {model.hidden_dim}, {model.num_heads} heads, "
        f"{model.num_kv_heads} key/value head(s), RoPE θ={model.rope_theta:g}, "
        f"{'tied' if model.tie_embeddings else 'untied'} embeddings), trained with codefactory, "
        f"exported at step {facts['step']} in {dtype}.",
        "",
        "## Training",
        "",
        f"- Steps: {facts['step']}"
        + (
            f" ({facts['tokens_seen']:,} tokens seen)" if "tokens_seen" in facts else ""
        ),  # fmt: skip
    ]
    if data:
        lines += [
            f"- Data: {', '.join(map(str, data.get('sources', [])))}; {data.get('files_kept', 0):,} "
            f"files kept of {data.get('files_in', 0):,} (filters, exact and near-duplicate removal)",
            f"- Tokens: {splits.get('train', {}).get('tokens', 0):,} train, "
            f"{splits.get('validation', {}).get('tokens', 0):,} validation",
        ]
    if "train_loss_last" in facts:
        val = facts.get("val_loss")
        lines.append(
            f"- Loss: {facts['train_loss_first']:.3f} → {facts['train_loss_last']:.3f} (train)"
            + (f", {val:.3f} (validation)" if val is not None else "")
        )
    rows = _eval_rows(eval_results)
    if rows:
        lines += ["", "## Evaluation", "", "| benchmark | tasks | scores |", "|---|---|---|", *rows]
    lines += ["", *fim_section(facts.get("fim"))]
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        'tokenizer = AutoTokenizer.from_pretrained("DIR")',
        'model = AutoModelForCausalLM.from_pretrained("DIR")',
        'ids = tokenizer("def fibonacci(n):", return_tensors="pt").input_ids',
        "print(tokenizer.decode(model.generate(ids, max_new_tokens=64)[0]))",
        "```",
        "",
        "It continues code; it is not an instruction-following model. Serve it with "
        "`vllm serve DIR`.",
        "",
    ]
    return "\n".join(lines)


def export_params(
    out: Path,
    params: Params,
    model: ModelConfig,
    layout: RunLayout,
    step: int,
    dtype: str,
    eval_results: Sequence[Path] = (),
    max_shard_bytes: int = MAX_SHARD_BYTES,
) -> list[str]:
    """Write `params` of the run at `layout` (its tokenizer, its facts up to `step`) to `out`."""
    facts = _run_facts(layout, step) | {"run_name": layout.root.name}
    if layout.data_dir() is not None and (layout.data_dir() / "manifest.json").is_file():
        manifest = json.loads((layout.data_dir() / "manifest.json").read_text())
        facts |= {"language": manifest["language"], "fim": manifest.get("fim")}
    card = model_card(model, facts, dtype, eval_results)
    tokenizer = load_tokenizer(layout.tokenizer)
    return write_hf(out, params, model, tokenizer, dtype, card, max_shard_bytes)


def export_run(
    run_dir: Path,
    out: Path,
    step: int | None = None,
    dtype: str = "bfloat16",
    eval_results: Sequence[Path] = (),
    max_shard_bytes: int = MAX_SHARD_BYTES,
) -> list[str]:
    """Export the newest (or `step`'s) checkpoint of `run_dir` to `out`; the files written."""
    layout = RunLayout.of(run_dir)
    if dtype not in EXPORT_DTYPES:
        raise ValueError(f"--dtype must be one of {EXPORT_DTYPES}, got {dtype!r}")
    model, params = load_model(layout.checkpoints, step)
    chosen = step if step is not None else Checkpointer(layout.checkpoints).latest_step()
    return export_params(out, params, model, layout, chosen, dtype, eval_results, max_shard_bytes)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: one-line errors, exit 2."""
    parser = argparse.ArgumentParser(prog="python -m core.export_hf", description=__doc__)
    parser.add_argument("--run", type=Path, required=True, help="the run directory to export")
    parser.add_argument("--out", type=Path, required=True, help="the Hugging Face directory")
    parser.add_argument("--step", type=int, help="checkpoint step (default: the newest)")
    parser.add_argument(
        "--dtype",
        choices=EXPORT_DTYPES,
        default="bfloat16",
        help="weights dtype (default: %(default)s)",
    )
    parser.add_argument(
        "--max-shard-bytes",
        type=int,
        default=MAX_SHARD_BYTES,
        help="shard the weights past this size (default: %(default)s, Hugging Face's 5GB)",
    )
    parser.add_argument(
        "--eval-results", type=Path, nargs="*", default=[], help="results.json files for the card"
    )
    args = parser.parse_args(argv)

    def run() -> int:
        files = export_run(
            args.run, args.out, args.step, args.dtype, args.eval_results, args.max_shard_bytes
        )
        print(f"wrote {args.out}: {', '.join(files)}")
        return 0

    return run_main(run)


if __name__ == "__main__":
    sys.exit(main())
