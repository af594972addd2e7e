"""Command lines from config dataclasses, and the one way an entry point reports a user error.

Every field of a frozen config dataclass becomes a `--field-name` flag; a field whose type is
itself a dataclass contributes its own fields' flags (flat names, so `--temperature`, not
`--sampling-temperature`). `dataclass_from_args` builds the (nested) dataclass back.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def flag_field(default: Any, help_text: str) -> Any:
    """A dataclass field whose `--flag` (see add_dataclass_args) shows `help_text`."""
    return dataclasses.field(default=default, metadata={"help": help_text})


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _default(field: dataclasses.Field, defaults: Any) -> Any:
    if defaults is not None:
        return getattr(defaults, field.name)
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def add_dataclass_args(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    defaults: Any = None,
    exclude: Collection[str] = (),
) -> None:
    """Add one `--field-name` flag per field of dataclass `cls` (except `exclude`), defaulting to
    the field's value in `defaults` (an instance of `cls`, e.g. a preset) or the field default.

    Supported field types: bool (as --flag/--no-flag), int, float, str, tuple[X, ...] and nested
    dataclasses (their fields' flags, recursively). The help text shows the default; the field's
    `metadata["help"]` is used when present.
    """
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in exclude:
            continue
        kind = hints[field.name]
        default = _default(field, defaults)
        if dataclasses.is_dataclass(kind):
            add_dataclass_args(parser, kind, defaults=default, exclude=exclude)
            continue
        help_text = f"{field.metadata.get('help', '')} (default: {default!r})".strip()
        if kind is bool:
            parser.add_argument(
                _flag(field.name),
                action=argparse.BooleanOptionalAction,
                default=default,
                help=help_text,
            )
        elif typing.get_origin(kind) is tuple:
            item_type = typing.get_args(kind)[0]
            parser.add_argument(
                _flag(field.name), type=item_type, nargs="*", default=default, help=help_text
            )
        elif kind in (int, float, str):
            parser.add_argument(_flag(field.name), type=kind, default=default, help=help_text)
        else:
            raise TypeError(f"{cls.__name__}.{field.name}: unsupported CLI field type {kind!r}")


def dataclass_from_args(
    cls: type[T], args: argparse.Namespace, *, exclude: Collection[str] = (), **fixed: Any
) -> T:
    """Build `cls` from the parsed flags that `add_dataclass_args` added. Fields in `exclude`
    (given no flag) keep their dataclass defaults; `fixed` gives values for fields directly."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = dict(fixed)
    for field in dataclasses.fields(cls):
        if field.name in exclude or field.name in fixed:
            continue
        kind = hints[field.name]
        if dataclasses.is_dataclass(kind):
            values[field.name] = dataclass_from_args(kind, args, exclude=exclude)
            continue
        value = getattr(args, field.name)
        values[field.name] = tuple(value) if typing.get_origin(kind) is tuple else value
    return cls(**values)


def run_main(run: Callable[[], int]) -> int:
    """`run()`'s exit status; a user error (any ValueError: bad flag, file or field) prints one
    `error: ...` line on stderr and gives status 2. Every entry point reports errors this way."""
    try:
        return run()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def read_lines(path: Path, flag: str) -> list[str]:
    """The lines of the UTF-8 text file a flag names; a one-line error naming the flag if it
    cannot be read."""
    try:
        return path.read_text().splitlines()
    except OSError as error:
        raise ValueError(f"{flag} {path}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{flag} {path}: not UTF-8 text") from None


def write_json(path: Path, value: Any) -> None:
    """Write `value` as indented JSON to `path` (a --json flag); a one-line error if it cannot."""
    try:
        path.write_text(json.dumps(value, indent=2) + "\n")
    except OSError as error:
        raise ValueError(f"cannot write --json {path}: {error.strerror}") from None
