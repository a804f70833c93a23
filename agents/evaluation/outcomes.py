"""What one harness cell produced, computed the same way in this process and on Ray workers.

`run_cell` runs a cell with its method and returns a `CellOutcome` (its
``results.csv`` row and ``runs.jsonl`` record, or a skip); nothing is written
here. `agents.evaluation.runner` records outcomes; `agents.evaluation.ray_cells`
computes them on Ray workers and hands them back to the runner.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass
from typing import Any

from agents.evaluation.config import WARM_METHODS
from agents.evaluation.methods.core import Method, MethodResult, RunSpec
from agents.evaluation.records import Key, result_row


def _failed_result(key: Key, wall_time: float) -> MethodResult:
    method, task, seed, start = key
    nan = math.nan
    return MethodResult(method, task, seed, start, nan, nan, nan, nan, 0, 0, wall_time, False)


@dataclass
class CellOutcome:
    """What one cell produced: its ``results.csv`` row and ``runs.jsonl`` record, or a skip.

    Attributes:
        key: The cell.
        row: Its row (`result_row`); None when the method is skipped.
        record: Its record (trajectory, extra, error details); None when skipped.
        skipped: Why the method cannot run here (an optional package is missing).
    """

    key: Key
    row: dict[str, Any] | None = None
    record: dict[str, Any] | None = None
    skipped: str = ""


def run_cell(method: Method, spec: RunSpec, key: Key) -> CellOutcome:
    """Run one cell with its method, in this process or a Ray worker (nothing is written).

    A missing optional package (`ImportError`) skips the method; any other
    exception becomes the cell's error row (its metrics NaN).
    """
    begin = time.perf_counter()
    try:
        result = method.run(spec)
    except ImportError as exc:
        return skipped_outcome(key, exc)
    except Exception as exc:
        return failed_outcome(key, exc, time.perf_counter() - begin, traceback.format_exc())
    return result_outcome(key, result, "", "")


def skipped_outcome(key: Key, exc: BaseException) -> CellOutcome:
    return CellOutcome(key, skipped=f"{type(exc).__name__}: {exc}")


def failed_outcome(key: Key, exc: BaseException, wall_time: float, details: str) -> CellOutcome:
    """The error row of a cell that raised ``exc`` (the traceback goes in its record)."""
    error = " ".join(f"{type(exc).__name__}: {exc}".split())
    return result_outcome(key, _failed_result(key, wall_time), error, details)


def result_outcome(key: Key, result: MethodResult, error: str, details: str) -> CellOutcome:
    name, task, seed, start = key
    result.method, result.task = name, task  # the registry name labels the row
    result.seed, result.start_lr_factor = seed, start
    record = {
        "method": name,
        "task": task,
        "seed": seed,
        "start_lr_factor": start,
        "trajectory": result.trajectory,
        "extra": result.extra,
        "error": details,
    }
    return CellOutcome(key, result_row(result, error), record)


def method_slot(name: str, task: str) -> tuple[str, str]:
    """Which method instance a cell uses: one per method, one per task for warm-started ones."""
    return (name, task if name in WARM_METHODS else "")
