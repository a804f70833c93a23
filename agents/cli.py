"""The scripts' shared command line: flags generated from a config dataclass, one error path.

Every script under ``scripts/`` is a config dataclass (one ``--flag`` per
field, its help from `option`) and a function of it::

    config = parse_config(MetaTrainConfig, __doc__, argv, resume=resume_config)
    return run_job(lambda: meta_train(config))

Errors the user causes are reported one way by every script: one line on
stderr, ``<script>: error: <message>``, and ``SystemExit`` with status 2 (no
usage block, no traceback), before anything is written. `parse_config`
reports so a bad command line (unknown flag, bad value), a config whose
``__post_init__`` refuses it, and what its ``check`` or ``resume`` raise
(``ValueError``, ``FileNotFoundError``, ``FileExistsError``): checks that need
no work. `run_job` reports so what the job raises about its input
(`INPUT_ERRORS`: `hpenv.errors.InputError`, such as an unreadable policy file,
and a missing or existing path); every other exception is a bug and keeps its
traceback. A job stopped by SIGINT/SIGTERM prints its one-line message and
returns status 130. For configs with ``resume`` and ``out_dir``, ``--resume``
reads the run's own options (`given_options` are the flags typed again).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import sys
import types
import typing
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from agents.stopping import EXIT_INTERRUPTED, JobInterrupted
from hpenv.errors import InputError

T = TypeVar("T")

#: Exit status of a command refused for its input (argparse's own status for usage errors).
EXIT_INPUT_ERROR = 2
#: What a job raises when the user's input is wrong: reported as one line by `run_job`.
INPUT_ERRORS: tuple[type[Exception], ...] = (InputError, FileNotFoundError, FileExistsError)


def error_message(error: BaseException | str) -> str:
    """An error as one line: its ``summary`` if it has one (`DataNotFoundError`), else its text."""
    text = error if isinstance(error, str) else getattr(error, "summary", "") or str(error)
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def report_error(error: BaseException | str) -> int:
    """Print ``<script>: error: <one line>`` to stderr; returns `EXIT_INPUT_ERROR`."""
    prog = os.path.basename(sys.argv[0])  # what argparse calls the script too
    print(f"{prog}: error: {error_message(error)}", file=sys.stderr)
    return EXIT_INPUT_ERROR


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (`report_error`), without the usage."""

    def error(self, message: str) -> NoReturn:
        raise SystemExit(report_error(f"{message} (--help lists the options)"))


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
        if typing.get_origin(item) is typing.Literal:  # tuple[Literal[...], ...]: checked items
            names = typing.get_args(item)
            split = lambda text: tuple(v.strip() for v in text.split(",") if v.strip())  # noqa: E731
            return _checked_items(split, names), {"action": _ExtendTuple}
        split = lambda text: tuple(item(v.strip()) for v in text.split(",") if v.strip())  # noqa: E731
        return split, {"action": _ExtendTuple}
    if origin is typing.Literal:
        return str, {"choices": list(args)}
    if hint is bool:
        return None, {"action": argparse.BooleanOptionalAction}
    return hint, {}


def _checked_items(split: Any, choices: typing.Sequence[str]) -> Any:
    """A comma-separated list parser that refuses items outside ``choices``."""

    def parse(text: str) -> tuple[Any, ...]:
        items = split(text)
        wrong = [item for item in items if item not in choices]
        if wrong:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(map(str, wrong))}; choose from {', '.join(choices)}"
            )
        return tuple(items)

    return parse


#: Torch threads of each training process of a long-running job, unless ``--threads`` says
#: otherwise: one (measured, docs/benchmarks.md "CPU threads": two threads on two cores
#: gain little on an idle machine and lose several times over beside another busy process).
DEFAULT_THREADS = 1


def threads_option() -> Any:
    """The ``--threads`` field of a long-running job's config (see `use_threads`)."""
    return option(
        "torch threads of each process that trains models (0: torch's own default, one per "
        "core); one is faster on a shared machine: see docs/benchmarks.md, CPU threads",
        default=DEFAULT_THREADS,
    )


