import argparse
import dataclasses

import pytest

from core.cli import add_dataclass_args, dataclass_from_args


@dataclasses.dataclass(frozen=True)
class _Example:
    steps: int = 3
    rate: float = 0.5
    name: str = dataclasses.field(default="run", metadata={"help": "run name"})
    verbose: bool = True
    tags: tuple[str, ...] = ("a",)


def _parse(argv: list[str]) -> _Example:
    parser = argparse.ArgumentParser()
    add_dataclass_args(parser, _Example)
    return dataclass_from_args(_Example, parser.parse_args(argv))


def test_defaults_come_from_the_dataclass() -> None:
    assert _parse([]) == _Example()


def test_flags_override_each_field_with_its_type() -> None:
    parsed = _parse(["--steps", "7", "--rate", "1e-3", "--name", "x", "--no-verbose",
                     "--tags", "b", "c"])  # fmt: skip
    assert parsed == _Example(steps=7, rate=1e-3, name="x", verbose=False, tags=("b", "c"))


def test_help_lists_field_help_and_default(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_dataclass_args(parser, _Example)
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    out = capsys.readouterr().out
    assert "--steps" in out and "run name (default: 'run')" in out


def test_bad_value_is_an_argparse_error() -> None:
    with pytest.raises(SystemExit):
        _parse(["--steps", "many"])


def test_unsupported_field_type_is_rejected() -> None:
    @dataclasses.dataclass
    class Bad:
        mapping: dict = dataclasses.field(default_factory=dict)

    with pytest.raises(TypeError, match=r"Bad\.mapping"):
        add_dataclass_args(argparse.ArgumentParser(), Bad)


def test_preset_defaults_and_excluded_fields() -> None:
    parser = argparse.ArgumentParser()
    add_dataclass_args(parser, _Example, defaults=_Example(steps=9), exclude=("name",))
    with pytest.raises(SystemExit):
        parser.parse_args(["--name", "x"])
    parsed = dataclass_from_args(_Example, parser.parse_args(["--rate", "2"]), exclude=("name",))
    assert parsed == _Example(steps=9, rate=2.0)
