"""Aggregates over tasks with rliable: interquartile mean, stratified bootstrap CIs, profiles.

The field's standard for comparing methods over several tasks and a few seeds
(Agarwal et al., "Deep RL at the Edge of the Statistical Precipice", 2021):
the score matrix of a method is runs x cells (a cell is a task and start
factor; a run is a seed), the interquartile mean (IQM) and the mean over all
of it are reported with 95% stratified bootstrap confidence intervals (cells
are the strata), and the performance profile gives the fraction of runs
scoring above each threshold.

Two scores are aggregated: the final validation accuracy (diverged = 0), and
the gain over the static default on the same cell and seed, in accuracy
points, so that easy and hard tasks weigh alike.

rliable is optional (the ``baselines`` extra); without it the section says so.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from agents.evaluation.tables import _table

#: Bootstrap resamples (rliable's default is 50,000; 2,000 keeps reports quick).
BOOTSTRAP_REPS = 2_000
#: Thresholds at which the performance profile is tabulated.
PROFILE_TAUS = (0.5, 0.7, 0.8, 0.9, 0.95)
STATIC = "static"


def score_matrices(
    scores: Mapping[tuple[str, str, float, int], float], methods: Sequence[str]
) -> tuple[dict[str, np.ndarray], list[tuple[str, float]], list[int]]:
    """Per method, a (seeds x cells) matrix of the cells and seeds every method has.

    Args:
        scores: ``(method, task, start_lr_factor, seed) -> score``.
        methods: The methods to aggregate.

    Returns:
        The matrices, the cells (columns) and the seeds (rows).
    """
    keys = {(t, f, s) for (m, t, f, s) in scores if m in methods}
    common = [k for k in sorted(keys) if all((m, *k) in scores for m in methods)]
    cells = sorted({(t, f) for t, f, _ in common})
    seeds = sorted({s for _, _, s in common})
    complete = [(c, s) for c in cells for s in seeds if all((m, *c, s) in scores for m in methods)]
    cells = sorted({c for c, _ in complete})
    seeds = sorted(s for s in seeds if all(((m, *c, s) in scores) for c in cells for m in methods))
    matrices = {
        m: np.array([[scores[(m, *c, s)] for c in cells] for s in seeds], dtype=np.float64)
        for m in methods
    }
    return matrices, cells, seeds


def rliable_section(
    scores: Mapping[tuple[str, str, float, int], float], methods: Sequence[str], seed: int = 0
) -> list[str]:
    """Markdown lines: IQM and mean with CIs, and the performance profile (see module docstring)."""
    matrices, cells, seeds = score_matrices(scores, methods)
    if not cells or len(seeds) < 2:
        return ["## Aggregate over tasks (rliable)", "", "Too few complete cells.", ""]
    gains: dict[str, np.ndarray] = {}
    if STATIC in matrices:
        gains = {m: 100.0 * (x - matrices[STATIC]) for m, x in matrices.items() if m != STATIC}
    note = f"{len(cells)} cells (task x start factor) x {len(seeds)} seeds per method"
    return rliable_lines(matrices, gains, note, seed)


def rliable_lines(
    matrices: Mapping[str, np.ndarray],
    gains: Mapping[str, np.ndarray],
    note: str,
    seed: int = 0,
) -> list[str]:
    """IQM/mean tables with CIs and the performance profile of (runs x cells) score matrices.

    Args:
        matrices: Method -> scores, one row per run, one column per cell (the
            same cells for every method; the number of runs may differ).
        gains: Method -> gains over the static default in points (same shapes),
            or empty.
        note: What the rows and columns are (printed first).
        seed: Seed of the bootstrap.
    """
    try:
        from rliable import library as rly
        from rliable import metrics
    except ImportError as exc:
        return ["## Aggregate over tasks (rliable)", "", f"Not computed: {exc}.", ""]
    lines = [
        "## Aggregate over tasks (rliable)",
        "",
        f"{note}; 95% stratified bootstrap confidence intervals ({BOOTSTRAP_REPS} resamples, "
        "cells as strata). IQM = interquartile mean.",
        "",
    ]

    def aggregate(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)])

    estimates = _estimates(rly, matrices, aggregate, seed)
    gain_estimates = _estimates(rly, gains, aggregate, seed) if gains else {}
    rows = []
    for method in matrices:
        point, interval = estimates[method]
        row = [method, _ci(point[0], interval[:, 0]), _ci(point[1], interval[:, 1])]
        if gain_estimates:
            if method in gain_estimates:
                g_point, g_interval = gain_estimates[method]
                row += [_ci(g_point[0], g_interval[:, 0], 2), _ci(g_point[1], g_interval[:, 1], 2)]
            else:
                row += ["0 (reference)", "0 (reference)"]
        rows.append(row)
    header = ["method", "IQM val acc", "mean val acc"]
    if gain_estimates:
        header += ["IQM gain over static (points)", "mean gain over static (points)"]
    lines += _table(header, rows)
    # the profile's point estimates (rly.create_performance_profile would also bootstrap them)
    profile = {m: rly.score_distributions(x, np.array(PROFILE_TAUS)) for m, x in matrices.items()}
    lines += ["Performance profile: fraction of runs with final val acc > τ.", ""]
    lines += _table(
        ["method", *[f"τ={t:g}" for t in PROFILE_TAUS]],
        [[m, *[f"{v:.2f}" for v in profile[m]]] for m in matrices],
    )
    return lines


def _estimates(
    rly: Any, matrices: Mapping[str, np.ndarray], aggregate: Any, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Point estimates and CIs; each method's resamples drawn from ``seed`` alone.

    rliable's `StratifiedBootstrap` draws its resamples from numpy's global generator
    (a ``random_state`` passed to it is ignored), so the global state is seeded for each
    method and restored afterwards: the same scores give the same intervals, whatever
    ran before and whichever other methods are aggregated.
    """
    estimates = {}
    for method, matrix in matrices.items():
        with _quiet_third_party(), _global_numpy_seed(seed):
            points, intervals = rly.get_interval_estimates(
                {method: matrix}, aggregate, reps=BOOTSTRAP_REPS
            )
        estimates[method] = (points[method], intervals[method])
    return estimates


@contextlib.contextmanager
def _global_numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global generator for the body; put its previous state back after."""
    # rliable draws from the legacy global generator: nothing else can seed it
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


@contextlib.contextmanager
def _quiet_third_party() -> Iterator[None]:
    """Hide rliable's and arch's deprecation notices (about their own code, not the user's)."""
    with warnings.catch_warnings():
        for category in (FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", category=category, module=r"(arch|rliable)(\.|$)")
        yield


def _ci(point: float, interval: np.ndarray, digits: int = 4) -> str:
    return f"{point:.{digits}f} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"
