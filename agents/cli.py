"""Command-line flags generated from a frozen config dataclass (one flag per field)."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class _ExtendTuple(argparse.Action):
    """Comma-separated values; a repeated flag adds to (not replaces) the earlier ones."""

    def __call__(
        self, parser: Any, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        seen = getattr(namespace, f"_{self.dest}_given", False)
        current = tuple(getattr(namespace, self.dest)) if seen else ()
        setattr(namespace, self.dest, current + tuple(values))
        setattr(namespace, f"_{self.dest}_given", True)


def _parser_for(hint: Any) -> tuple[Any, dict[str, Any]]:
    """argparse ``type`` and extra keywords for a field's type hint."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):  # Optional[X]
        inner = [a for a in args if a is not type(None)]
        return _parser_for(inner[0])
    if origin is tuple:
        item = args[0]
        split = lambda text: tuple(item(v) for v in text.split(",") if v.strip())  # noqa: E731
        return split, {"action": _ExtendTuple}
    if origin is typing.Literal:
        return str, {"choices": list(args)}
    if hint is bool:
        return None, {"action": argparse.BooleanOptionalAction}
    return hint, {}


def option(text: str, **kwargs: Any) -> Any:
    """A config dataclass field with its help text (becomes the flag's ``--help``)."""
    return dataclasses.field(metadata={"help": text}, **kwargs)


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One ``--field-name`` flag per dataclass field, with its help and default."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind, extra = _parser_for(hints[f.name])
        default = None if f.default is dataclasses.MISSING else f.default
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        text = f.metadata.get("help", "")
        suffix = " (required)" if f.default is dataclasses.MISSING else f" (default: {shown})"
        kwargs: dict[str, Any] = {"default": default, "help": text + suffix, **extra}
        if kind is not None:
            kwargs["type"] = kind
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, **kwargs)


def given_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> dict[str, Any]:
    """The options actually typed on the command line (not their defaults), by field name."""
    unset = object()
    probe = copy.deepcopy(parser)
    probe.set_defaults(**{a.dest: unset for a in probe._actions if a.dest != "help"})
    args = vars(probe.parse_args(argv))
    return {k: v for k, v in args.items() if v is not unset and not k.startswith("_")}


def from_args(cls: type[T], args: argparse.Namespace) -> T:
    """Build ``cls`` from parsed flags (validation happens in its ``__post_init__``)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**values)
