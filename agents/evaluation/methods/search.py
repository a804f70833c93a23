"""Search baselines: several full static runs, the best one reported.

Each trial is a whole static run of the cell (same task, seed, budget and
intervals as every other method), from the task's defaults with some
hyperparameters replaced. The search ignores ``spec.start_lr_factor``: it
replaces the starting guess instead of correcting it, so its rows are the same
for every starting factor of a task and seed (the row still records the cell's
factor).

Selection ("best by validation"): the highest final validation accuracy, ties
broken by the lower final validation loss, then by trial order; diverged runs
rank last. The reported row is the chosen trial's row, so its validation
metrics are optimistically biased by the selection (as in practice); its test
accuracy, where the task has a test split, is not. ``compute_samples`` is the
sum of the training samples of all trials and ``wall_time`` the sum of theirs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.evaluation.methods.core import CellRun, MethodResult, RunSpec, train_runs
from hpenv.hyperparams import TUNABLES, HParams


def rank_key(result: MethodResult) -> tuple[float, float]:
    """Larger is better: (final validation accuracy, -final validation loss), diverged last."""
    if result.diverged or not math.isfinite(result.val_accuracy):
        return (-math.inf, -math.inf)
    loss = result.val_loss if math.isfinite(result.val_loss) else math.inf
    return (result.val_accuracy, -loss)


def best_index(results: Sequence[MethodResult]) -> int:
    """Index of the best trial by `rank_key` (the first of equals)."""
    return max(range(len(results)), key=lambda i: rank_key(results[i]))


def search_runs(spec: RunSpec, name: str, configs: Sequence[HParams]) -> list[CellRun]:
    """One static run of ``spec`` per configuration (the data loaded once for all)."""
    spec = dataclasses.replace(spec, data=spec.load_data())
    return [CellRun(spec, hp, None, method=name) for hp in configs]


def select(trials: Sequence[MethodResult]) -> tuple[MethodResult, int]:
    """The reported row of a search and the chosen trial's index (see the module docstring).

    ``compute_samples`` and ``wall_time`` are the sums over all trials.
    """
    chosen = best_index(trials)
    row = dataclasses.replace(
        trials[chosen],
        compute_samples=sum(t.samples for t in trials),
        wall_time=sum(t.wall_time for t in trials),
        extra={},
    )
    return row, chosen


def _summary(result: MethodResult) -> dict[str, Any]:
    return {
        "val_accuracy": result.val_accuracy,
        "val_loss": result.val_loss,
        "test_accuracy": result.test_accuracy,
        "samples": result.samples,
        "diverged": result.diverged,
    }


@dataclass
class GridSearch:
    """``points`` static learning rates, log-spaced around the task default.

    ``lr = default_lr * 10 ** linspace(low_decades, high_decades, points)``;
    everything else stays at the task defaults. The default range, 10^-2 to
    10^1.5 times the default in 8 points, is a half-decade grid (factors of
    sqrt(10) ~ 3.16) that contains the default itself; it reaches further down
    than up because rates much above the default mostly diverge (Adam at 30x its
    usual 1e-3 is already 0.03), while small ones still train, slowly.

    ``extra``: ``grid_lrs``, ``chosen_lr``, ``chosen_index`` and per point
    ``grid_val_accuracy``, ``grid_val_loss``, ``grid_test_accuracy``,
    ``grid_diverged``, ``grid_samples``.
    """

    name: str = "grid"
    points: int = 8
    low_decades: float = -2.0
    high_decades: float = 1.5

    def __post_init__(self) -> None:
        if self.points < 1:
            raise ValueError(f"points must be >= 1, got {self.points}")

    def lrs(self, default_lr: float) -> list[float]:
        exponents = np.linspace(self.low_decades, self.high_decades, self.points)
        return [float(default_lr * 10.0**e) for e in exponents]

    def runs(self, spec: RunSpec) -> list[CellRun]:
        defaults = spec.defaults()
        return search_runs(
            spec, self.name, [defaults.replace(lr=lr) for lr in self.lrs(defaults.lr)]
        )

    def result(self, spec: RunSpec, trials: list[MethodResult]) -> MethodResult:
        lrs = self.lrs(spec.defaults().lr)
        row, chosen = select(trials)
        row.extra = {
            "grid_lrs": lrs,
            "chosen_lr": lrs[chosen],
            "chosen_index": chosen,
            "grid_val_accuracy": [t.val_accuracy for t in trials],
            "grid_val_loss": [t.val_loss for t in trials],
            "grid_test_accuracy": [t.test_accuracy for t in trials],
            "grid_diverged": [t.diverged for t in trials],
            "grid_samples": [t.samples for t in trials],
        }
        return row

    def run(self, spec: RunSpec) -> MethodResult:
        return self.result(spec, train_runs(self.runs(spec)))


#: Default random-search ranges: (low, high) per hyperparameter, on its `TUNABLES`
#: scale. ``lr`` and ``batch_size`` are factors of the task default, the others
#: absolute values.
RANDOM_RANGES: dict[str, tuple[float, float]] = {
    "lr": (1e-2, 10**1.5),  # as GridSearch: default x 10^[-2, 1.5], log-uniform
    "momentum": (0.5, 0.99),  # SGD momentum / Adam beta1; uniform in -ln(1 - m)
    "weight_decay": (1e-6, 1e-2),  # log-uniform; 1e-1 (the TUNABLES top) is extreme for Adam's L2
    "batch_size": (0.25, 4.0),  # default / 4 to x 4, uniform in doublings
    "dropout": (0.0, 0.5),  # uniform; above 0.5 hurts the small models here
}
_RELATIVE = ("lr", "batch_size")


@dataclass
class RandomSearch:
    """``trials`` random static configurations of the ``tuned`` hyperparameters.

    Each tuned value is drawn with ``TUNABLES[name].sample(rng, low, high)``
    (uniform on its scale, clipped to the `TUNABLES` range) over ``ranges``
    (default `RANDOM_RANGES`; ``lr`` and ``batch_size`` relative to the task
    default); untuned ones keep the task defaults. The draws come from
    ``numpy.random.default_rng(spec.seed)``, so a cell's trials are reproducible.

    ``extra``: ``trials`` (per trial its tuned values and final metrics),
    ``chosen`` (the tuned values of the reported trial), ``chosen_lr``,
    ``chosen_index``.
    """

    name: str = "random"
    trials: int = 8
    tuned: tuple[str, ...] = ("lr", "momentum", "weight_decay", "batch_size", "dropout")
    ranges: dict[str, tuple[float, float]] = dataclasses.field(
        default_factory=lambda: dict(RANDOM_RANGES)
    )

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise ValueError(f"trials must be >= 1, got {self.trials}")
        unknown = [n for n in self.tuned if n not in TUNABLES or n not in self.ranges]
        if unknown:
            raise ValueError(
                f"cannot tune {unknown}: tuned names need a TUNABLES entry and a range "
                f"(ranges for {sorted(self.ranges)})"
            )

    def sample(self, defaults: HParams, seed: int) -> list[HParams]:
        """The ``trials`` configurations of a cell with this seed."""
        rng = np.random.default_rng(seed)
        configs = []
        for _ in range(self.trials):
            values: dict[str, Any] = {}
            for name in self.tuned:
                low, high = self.ranges[name]
                if name in _RELATIVE:
                    base = getattr(defaults, name)
                    low, high = low * base, high * base
                values[name] = TUNABLES[name].sample(rng, low, high)
            configs.append(defaults.replace(**values))
        return configs

    def runs(self, spec: RunSpec) -> list[CellRun]:
        return search_runs(spec, self.name, self.sample(spec.defaults(), spec.seed))

    def result(self, spec: RunSpec, trials: list[MethodResult]) -> MethodResult:
        configs = self.sample(spec.defaults(), spec.seed)
        row, chosen = select(trials)
        row.extra = {
            "trials": [
                {**{n: getattr(hp, n) for n in self.tuned}, **_summary(t)}
                for hp, t in zip(configs, trials, strict=True)
            ],
            "chosen": {n: getattr(configs[chosen], n) for n in self.tuned},
            "chosen_lr": configs[chosen].lr,
            "chosen_index": chosen,
        }
        return row

    def run(self, spec: RunSpec) -> MethodResult:
        return self.result(spec, train_runs(self.runs(spec)))
