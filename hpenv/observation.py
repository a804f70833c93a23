"""Metrics of a training run -> one fixed, task-agnostic, bounded feature vector.

This is the only implementation of the observation: `HPTuneEnv` and the
deployed controller both feed `IntervalMetrics` to a `FeatureTracker`.

Layout version 1 (`OBS_VERSION`); index, name, bounds, meaning. Values are
clipped to the bounds; non-finite values become the bound they overflow to
(NaN becomes 0).

| idx | name | low | high | meaning |
|---|---|---|---|---|
| 0 | progress | 0 | 1 | samples used / budget |
| 1 | train_loss_rel | -10 | 5 | ln(train loss / initial validation loss) |
| 2 | val_loss_rel | -10 | 5 | ln(validation loss / initial validation loss) |
| 3 | train_loss_trend | -3 | 3 | ln(train loss / previous interval's train loss) |
| 4 | val_loss_trend | -3 | 3 | ln(validation loss / previous validation loss) |
| 5 | val_accuracy | 0 | 1 | validation accuracy |
| 6 | val_accuracy_change | -1 | 1 | change of validation accuracy since the last decision |
| 7 | generalisation_gap | -5 | 5 | ln(validation loss / train loss) |
| 8 | grad_norm_rel | -10 | 10 | ln(gradient norm / first interval's gradient norm) |
| 9 | update_ratio | -5 | 4 | log10(update-to-weight ratio) + 3 (1e-3 -> 0) |
| 10 | loss_spread | 0 | 5 | std / mean of the interval's batch losses |
| 11 | since_best_val | 0 | 1 | progress since the best validation loss so far |
| 12 | val_above_best | 0 | 5 | ln(validation loss / best validation loss) |
| 13 | diverged | 0 | 1 | 1 once the run diverged |
| 14 | lr | 0 | 1 | learning rate, position in its log range |
| 15 | momentum | 0 | 1 | momentum / beta1, position on its -ln(1 - m) range |
| 16 | weight_decay | 0 | 1 | weight decay, position in its log range |
| 17 | batch_size | 0 | 1 | batch size, position in its log2 range |
| 18 | dropout | 0 | 1 | dropout, position in its range |
| 19 | lr_vs_initial | -1 | 1 | ln(lr / initial lr) / ln(lr range) |

Every hyperparameter appears (tuned or not), so one layout serves every
configuration; ranges are those of `hpenv.hyperparams.TUNABLES`.

Layout 2 appends the probe's curve and the rate's place against it and the
base schedule (`PROBE_FEATURES`, see `probe_features`). Layout 3 appends one
feature to layout 1 (`OPTIMIZER_FEATURES`): ``optimizer_sgd`` (index 20, 0 or
1), 1 when the run's optimizer is SGD (with momentum), 0 for Adam, AdamW and
every other optimizer (`HParams.optimizer`; a deployed controller reads it off
the optimizer's class), so that one policy can tell the optimizers apart while
its other features stay layout 1's.

`FeatureTracker.reset` takes the untrained model's validation metrics: the
"previous" values of the first interval are those (the train loss before
training is taken to equal the initial validation loss). The environment and
the controller take their first decision after one warm-up interval, so the
first observation an agent sees is already an `FeatureTracker.update`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hpenv.hyperparams import TUNABLES, HParams

if TYPE_CHECKING:
    from hpenv.probe import ProbeResult
    from hpenv.training import EvalStats, IntervalStats

OBS_VERSION = 1


@dataclass(frozen=True)
class Feature:
    name: str
    low: float
    high: float


FEATURES: tuple[Feature, ...] = (
    Feature("progress", 0.0, 1.0),
    Feature("train_loss_rel", -10.0, 5.0),
    Feature("val_loss_rel", -10.0, 5.0),
    Feature("train_loss_trend", -3.0, 3.0),
    Feature("val_loss_trend", -3.0, 3.0),
    Feature("val_accuracy", 0.0, 1.0),
    Feature("val_accuracy_change", -1.0, 1.0),
    Feature("generalisation_gap", -5.0, 5.0),
    Feature("grad_norm_rel", -10.0, 10.0),
    Feature("update_ratio", -5.0, 4.0),
    Feature("loss_spread", 0.0, 5.0),
    Feature("since_best_val", 0.0, 1.0),
    Feature("val_above_best", 0.0, 5.0),
    Feature("diverged", 0.0, 1.0),
    *(Feature(name, 0.0, 1.0) for name in TUNABLES),
    Feature("lr_vs_initial", -1.0, 1.0),
)
OBS_SIZE = len(FEATURES)
OBS_LOW = np.array([f.low for f in FEATURES], dtype=np.float32)
OBS_HIGH = np.array([f.high for f in FEATURES], dtype=np.float32)
INDEX = {f.name: i for i, f in enumerate(FEATURES)}

#: Rates at which layout 2 reads the probe's curve (one feature each).
CURVE_RATES: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
#: Layout 2's features after layout 1's (see `probe_features`).
PROBE_FEATURES: tuple[Feature, ...] = (
    Feature("probe_found", 0.0, 1.0),
    *(Feature(f"curve_{rate:g}", -5.0, 2.0) for rate in CURVE_RATES),
    Feature("probe_depth", -5.0, 0.0),
    Feature("lr_vs_probe_best", -1.0, 1.0),
    Feature("lr_vs_probe_divergence", -1.0, 1.0),
    Feature("lr_vs_probe_steepest", -1.0, 1.0),
    Feature("lr_vs_base", -1.0, 1.0),
    Feature("base_decay", 0.0, 1.0),
)
#: Layout 3's feature after layout 1's: the run's optimizer is SGD (1) or not (0).
OPTIMIZER_FEATURES: tuple[Feature, ...] = (Feature("optimizer_sgd", 0.0, 1.0),)
#: Every observation layout by version: 1 (the run's metrics and hyperparameters),
#: 2 (layout 1, then the probe's curve and the rate's place against it and the base)
#: and 3 (layout 1, then which optimizer the run trains with).
LAYOUTS: dict[int, tuple[Feature, ...]] = {
    1: FEATURES,
    2: FEATURES + PROBE_FEATURES,
    3: FEATURES + OPTIMIZER_FEATURES,
}


def layout_bounds(version: int) -> tuple[np.ndarray, np.ndarray]:
    """The low and high bounds of observation layout ``version``.

    Raises:
        ValueError: An unknown version.
    """
    features = layout(version)
    low = np.array([f.low for f in features], dtype=np.float32)
    high = np.array([f.high for f in features], dtype=np.float32)
    return low, high


def layout(version: int) -> tuple[Feature, ...]:
    """The features of observation layout ``version`` (1, 2 or 3)."""
    if version not in LAYOUTS:
        raise ValueError(f"unknown observation layout {version}; this hpenv has {sorted(LAYOUTS)}")
    return LAYOUTS[version]


@dataclass(frozen=True)
class IntervalMetrics:
    """What was measured over one decision interval (raw, task-scaled values).

    Attributes:
        progress: Fraction of the budget used, in [0, 1].
        train_loss: Mean training loss over the interval.
        train_loss_std: Standard deviation of the interval's batch losses.
        grad_norm: Mean global gradient norm.
        update_ratio: Update-to-weight norm ratio of a recent step.
        val_loss: Validation loss after the interval.
        val_accuracy: Validation accuracy after the interval.
        hparams: Hyperparameters in effect for the next interval.
        base_lr: The base schedule's rate for the next interval, where the rate is
            steered around a base (layout 2); None otherwise.
    """

    progress: float
    train_loss: float
    train_loss_std: float
    grad_norm: float
    update_ratio: float
    val_loss: float
    val_accuracy: float
    hparams: HParams
    base_lr: float | None = None

    @classmethod
    def from_stats(
        cls,
        progress: float,
        stats: IntervalStats,
        evaluation: EvalStats,
        hparams: HParams,
        base_lr: float | None = None,
    ) -> IntervalMetrics:
        """The metrics of one `hpenv.training.TrainingRun` interval and its evaluation."""
        return cls(
            progress=progress,
            train_loss=stats.loss_mean,
            train_loss_std=stats.loss_std,
            grad_norm=stats.grad_norm,
            update_ratio=stats.update_ratio,
            val_loss=evaluation.loss,
            val_accuracy=evaluation.accuracy,
            hparams=hparams,
            base_lr=base_lr,
        )


#: Decades of the probe's default window: log10 distances to its rates are divided by this.
WINDOW_DECADES = 6.0
#: ln of the largest steer away from the base that layout 2 tells apart (x1000).
OFFSET_SPAN = math.log(1000.0)


def probe_features(
    probe: ProbeResult | None, lr: float, base_lr: float | None, anchor: float | None
) -> dict[str, float]:
    """Layout 2's features (`PROBE_FEATURES`), unclipped.

    Args:
        probe: The run's probe (None: the run had none; every probe feature is 0).
        lr: The rate of the next interval.
        base_lr: The base schedule's rate of the next interval (None: no base).
        anchor: The base's starting rate (its value before any decay).

    The curve features are ln(smoothed loss / the sweep's first smoothed loss) at
    `CURVE_RATES`, interpolated over ln(rate); 0 below the sweep's window, and
    beyond where the sweep stopped (or ended), its last value.
    """
    values = {f.name: 0.0 for f in PROBE_FEATURES}
    values["base_decay"] = 1.0
    if base_lr is not None and base_lr > 0 and lr > 0:
        values["lr_vs_base"] = math.log(lr / base_lr) / OFFSET_SPAN
        if anchor is not None and anchor > 0:
            values["base_decay"] = base_lr / anchor
    if probe is None or not probe.found or lr <= 0:
        return values
    curve = zip(probe.lrs, probe.smoothed, strict=True)
    points = [(math.log(r), v) for r, v in curve if math.isfinite(v)]
    start = points[0][1]
    xs = np.array([x for x, _ in points])
    ys = np.array([math.log(max(v, 1e-12) / start) for _, v in points])
    for rate in CURVE_RATES:
        x = math.log(rate)
        values[f"curve_{rate:g}"] = 0.0 if x < xs[0] else float(np.interp(x, xs, ys))
    values["probe_found"] = 1.0
    values["probe_depth"] = math.log(max(probe.smoothed[probe.best], 1e-12) / start)

    def decades(reference: float) -> float:
        return math.log10(lr / reference) / WINDOW_DECADES

    values["lr_vs_probe_best"] = decades(probe.best_lr)
    values["lr_vs_probe_divergence"] = decades(probe.divergence_lr)
    steepest = probe.steepest()
    values["lr_vs_probe_steepest"] = decades(probe.lrs[steepest]) if steepest >= 0 else 0.0
    return values


def _log_ratio(a: float, b: float) -> float:
    if not (a > 0 and b > 0) or not (math.isfinite(a) and math.isfinite(b)):
        return math.inf if a > b or math.isnan(a) else -math.inf
    return math.log(a / b)


@dataclass
class TrackerState:
    """The values a run's features are relative to (see `FeatureTracker`).

    Attributes:
        val_loss0: Validation loss of the untrained model.
        grad_norm0: First finite, positive interval gradient norm (None until seen).
        prev_train / prev_val / prev_acc: The previous interval's metrics.
        best_val: Best validation loss so far; ``best_progress``: when it happened.
        lr0: The initial learning rate.
        diverged: The run diverged.
    """

    val_loss0: float
    prev_train: float
    prev_val: float
    prev_acc: float
    best_val: float
    lr0: float
    grad_norm0: float | None = None
    best_progress: float = 0.0
    diverged: bool = False


class FeatureTracker:
    """Turns a run's successive `IntervalMetrics` into observations (layout above).

    Keeps the few values the features are relative to (`TrackerState`): the
    initial validation loss, the first gradient norm, the previous interval's
    losses, the best validation loss and when it happened, the initial
    learning rate.
    """

    def __init__(self, version: int = OBS_VERSION) -> None:
        self.version = version
        self.features = layout(version)
        self._low, self._high = layout_bounds(version)
        self._state: TrackerState | None = None
        self._last = np.zeros(len(self.features), dtype=np.float32)
        self.probe: ProbeResult | None = None
        self.anchor: float | None = None

    def reset(
        self,
        val_loss: float,
        val_accuracy: float,
        hparams: HParams,
        probe: ProbeResult | None = None,
        anchor: float | None = None,
    ) -> np.ndarray:
        """Start a run from its initial (untrained) validation metrics.

        Args:
            val_loss / val_accuracy: The untrained model's validation metrics.
            hparams: The starting hyperparameters.
            probe: Layout 2: the run's probe (None: it had none).
            anchor: Layout 2: the base schedule's starting rate (None: no base).
        """
        self.probe, self.anchor = probe, anchor
        self._state = TrackerState(
            val_loss0=val_loss,
            prev_train=val_loss,
            prev_val=val_loss,
            prev_acc=val_accuracy,
            best_val=val_loss,
            lr0=hparams.lr,
        )
        values = dict.fromkeys(INDEX, 0.0)
        values["val_accuracy"] = val_accuracy
        values.update(self._hparam_features(hparams))
        values.update(probe_features(probe, hparams.lr, anchor, anchor))
        return self._emit(values)

    def update(self, m: IntervalMetrics) -> np.ndarray:
        """Observation after one interval."""
        s = self._state
        if s is None:
            raise RuntimeError("FeatureTracker.update called before reset")
        if s.grad_norm0 is None and m.grad_norm > 0 and math.isfinite(m.grad_norm):
            s.grad_norm0 = m.grad_norm
        if m.val_loss < s.best_val:
            s.best_val, s.best_progress = m.val_loss, m.progress
        values = {
            "progress": m.progress,
            "train_loss_rel": _log_ratio(m.train_loss, s.val_loss0),
            "val_loss_rel": _log_ratio(m.val_loss, s.val_loss0),
            "train_loss_trend": _log_ratio(m.train_loss, s.prev_train),
            "val_loss_trend": _log_ratio(m.val_loss, s.prev_val),
            "val_accuracy": m.val_accuracy,
            "val_accuracy_change": m.val_accuracy - s.prev_acc,
            "generalisation_gap": _log_ratio(m.val_loss, m.train_loss),
            "grad_norm_rel": _log_ratio(m.grad_norm, s.grad_norm0 or m.grad_norm),
            "update_ratio": math.log10(m.update_ratio) + 3 if m.update_ratio > 0 else -math.inf,
            "loss_spread": m.train_loss_std / m.train_loss if m.train_loss > 0 else 0.0,
            "since_best_val": m.progress - s.best_progress,
            "val_above_best": _log_ratio(m.val_loss, s.best_val),
            "diverged": float(s.diverged),
            **self._hparam_features(m.hparams),
            **probe_features(self.probe, m.hparams.lr, m.base_lr, self.anchor),
        }
        s.prev_train, s.prev_val, s.prev_acc = m.train_loss, m.val_loss, m.val_accuracy
        return self._emit(values)

    def mark_diverged(self) -> np.ndarray:
        """The last observation with the divergence flag set."""
        if self._state is not None:
            self._state.diverged = True
        obs = self._last.copy()
        obs[INDEX["diverged"]] = 1.0  # layout 1's indices are the same in every layout
        self._last = obs
        return obs.copy()

    def state_dict(self) -> dict[str, Any]:
        """Plain values (JSON- and ``weights_only``-safe) to resume with."""
        state = None if self._state is None else dataclasses.asdict(self._state)
        probe = None if self.probe is None else self.probe.to_dict()
        return {"state": state, "last": self._last.tolist(), "probe": probe, "anchor": self.anchor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from hpenv.probe import ProbeResult

        saved = state["state"]
        self._state = None if not saved else TrackerState(**saved)
        self._last = np.asarray(state["last"], dtype=np.float32)
        probe = state.get("probe")
        self.probe = None if probe is None else ProbeResult.from_dict(probe)
        self.anchor = state.get("anchor")

    def _hparam_features(self, hparams: HParams) -> dict[str, float]:
        values = {name: t.normalise(getattr(hparams, name)) for name, t in TUNABLES.items()}
        lr_range = math.log(TUNABLES["lr"].high / TUNABLES["lr"].low)
        lr0 = self._state.lr0 if self._state is not None else hparams.lr
        values["lr_vs_initial"] = (
            math.log(max(hparams.lr, 1e-12) / max(lr0, 1e-12)) / lr_range if lr0 > 0 else 0.0
        )
        values["optimizer_sgd"] = 1.0 if hparams.optimizer == "sgd" else 0.0
        return values

    def _emit(self, values: dict[str, float]) -> np.ndarray:
        raw = np.array([values[f.name] for f in self.features], dtype=np.float64)
        raw = np.nan_to_num(raw, nan=0.0, posinf=np.inf, neginf=-np.inf)
        obs = np.clip(raw, self._low, self._high).astype(np.float32)
        self._last = obs
        return obs.copy()
