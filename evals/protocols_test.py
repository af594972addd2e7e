"""Protocols preset the request flags; flags given explicitly win."""

from __future__ import annotations

import argparse

import pytest

from evals.protocols import PROTOCOLS, add_protocol_argument, parse_with_protocol, protocol_record


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_protocol_argument(parser, ["greedy", "bigcode"])
    parser.add_argument("--n-samples", type=int, default=1)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--max-length", type=int)
    parser.add_argument("--timeout", type=float, default=30.0)
    return parser


def flags(args: argparse.Namespace) -> tuple:
    return (args.n_samples, args.temperature, args.top_p, args.max_new_tokens, args.max_length,
            args.timeout)  # fmt: skip


def test_no_protocol_keeps_the_defaults() -> None:
    args = parse_with_protocol(parser(), [])
    assert args.protocol is None and flags(args) == (1, 0.0, 0.95, 512, None, 30.0)


def test_bigcode_presets_its_flags_and_explicit_flags_override() -> None:
    assert flags(parse_with_protocol(parser(), ["--protocol", "bigcode"])) == (
        20, 0.2, 0.95, 512, 512, 3.0,
    )  # fmt: skip
    args = parse_with_protocol(
        parser(), ["--n-samples", "200", "--protocol=bigcode", "--temperature", "0.8"]
    )
    assert flags(args) == (200, 0.8, 0.95, 512, 512, 3.0)


def test_greedy_is_one_greedy_sample() -> None:
    args = parse_with_protocol(parser(), ["--protocol", "greedy"])
    assert flags(args) == (1, 0.0, 1.0, 768, None, 30.0)


def test_an_unknown_protocol_is_the_parsers_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_with_protocol(parser(), ["--protocol", "nope"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_the_record_names_the_preset() -> None:
    assert protocol_record(None) is None
    record = protocol_record("bigcode")
    assert record is not None and record["name"] == "bigcode"
    assert record["preset"] == dict(PROTOCOLS["bigcode"].flags)
