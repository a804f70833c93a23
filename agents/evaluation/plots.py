"""Learning-curve and learning-rate plots (PNG) and TensorBoard runs of the report."""

from __future__ import annotations

import contextlib
import math
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation.config import POLICY
from agents.evaluation.runs import _group, _ordered, _Run
from agents.evaluation.stats import _float

#: Common progress grid of the plotted and logged learning curves (percent 0..100).
PROGRESS_GRID = np.linspace(0.0, 1.0, 101)


def resample(trajectory: Sequence[Mapping[str, float]], key: str, kind: str) -> np.ndarray:
    """``key`` on `PROGRESS_GRID`: ``linear`` interpolation of the finite points (NaN past
    the last one), or ``step`` (the value of the interval covering each progress)."""
    points = sorted(trajectory, key=lambda p: _float(p.get("progress")))
    progress = np.asarray([_float(p.get("progress")) for p in points])
    values = np.asarray([_float(p.get(key)) for p in points])
    out = np.full(PROGRESS_GRID.shape, np.nan)
    ok = np.isfinite(progress) & np.isfinite(values)
    if not ok.any():
        return out
    progress, values = progress[ok], values[ok]
    if kind == "linear":
        out = np.interp(PROGRESS_GRID, progress, values)
        out[progress[-1] + 1e-9 < PROGRESS_GRID] = np.nan
        return out
    index = np.searchsorted(progress, PROGRESS_GRID - 1e-9, side="left")
    valid = index < len(progress)
    out[valid] = values[index[valid]]
    return out


def _nanmean(matrix: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(matrix, axis=0)


def _curves(runs: Sequence[_Run], key: str, kind: str) -> np.ndarray:
    return np.stack([resample(r.trajectory, key, kind) for r in runs])


def write_plots(out: Path, runs: Sequence[_Run]) -> list[str]:
    """``curves_<task>.png`` and ``lr_<task>.png``; returns their names.

    Nothing is drawn (and nothing returned) without matplotlib.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return []
    names: list[str] = []
    tasks = _ordered(r.row["task"] for r in runs)
    methods = _ordered((r.row["method"] for r in runs), [POLICY])
    x = PROGRESS_GRID * 100
    for task in tasks:
        task_runs = [r for r in runs if r.row["task"] == task]
        starts = sorted({r.row["start_lr_factor"] for r in task_runs})
        groups = _group(task_runs, "start_lr_factor", "method")
        for kind in ("curves", "lr"):
            fig = Figure(figsize=(5.5 * len(starts), 4.2), layout="constrained")
            axes = fig.subplots(1, len(starts), squeeze=False)[0]
            for ax, start in zip(axes, starts, strict=True):
                for method in methods:
                    group = groups.get((start, method), [])
                    if not group:
                        continue
                    style: dict[str, Any] = {"linewidth": 1.2}
                    if method == POLICY:
                        style = {"color": "black", "linewidth": 2.4, "zorder": 3}
                    diverged = sum(bool(r.row["diverged"]) for r in group)
                    label = method + (f" ({diverged} diverged)" if diverged else "")
                    if kind == "curves":
                        mean = _nanmean(_curves(group, "val_accuracy", "linear"))
                        ax.plot(x, mean, label=label, **style)
                    else:
                        logs = np.log10(np.clip(_curves(group, "lr", "step"), 1e-300, None))
                        if method == POLICY:
                            for curve in logs:
                                ax.plot(x, 10**curve, color="black", alpha=0.25, linewidth=0.8)
                        ax.plot(x, 10 ** _nanmean(logs), label=label, **style)
                if kind == "lr":
                    ax.set_yscale("log")
                    ax.set_ylabel("learning rate (geometric mean over seeds)")
                else:
                    ax.set_ylabel("validation accuracy (mean over seeds)")
                ax.set_xlabel("progress (% of the budget)")
                ax.set_title(f"{task}, start lr × {start:g}")
                ax.grid(alpha=0.3)
                ax.legend(fontsize="small")
            name = f"{kind}_{task}.png"
            fig.savefig(out / name, dpi=110)
            names.append(name)
    return names


def write_tensorboard(out: Path, runs: Sequence[_Run]) -> str:
    """``tb/<method>/``: per task, final val accuracy per seed (step = seed) and the mean
    learning curve (step = percent progress). Rewritten from scratch every time."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        return f"not written ({exc})"
    root = out / "tb"
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(root)
    for (method,), group in _group(runs, "method").items():
        writer = SummaryWriter(str(root / method))
        try:
            for (task, start), cell in _group(group, "task", "start_lr_factor").items():
                suffix = "" if start == 1.0 else f"_lr_x{start:g}"
                for run in sorted(cell, key=lambda r: r.row["seed"]):
                    writer.add_scalar(
                        f"{task}/final_val_accuracy{suffix}", run.score, global_step=run.row["seed"]
                    )
                curve = _nanmean(_curves(cell, "val_accuracy", "linear"))
                for percent, value in enumerate(curve):
                    if math.isfinite(value):
                        writer.add_scalar(
                            f"{task}/val_accuracy_curve{suffix}", float(value), global_step=percent
                        )
        finally:
            writer.close()
    return f"`tensorboard --logdir {root}`"
