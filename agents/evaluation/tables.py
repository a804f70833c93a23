"""Cells and Markdown tables of ``summary.md``."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from agents.evaluation.config import POLICY
from agents.evaluation.records import row_key
from agents.evaluation.runs import _Run
from agents.evaluation.stats import PairedComparison, mean_std


def _p(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.3g}" if value >= 1e-3 else f"{value:.1e}"


def _num(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def machine_info(device: str) -> dict[str, str]:
    info = {
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["device"] = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return info


def _stats_cells(group: Sequence[_Run]) -> list[str]:
    reached = [r.row["samples_to_target"] for r in group]
    n_reached = sum(1 for x in reached if math.isfinite(x))
    return [
        str(len(group)),
        mean_std(r.score for r in group).format(),
        mean_std(r.test_score for r in group).format(),
        mean_std(r.row["best_val_accuracy"] for r in group).format(),
        f"{mean_std(reached).format(0)} ({n_reached}/{len(group)})",
        mean_std(r.row["compute_multiple"] for r in group).format(2),
        str(sum(bool(r.row["diverged"]) for r in group)),
        _num(float(np.mean([r.row["wall_time"] for r in group])), 2),
    ]


def _pairs(
    runs: Sequence[_Run], baseline: str
) -> dict[tuple[str, float], tuple[list[float], list[float]]]:
    """Scores of the policy and ``baseline`` paired by (task, seed, start), per (task, start)."""
    by_key = {row_key(r.row): r for r in runs}
    pairs: dict[tuple[str, float], tuple[list[float], list[float]]] = {}
    for (method, task, seed, start), run in sorted(by_key.items()):
        other = by_key.get((baseline, task, seed, start))
        if method != POLICY or other is None:
            continue
        a, b = pairs.setdefault((task, start), ([], []))
        a.append(run.score)
        b.append(other.score)
    return pairs


def _comparison_cells(comparison: PairedComparison) -> list[str]:
    return [
        str(comparison.n),
        _num(comparison.mean_difference, 4),
        _num(comparison.t_statistic, 2),
        _p(comparison.t_pvalue),
        _num(comparison.wilcoxon_statistic, 1),
        _p(comparison.wilcoxon_pvalue),
        f"{comparison.wins}/{comparison.ties}/{comparison.losses}",
    ]


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return [*lines, ""]