def check_threads(threads: int) -> None:
    """Refuse a negative ``--threads``."""
    if threads < 0:
        raise ValueError(f"threads must be >= 0 (0: torch's default), got {threads}")


def use_threads(threads: int) -> None:
    """Give this process ``threads`` torch threads (0: one per core, torch's default)."""
    import torch

    check_threads(threads)
    torch.set_num_threads(threads if threads > 0 else os.cpu_count() or 1)


def option(text: str, *, choices: typing.Sequence[str] | None = None, **kwargs: Any) -> Any:
    """A config dataclass field with its help text (becomes the flag's ``--help``).

    Args:
        text: The help text.
        choices: Allowed values, listed by ``--help`` (each item of a tuple field).
        **kwargs: ``default=`` and the rest of `dataclasses.field`.
    """
    metadata: dict[str, Any] = {"help": text}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    return dataclasses.field(metadata=metadata, **kwargs)


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One ``--field-name`` flag per dataclass field, with its help and default."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind, extra = _parser_for(hints[f.name])
        default = None if f.default is dataclasses.MISSING else f.default
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        text = f.metadata.get("help", "")
        if f.default is dataclasses.MISSING:
            suffix = " (required)"
        elif "(default" in text:  # the help says what the default means
            suffix = ""
        else:
            suffix = f" (default: {shown})"
        choices = f.metadata.get("choices")
        if choices is not None and extra.get("action") is _ExtendTuple:
            text = f"{text}; comma-separated, from: {', '.join(choices)}"
            kind = _checked_items(kind, choices)
        elif choices is not None:
            extra = {**extra, "choices": list(choices)}
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


def build_parser(cls: type, doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with ``doc`` as its description and one flag per field of ``cls``."""
    parser = _Parser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, cls)
    return parser


def parse_config(
    cls: type[T],
    doc: str | None,
    argv: list[str] | None,
    *,
    resume: Callable[[str, dict[str, Any]], T] | None = None,
    check: Callable[[T], object] | None = None,
) -> T:
    """Parse ``argv`` into a ``cls``; an error exits with its one line (status 2).

    Args:
        cls: The config dataclass.
        doc: The script's ``__doc__`` (its ``--help`` text).
        argv: The arguments (default ``sys.argv[1:]``).
        resume: With ``--resume``: builds the config from the run directory
            (``--out-dir``) and the flags given again.
        check: Called with the config; its ``ValueError``, ``FileNotFoundError`` or
            ``FileExistsError`` is refused the same way (e.g. a ``--policy`` that
            names no policy): checks that need no work, before anything is written.
    """
    parser = build_parser(cls, doc)
    args = parser.parse_args(argv)
    try:
        if resume is not None and getattr(args, "resume", False):
            if getattr(args, "out_dir", None) is None:
                parser.error("--resume needs --out-dir: the directory to continue")
            config = resume(args.out_dir, given_options(parser, argv))
        else:
            config = from_args(cls, args)
        if check is not None:
            check(config)
        return config
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        raise SystemExit(report_error(exc)) from None


def run_job(job: Callable[[], object], *, input_errors: tuple[type[Exception], ...] = ()) -> int:
    """Run ``job``: 0 when it finishes; 130, after its one-line message, when stopped.

    Args:
        job: The script's work.
        input_errors: Exception types that also mean bad input for this job (besides
            `INPUT_ERRORS`), e.g. ``NotImplementedError`` for a policy that cannot be exported.

    Raises:
        SystemExit: Status `EXIT_INPUT_ERROR`, after ``<script>: error: <message>``, when
            the job raised one of `INPUT_ERRORS` or ``input_errors`` (as `parse_config`
            does for a bad command line). Any other exception propagates with its traceback.
    """
    try:
        job()
    except JobInterrupted as stopped:
        print(stopped, file=sys.stderr)
        return EXIT_INTERRUPTED
    except (*INPUT_ERRORS, *input_errors) as exc:
        raise SystemExit(report_error(exc)) from None
    return 0
