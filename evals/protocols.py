"""Named evaluation protocols: the sampling presets published numbers use (`--protocol NAME`).

A protocol sets the request flags (samples, temperature, top-k, top-p, new tokens, and for
bigcode the prompt + completion budget and the per-program timeout); any of those flags given
explicitly overrides it. How a protocol formats prompts and where completions stop is each
suite's business (specialists/python/benchmarks.py builds bigcode's prompts).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Collection, Mapping, Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class Protocol:
    """A preset of flag values (argparse destinations: n_samples, temperature, ...)."""

    name: str
    description: str
    flags: Mapping[str, Any]


PROTOCOLS = {
    protocol.name: protocol
    for protocol in (
        Protocol(
            "greedy",
            "EvalPlus's convention: one greedy sample per task (pass@1), up to 768 new tokens",
            {"n_samples": 1, "temperature": 0.0, "top_k": 0, "top_p": 1.0, "max_new_tokens": 768},
        ),
        Protocol(
            "bigcode",
            "bigcode-evaluation-harness's: 20 samples per task at temperature 0.2, top-p 0.95 "
            "(pass@1; --n-samples 200 --temperature 0.8 for pass@10/100), prompt + completion "
            "within 512 tokens, 3 s per program, the harness's prompts and stop strings",
            {
                "n_samples": 20,
                "temperature": 0.2,
                "top_k": 0,
                "top_p": 0.95,
                "max_new_tokens": 512,
                "max_length": 512,
                "timeout": 3.0,
            },
        ),
    )
}


def add_protocol_argument(parser: argparse.ArgumentParser, names: Collection[str]) -> None:
    """--protocol, one of `names` (keys of PROTOCOLS)."""
    parser.add_argument(
        "--protocol",
        choices=list(names),
        help="; ".join(f"{name}: {PROTOCOLS[name].description}" for name in names)
        + " (explicit flags override the preset)",
    )


def parse_with_protocol(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> argparse.Namespace:
    """Parse `argv` with the chosen --protocol's values as the defaults of its flags: argparse
    fills in a default only where the namespace has no value yet, and a given flag replaces it."""
    finder = argparse.ArgumentParser(add_help=False)
    finder.add_argument("--protocol")
    chosen = PROTOCOLS.get(finder.parse_known_args(argv)[0].protocol)
    return parser.parse_args(argv, argparse.Namespace(**(chosen.flags if chosen else {})))


def protocol_record(name: str | None) -> dict[str, Any] | None:
    """The protocol of a results file: its name, description and preset (None: no protocol)."""
    if name is None:
        return None
    protocol = PROTOCOLS[name]
    return {"name": name, "description": protocol.description, "preset": dict(protocol.flags)}
