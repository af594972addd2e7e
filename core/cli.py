"""Derive argparse flags from a frozen config dataclass and build the dataclass back from them."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Collection
from typing import Any, TypeVar

T = TypeVar("T")


def flag_field(default: Any, help_text: str) -> Any:
    """A dataclass field whose `--flag` (see add_dataclass_args) shows `help_text`."""
    return dataclasses.field(default=default, metadata={"help": help_text})


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_dataclass_args(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    defaults: Any = None,
    exclude: Collection[str] = (),
) -> None:
    """Add one `--field-name` flag per field of dataclass `cls` (except `exclude`), defaulting to
    the field's value in `defaults` (an instance of `cls`, e.g. a preset) or the field default.

    Supported field types: bool (as --flag/--no-flag), int, float, str and tuple[X, ...].
    The help text shows the default; the field's `metadata["help"]` is used when present.
    """
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in exclude:
            continue
        kind = hints[field.name]
        default = field.default if defaults is None else getattr(defaults, field.name)
        if default is dataclasses.MISSING:
            default = field.default_factory()  # type: ignore[misc]
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
    cls: type[T], args: argparse.Namespace, *, exclude: Collection[str] = ()
) -> T:
    """Build `cls` from the parsed flags that `add_dataclass_args` added; fields in `exclude`
    (given no flag) keep their dataclass defaults."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name in exclude:
            continue
        value = getattr(args, field.name)
        values[field.name] = (
            tuple(value) if typing.get_origin(hints[field.name]) is tuple else value
        )
    return cls(**values)
