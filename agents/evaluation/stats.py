"""Statistics of the evaluation: pure functions of scores and trajectories.

Scores are final validation accuracies (0 for a diverged or non-finite run,
see `final_score`); the policy is compared with a baseline on paired runs
(`paired_comparison`: paired t-test, Wilcoxon signed-rank test, win/tie/loss).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

#: |policy - baseline| below this is a tie.
TIE_TOLERANCE = 1e-4


def _float(value: Any) -> float:
    if value is None or value == "":
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation (``ddof=1``) of the finite values."""

    n: int
    mean: float
    std: float

    def format(self, digits: int = 4) -> str:
        if self.n == 0:
            return "n/a"
        if math.isnan(self.std):
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


def mean_std(values: Iterable[float]) -> Spread:
    """`Spread` of the finite values (NaN mean with none, NaN std with fewer than two)."""
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return Spread(0, math.nan, math.nan)
    std = float(x.std(ddof=1)) if x.size > 1 else math.nan
    return Spread(int(x.size), float(x.mean()), std)


def final_score(val_accuracy: float, diverged: bool) -> float:
    """Final validation accuracy as compared: 0 for a diverged or non-finite run."""
    return 0.0 if diverged or not math.isfinite(val_accuracy) else float(val_accuracy)


def win_tie_loss(
    policy: ArrayLike, baseline: ArrayLike, tolerance: float = TIE_TOLERANCE
) -> tuple[int, int, int]:
    """Counts of ``d = policy - baseline``: win ``d >= tol``, tie ``|d| < tol``, loss ``d <= -tol``.

    ``tol`` is `TIE_TOLERANCE` (1e-4) unless given.
    """
    d = np.asarray(policy, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    wins = int((d >= tolerance).sum())
    losses = int((d <= -tolerance).sum())
    return wins, len(d) - wins - losses, losses


@dataclass(frozen=True)
class PairedComparison:
    """The policy against one baseline on paired runs (``d = policy - baseline``)."""

    n: int
    mean_difference: float
    t_statistic: float
    t_pvalue: float
    wilcoxon_statistic: float
    wilcoxon_pvalue: float
    wins: int
    ties: int
    losses: int


def paired_comparison(
    policy: ArrayLike, baseline: ArrayLike, tolerance: float = TIE_TOLERANCE
) -> PairedComparison:
    """Paired t-test, Wilcoxon signed-rank test and win/tie/loss of two paired samples.

    - t-test: `scipy.stats.ttest_rel` (two-sided); NaN with fewer than two
      pairs; t = 0, p = 1 when every difference is exactly zero (scipy gives
      NaN); constant non-zero differences give scipy's t = ±inf, p = 0.
    - Wilcoxon: `scipy.stats.wilcoxon` (two-sided, ``zero_method="wilcox"``:
      zero differences are discarded; W = the smaller of the positive and
      negative rank sums); W = 0, p = 1 when every difference is zero; NaN
      without pairs.
    - win/tie/loss: see `win_tie_loss`.
    """
    from scipy import stats

    a = np.asarray(policy, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired samples need equal 1-d shapes, got {a.shape} and {b.shape}")
    n = int(a.size)
    wins, ties, losses = win_tie_loss(a, b, tolerance)
    if n == 0:
        nan = math.nan
        return PairedComparison(0, nan, nan, nan, nan, nan, 0, 0, 0)
    d = a - b
    all_zero = bool(np.all(d == 0))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if n < 2:
            t, t_p = math.nan, math.nan
        elif all_zero:
            t, t_p = 0.0, 1.0
        else:
            result = stats.ttest_rel(a, b)
            t, t_p = float(result.statistic), float(result.pvalue)
        if all_zero:
            w, w_p = 0.0, 1.0
        else:
            w_result = stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
            w, w_p = float(w_result.statistic), float(w_result.pvalue)
    return PairedComparison(n, float(d.mean()), t, t_p, w, w_p, wins, ties, losses)


def seed_bootstrap_interval(
    mine: np.ndarray,
    reference: np.ndarray,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Bootstrap interval of the mean difference between two recipes, meta-seeds resampled.

    ``mine`` and ``reference`` are (meta-training seeds x cells) score matrices over the
    same cells (NaN: a seed did not run that cell). Each resample draws each recipe's
    meta-seeds with replacement, independently (different recipes' seeds are not
    paired), and the cells with replacement, the same cells for both (the cells are
    paired); the difference is the mean over the drawn cells of each recipe's mean over
    its drawn seeds. A Wilcoxon test over cells averaged over seeds treats the seeds'
    draw as fixed; this interval includes it, the spread a user sees between two
    meta-training runs of one recipe.
    """
    a, b = np.asarray(mine, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or 0 in a.shape + b.shape:
        raise ValueError(
            f"need (seeds x cells) matrices over the same cells, got {a.shape}, {b.shape}"
        )
    rng = np.random.default_rng(seed)
    cells = rng.integers(a.shape[1], size=(resamples, a.shape[1]))

    def means(x: np.ndarray) -> np.ndarray:
        seeds = rng.integers(x.shape[0], size=(resamples, x.shape[0]))
        drawn = x[seeds]  # (resamples, seeds, cells)
        per_cell = np.nanmean(drawn, axis=1)
        return np.nanmean(np.take_along_axis(per_cell, cells, axis=1), axis=1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a cell no drawn seed ran
        differences = means(a) - means(b)
    tail = (1.0 - level) / 2.0
    low, high = np.nanquantile(differences, [tail, 1.0 - tail])
    return float(low), float(high)


def samples_to_target(trajectory: Sequence[Mapping[str, Any]], target: float) -> float:
    """``samples`` of the first point whose ``val_accuracy >= target``.

    NaN if no point reaches it or the target is NaN.
    """
    if not math.isfinite(target):
        return math.nan
    for point in trajectory:
        accuracy = _float(point.get("val_accuracy"))
        if math.isfinite(accuracy) and accuracy >= target:
            return _float(point.get("samples"))
    return math.nan


def mean_log10_lr(trajectory: Sequence[Mapping[str, Any]]) -> float:
    """Mean log10 learning rate over the intervals trained, weighted by their samples.

    Point ``k >= 1`` of a trajectory carries the learning rate that trained
    interval ``k`` (from point ``k-1``'s samples to its own); point 0 is the
    untrained model. Equal weights if no interval has samples.
    """
    if len(trajectory) < 2:
        lrs = [_float(p.get("lr")) for p in trajectory]
        finite = [math.log10(x) for x in lrs if math.isfinite(x) and x > 0]
        return float(np.mean(finite)) if finite else math.nan
    logs, weights = [], []
    for before, point in itertools.pairwise(trajectory):
        lr = _float(point.get("lr"))
        if not (math.isfinite(lr) and lr > 0):
            continue
        logs.append(math.log10(lr))
        weights.append(max(0.0, _float(point.get("samples")) - _float(before.get("samples"))))
    if not logs:
        return math.nan
    w = np.asarray(weights)
    if not np.isfinite(w).all() or w.sum() <= 0:
        w = np.ones(len(logs))
    return float(np.average(logs, weights=w))


def lr_log10_distance(trajectory: Sequence[Mapping[str, Any]], chosen_lr: float) -> float:
    """``|mean_log10_lr(trajectory) - log10(chosen_lr)|`` (NaN without a positive ``chosen_lr``)."""
    if not (math.isfinite(chosen_lr) and chosen_lr > 0):
        return math.nan
    return abs(mean_log10_lr(trajectory) - math.log10(chosen_lr))
