"""``results.csv`` and ``runs.jsonl`` of a report directory: append, read back, resume.

Each finished run is appended (and fsynced) to both files at once; `RunStore`
reads them back (the last entry of a cell wins, torn lines are skipped, and a
torn header is written anew) and rewrites them atomically.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.evaluation.methods.core import MethodResult
from agents.evaluation.stats import _float
from hpenv.io import atomic_open

#: A cell: (method, task, seed, start_lr_factor).
Key = tuple[str, str, int, float]

RAW_COLUMNS: tuple[str, ...] = (
    "method",
    "task",
    "seed",
    "start_lr_factor",
    "val_loss",
    "val_accuracy",
    "test_accuracy",
    "best_val_accuracy",
    "samples",
    "compute_samples",
    "compute_multiple",
    "wall_time",
    "diverged",
    "error",
)
DERIVED_COLUMNS: tuple[str, ...] = ("samples_to_target", "lr_log10_distance_to_grid")
COLUMNS: tuple[str, ...] = RAW_COLUMNS + DERIVED_COLUMNS
_INT_COLUMNS = ("seed", "samples", "compute_samples")
_STR_COLUMNS = ("method", "task", "error")


def _jsonable(obj: Any) -> Any:
    """Plain JSON values: non-finite floats become null, numpy and tuples become lists."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, np.ndarray | torch.Tensor):
        return _jsonable(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_jsonable(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    return str(obj)


def _append_line(path: Path, line: str) -> None:
    """Append one line, flushed and fsynced; repairs a torn last line first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")
        fh.write(line.encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())


def _csv_line(values: Sequence[Any]) -> str:
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _parse_row(raw: Mapping[str, str | None]) -> dict[str, Any] | None:
    """A typed results row, or None for a torn or foreign line."""
    if any(raw.get(c) is None for c in COLUMNS):
        return None
    try:
        row: dict[str, Any] = {}
        for column in COLUMNS:
            text = raw[column] or ""
            if column in _STR_COLUMNS:
                row[column] = text
            elif column in _INT_COLUMNS:
                row[column] = int(text) if text else 0
            elif column == "diverged":
                row[column] = text.strip().lower() in ("true", "1")
            else:
                row[column] = _float(text)
        if not row["method"] or not row["task"]:
            return None
        return row
    except ValueError:
        return None


def row_key(row: Mapping[str, Any]) -> Key:
    return (
        str(row["method"]),
        str(row["task"]),
        int(row["seed"]),
        float(row["start_lr_factor"]),
    )


def require_reports(folders: Sequence[str | Path], option: str) -> None:
    """Refuse folders that hold no evaluation (no ``runs.jsonl``), naming ``option``.

    Raises:
        FileNotFoundError: Naming every such folder.
    """
    missing = [str(f) for f in folders if not (Path(f) / "runs.jsonl").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{option}: not report directories of scripts/evaluate.py (no runs.jsonl): "
            f"{', '.join(missing)}"
        )


class RunStore:
    """``results.csv`` and ``runs.jsonl`` of a report directory (last entry of a cell wins)."""

    def __init__(self, out: Path) -> None:
        self.results_path = out / "results.csv"
        self.runs_path = out / "runs.jsonl"
        self.rows: dict[Key, dict[str, Any]] = {}
        self.records: dict[Key, dict[str, Any]] = {}
        self._needs_header = True  # results.csv needs its header written before a row
        self.load()

    def load(self) -> None:
        self.rows, self.records = {}, {}
        self._needs_header = not self.results_path.is_file() or self._torn_header()
        if not self._needs_header:
            with open(self.results_path, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                if reader.fieldnames is not None and tuple(reader.fieldnames) != COLUMNS:
                    raise ValueError(
                        f"{self.results_path} has columns {reader.fieldnames}, expected "
                        f"{list(COLUMNS)}: it was written by another version; use a new out_dir"
                    )
                for raw in reader:
                    row = _parse_row(raw)
                    if row is not None:
                        self.rows[row_key(row)] = row
        if self.runs_path.is_file():
            with open(self.runs_path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        record = json.loads(line)
                        self.records[row_key(record)] = record
                    except (ValueError, KeyError, TypeError):
                        continue  # a torn last line

    def _torn_header(self) -> bool:
        """Whether ``results.csv`` is empty or holds only the start of its header line.

        A crash during the first append can leave that (its record is in ``runs.jsonl``);
        like a torn row, it holds no finished run, and the next append writes it anew.
        """
        with open(self.results_path, "rb") as fh:
            first = fh.readline()
        return not first.endswith(b"\n") and _csv_line(COLUMNS).encode().startswith(first)

    def finished(self) -> set[Key]:
        """Cells with an error-free row and a record."""
        return {k for k, row in self.rows.items() if not row["error"] and k in self.records}

    def append(self, row: dict[str, Any], record: dict[str, Any]) -> None:
        """Record one run: its JSON record first, then its CSV row (each fsynced)."""
        key = row_key(row)
        _append_line(self.runs_path, json.dumps(_jsonable(record), sort_keys=True) + "\n")
        if self._needs_header:  # no file, an empty one, or a torn header
            with atomic_open(self.results_path, "w") as fh:
                fh.write(_csv_line(COLUMNS))
            self._needs_header = False
        _append_line(self.results_path, _csv_line([_cell(row.get(c, "")) for c in COLUMNS]))
        self.rows[key], self.records[key] = row, record

    def rewrite(self) -> None:
        """Rewrite both files atomically, one entry per cell."""
        with atomic_open(self.results_path, "w") as fh:
            fh.write(_csv_line(COLUMNS))
            for row in self.rows.values():
                fh.write(_csv_line([_cell(row.get(c, "")) for c in COLUMNS]))
        self._needs_header = False
        with atomic_open(self.runs_path, "w") as fh:
            for key, record in self.records.items():
                if key in self.rows:
                    fh.write(json.dumps(_jsonable(record), sort_keys=True) + "\n")


def result_row(result: MethodResult, error: str = "") -> dict[str, Any]:
    """The ``results.csv`` row of one run (derived columns still empty)."""
    samples = int(result.samples)
    return {
        "method": result.method,
        "task": result.task,
        "seed": int(result.seed),
        "start_lr_factor": float(result.start_lr_factor),
        "val_loss": float(result.val_loss),
        "val_accuracy": float(result.val_accuracy),
        "test_accuracy": float(result.test_accuracy),
        "best_val_accuracy": float(result.best_val_accuracy),
        "samples": samples,
        "compute_samples": int(result.compute_samples),
        "compute_multiple": result.compute_samples / samples if samples > 0 else math.nan,
        "wall_time": float(result.wall_time),
        "diverged": bool(result.diverged),
        "error": error,
        "samples_to_target": math.nan,
        "lr_log10_distance_to_grid": math.nan,
    }
