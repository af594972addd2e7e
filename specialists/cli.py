"""The commands every language has: prepare its data, train it, evaluate it, fine-tune it.

    python -m specialists prepare --language LANG [flags]   (or ./pants run specialists/LANG:prepare)
    python -m specialists train --language LANG [flags]     (or ./pants run specialists/LANG:train)
    python -m specialists eval --language LANG [flags]      (or ./pants run specialists/LANG:eval)
    python -m specialists sft --language LANG --init-from RUN --data FILE.jsonl
                                                           (or ./pants run specialists/LANG:sft)

`python -m specialists COMMAND --language LANG --help` lists a command's flags. A language with
benchmarks (its `LANGUAGE.benchmarks`) is evaluated on them (evals/cli.py); any other on held-out
perplexity and the syntax-valid rate of its sample completions (evals/syntax_eval.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from core.cli import run_main
from core.language import Language
from core.layout import default_run_dir
from core.sft import sft_main
from core.trainer import LossDivergedError
from specialists.job import parse_args, prepare_job, summary_lines, train_job
from specialists.languages import discover, language_named

COMMANDS = {
    "prepare": "Build a language's training data: filter, deduplicate, tokenize, pack.",
    "train": "Train a language's specialist: prepare data, train, sample, summarise.",
    "eval": "Evaluate a trained specialist, or any model's samples.",
    "sft": "Fine-tune a trained specialist on (prompt, target) examples (core/sft.py).",
}


def _prepare(language: Language, argv: Sequence[str]) -> int:
    args = parse_args(language, "prepare", argv, COMMANDS["prepare"])
    print(prepare_job(language, args))
    return 0


def _train(language: Language, argv: Sequence[str]) -> int:
    args = parse_args(language, "train", argv, COMMANDS["train"])
    try:
        summary = train_job(language, args)
    except LossDivergedError as error:
        raise ValueError(str(error)) from error
    print("\n".join(summary_lines(summary)))
    return 0


def _eval(language: Language, argv: Sequence[str]) -> int:
    if language.benchmarks is None:
        from evals.syntax_eval import syntax_eval_main

        return syntax_eval_main(language, argv)
    from evals.cli import eval_main

    return eval_main(language, language.benchmarks(), argv)


def _sft(language: Language, argv: Sequence[str]) -> int:
    prog = f"python -m specialists sft --language {language.name}"
    return sft_main(argv, prog, default_out=default_run_dir(language.name, "sft"))


_RUN = {"prepare": _prepare, "train": _train, "eval": _eval, "sft": _sft}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch `COMMAND --language LANG [flags]`; user errors print one line and exit 2."""
    parser = argparse.ArgumentParser(
        prog="python -m specialists",
        description=__doc__.split("\n\n")[0],
        epilog="languages: " + ", ".join(discover()),
        add_help=False,
    )
    parser.add_argument("command", nargs="?", choices=COMMANDS, help="; ".join(COMMANDS.values()))
    parser.add_argument("--language", help="a language name or alias")
    parser.add_argument("-h", "--help", action="store_true", help="this help, or a command's")
    known, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if known.command is None or known.language is None:
        if known.help:
            parser.print_help()
            return 0
        parser.error("give a COMMAND and --language LANG")
    if known.help:
        rest.append("--help")
    return run_main(lambda: _RUN[known.command](language_named(known.language), rest))
