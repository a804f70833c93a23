"""Finished runs as the report sees them: scores, derived columns, grouping."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.evaluation.config import GRID, POLICY, STATIC
from agents.evaluation.records import RunStore, row_key
from agents.evaluation.stats import _float, final_score, lr_log10_distance, samples_to_target


@dataclass
class _Run:
    """One finished run as the report sees it."""

    row: dict[str, Any]
    trajectory: list[dict[str, float]]
    extra: dict[str, Any]

    @property
    def score(self) -> float:
        return final_score(self.row["val_accuracy"], self.row["diverged"])

    @property
    def test_score(self) -> float:
        return 0.0 if self.row["diverged"] else float(self.row["test_accuracy"])


def _trajectory(record: Mapping[str, Any]) -> list[dict[str, float]]:
    points = record.get("trajectory") or []
    return [{k: _float(v) for k, v in p.items()} for p in points if isinstance(p, Mapping)]


def finished_runs(store: RunStore) -> list[_Run]:
    """The runs of a report's result files that finished without an error."""
    runs = []
    for key, row in store.rows.items():
        if not row["error"] and key in store.records:
            record = store.records[key]
            runs.append(_Run(row, _trajectory(record), dict(record.get("extra") or {})))
    return runs


def derive_columns(runs: Sequence[_Run], target_fraction: float) -> dict[tuple[str, float], float]:
    """Fill ``samples_to_target`` and ``lr_log10_distance_to_grid``; returns the targets."""
    static: dict[tuple[str, float], list[float]] = {}
    grid_lr: dict[tuple[str, int, float], float] = {}
    for run in runs:
        method, task, seed, start = row_key(run.row)
        if method == STATIC:
            static.setdefault((task, start), []).append(run.score)
        if method == GRID:
            grid_lr[(task, seed, start)] = _float(run.extra.get("chosen_lr"))
    targets = {}
    for group, scores in static.items():
        mean = float(np.mean(scores))
        targets[group] = target_fraction * mean if mean > 0 else math.nan
    for run in runs:
        method, task, seed, start = row_key(run.row)
        target = targets.get((task, start), math.nan)
        run.row["samples_to_target"] = samples_to_target(run.trajectory, target)
        distance = math.nan
        if method == POLICY:
            distance = lr_log10_distance(run.trajectory, grid_lr.get((task, seed, start), math.nan))
        run.row["lr_log10_distance_to_grid"] = distance
    return targets


def _ordered(values: Iterable[Any], first: Sequence[Any] = ()) -> list[Any]:
    """Distinct ``values``: those listed in ``first`` in its order, then the rest as they come."""
    items = list(values)
    present = set(items)
    seen: list[Any] = [v for v in dict.fromkeys(first) if v in present]
    for v in items:
        if v not in seen:
            seen.append(v)
    return seen


def _group(runs: Iterable[_Run], *fields: str) -> dict[tuple[Any, ...], list[_Run]]:
    groups: dict[tuple[Any, ...], list[_Run]] = {}
    for run in runs:
        groups.setdefault(tuple(run.row[f] for f in fields), []).append(run)
    return groups
