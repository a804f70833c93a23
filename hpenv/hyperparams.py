"""The tunable hyperparameters of a training run.

`HParams` holds the values a `TrainingRun` trains with. Everything but the
optimizer's kind can change between any two training intervals.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from gymnasium import spaces

from hpenv.errors import InputError

OptimizerName = Literal["sgd", "adam", "adamw"]
OPTIMIZERS: tuple[OptimizerName, ...] = typing.get_args(OptimizerName)
#: A usual starting learning rate of each optimizer (SGD with momentum 0.9, the Adam family).
DEFAULT_LR: dict[str, float] = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3}
#: How actions change hyperparameters: a Box(-1, 1) entry each, or 0/1/2 (down/keep/up).
ActionMode = Literal["continuous", "discrete"]
ACTION_MODES: tuple[ActionMode, ...] = typing.get_args(ActionMode)


@dataclass(frozen=True)
class HParams:
    """Hyperparameter values of one training run.

    Attributes:
        optimizer: ``"sgd"`` (with momentum), ``"adam"`` or ``"adamw"``. Fixed for a run.
        lr: Learning rate.
        momentum: SGD momentum, or beta1 for the Adam family.
        weight_decay: L2 penalty (SGD, Adam) or decoupled decay (AdamW).
        batch_size: Samples per optimizer step.
        dropout: Drop probability of every dropout layer of the model.
        grad_clip: Maximum global gradient norm; ``None`` disables clipping.
    """

    optimizer: OptimizerName = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 128
    dropout: float = 0.0
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        _check(math.isfinite(self.lr) and self.lr >= 0, "lr", self.lr, "a finite value >= 0")
        _check(0 <= self.momentum < 1, "momentum", self.momentum, "in [0, 1)")
        _check(
            math.isfinite(self.weight_decay) and self.weight_decay >= 0,
            "weight_decay",
            self.weight_decay,
            "a finite value >= 0",
        )
        _check(
            isinstance(self.batch_size, int) and self.batch_size >= 1,
            "batch_size",
            self.batch_size,
            "an int >= 1",
        )
        _check(0 <= self.dropout < 1, "dropout", self.dropout, "in [0, 1)")
        if self.grad_clip is not None:
            _check(self.grad_clip > 0, "grad_clip", self.grad_clip, "> 0 or None")

    def replace(self, **changes: Any) -> HParams:
        """Return a copy with ``changes`` applied (validated)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown hyperparameters {sorted(unknown)}; known: {FIELDS}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (every field is a scalar: no deep copy needed)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(HParams))


def with_optimizer(defaults: HParams, optimizer: OptimizerName | None) -> HParams:
    """A task's ``defaults`` trained with ``optimizer`` instead (None: unchanged): at that
    optimizer's usual rate (`DEFAULT_LR`) and momentum 0.9, unless it is the task's own."""
    if optimizer is None or optimizer == defaults.optimizer:
        return defaults
    return defaults.replace(optimizer=optimizer, lr=DEFAULT_LR[optimizer], momentum=0.9)


def _check(ok: bool, name: str, value: object, expected: str) -> None:
    if not ok:
        raise ValueError(f"hyperparameter {name} must be {expected}, got {value!r}")


# ----------------------------------------------------------------- tunable ranges

Scale = Literal["log", "log1m", "linear", "pow2"]


@dataclass(frozen=True)
class Tunable:
    """A tunable hyperparameter: its range, the scale it moves on, and its step limit.

    Values move in a transformed space where equal steps mean equal relative
    changes: ``log`` (learning rate, weight decay), ``log1m`` (momentum, through
    ``-ln(1 - m)``, so 0.9 -> 0.99 is one step like 0.99 -> 0.999), ``pow2``
    (batch size, in doublings) and ``linear`` (dropout, where 0 matters and no
    multiplicative change reaches it).

    Attributes:
        name: `HParams` field.
        low / high: Range; every change is clipped to it.
        scale: Transform, as above.
        max_step: Largest change per decision in transformed units: ``ln`` of the
            factor for ``log``/``log1m``, doublings for ``pow2``, absolute for ``linear``.
    """

    name: str
    low: float
    high: float
    scale: Scale
    max_step: float

    def transform(self, value: float) -> float:
        if self.scale == "log":
            return math.log(value)
        if self.scale == "log1m":
            return -math.log1p(-value)
        if self.scale == "pow2":
            return math.log2(value)
        return value

    def inverse(self, t: float) -> float:
        if self.scale == "log":
            return math.exp(t)
        if self.scale == "log1m":
            return -math.expm1(-t)
        if self.scale == "pow2":
            return float(2 ** round(t))
        return t

    def clip(self, value: float) -> float:
        return min(max(value, self.low), self.high)

    def normalise(self, value: float) -> float:
        """Position of ``value`` in the range on the transformed scale, in [0, 1]."""
        lo, hi = self.transform(self.low), self.transform(self.high)
        return min(max((self.transform(self.clip(value)) - lo) / (hi - lo), 0.0), 1.0)

    def step(self, value: float, action: float) -> float | int:
        """Move ``value`` by ``action`` in [-1, 1] times ``max_step``, clipped to the range.

        Batch size changes only in whole doublings, rounded half away from zero:
        |action| < 0.5 keeps it, 0.5 <= |action| doubles or halves it, whatever
        the current size.
        """
        move = max(-1.0, min(1.0, action)) * self.max_step
        if self.scale == "pow2":
            move = math.copysign(math.floor(abs(move) + 0.5), move)
        t = self.transform(self.clip(value)) + move
        return self.cast(self.clip(self.inverse(t)))

    def sample(self, rng: Any, low: float, high: float) -> float | int:
        """Draw uniformly on this scale between ``low`` and ``high`` (clipped to the range)."""
        t = rng.uniform(self.transform(self.clip(low)), self.transform(self.clip(high)))
        return self.cast(self.clip(self.inverse(float(t))))

    def cast(self, value: float) -> float | int:
        return int(value) if self.scale == "pow2" else float(value)


#: Every hyperparameter an agent can tune, in observation order.
TUNABLES: dict[str, Tunable] = {
    t.name: t
    for t in (
        Tunable("lr", 1e-6, 1.0, "log", math.log(3.0)),
        Tunable("momentum", 0.0, 0.999, "log1m", math.log(2.0)),
        Tunable("weight_decay", 1e-6, 1e-1, "log", math.log(3.0)),
        Tunable("batch_size", 8, 1024, "pow2", 1.0),
        Tunable("dropout", 0.0, 0.8, "linear", 0.1),
    )
}


def tunable(name: str) -> Tunable:
    """The `Tunable` called ``name``; an unknown name lists the known ones."""
    try:
        return TUNABLES[name]
    except KeyError:
        raise InputError(
            f"cannot tune {name!r}; tunable hyperparameters: {', '.join(TUNABLES)}"
        ) from None


def check_tuned(names: Sequence[str]) -> tuple[Tunable, ...]:
    """The `Tunable` of each name in ``names``: at least one, none twice, every one known.

    Raises:
        InputError: Naming what is wrong (an unknown name lists the known ones).
    """
    if not names:
        raise InputError("tuned must name at least one hyperparameter")
    if len(set(names)) != len(names):
        raise InputError(f"tuned lists a hyperparameter twice: {tuple(names)}")
    return tuple(tunable(name) for name in names)


def action_space(size: int, action_mode: ActionMode) -> spaces.Box | spaces.MultiDiscrete:
    """The action space for ``size`` tuned hyperparameters (the env's and a policy's)."""
    if action_mode not in ACTION_MODES:
        raise ValueError(f"action_mode must be one of {ACTION_MODES}, not {action_mode!r}")
    if action_mode == "continuous":
        return spaces.Box(-1.0, 1.0, shape=(size,), dtype=np.float32)
    return spaces.MultiDiscrete([3] * size)


def decode_action(tuned: Sequence[str], action_mode: ActionMode, action: Any) -> np.ndarray:
    """One agent action as values in [-1, 1] per tuned hyperparameter (checked).

    ``continuous`` values are clipped by each `Tunable.step`; ``discrete`` 0/1/2
    become -1/0/+1.

    Raises:
        ValueError: Wrong length, NaN, or an invalid discrete choice.
    """
    values = np.asarray(action, dtype=np.float64).reshape(-1)
    if values.shape != (len(tuned),):
        raise ValueError(f"action must have {len(tuned)} entries ({tuned}), got {values.shape}")
    if np.isnan(values).any():
        raise ValueError(f"action contains NaN: {action!r}; the policy produced an invalid action")
    if action_mode == "discrete":
        if not np.isin(values, (0, 1, 2)).all():
            raise ValueError(
                f"discrete actions are 0 (decrease), 1 (keep), 2 (increase); got {action!r}"
            )
        values = values - 1.0
    return values


def apply_action(
    tuned: Sequence[str], action_mode: ActionMode, action: Any, hparams: HParams
) -> HParams:
    """The hyperparameters after one agent action (the environment and controller share this).

    Each tuned hyperparameter moves from its current value (`Tunable.step`); a
    layout-2 policy's rate moves around its base instead (`hpenv.base.apply_residual`).

    Args:
        tuned: Names of the tuned hyperparameters, in action order.
        action_mode: ``"continuous"`` (values in [-1, 1], clipped) or ``"discrete"``
            (0 decrease, 1 keep, 2 increase, each by the maximum step).
        action: One value per tuned hyperparameter.
        hparams: Current values.

    Raises:
        ValueError: Wrong length, NaN, or an invalid discrete choice.
    """
    values = decode_action(tuned, action_mode, action)
    changes = {
        name: tunable(name).step(getattr(hparams, name), float(a))
        for name, a in zip(tuned, values, strict=True)
    }
    return hparams.replace(**changes)


def _rate_slot(
    tuned: Sequence[str], action_mode: ActionMode, action: Any
) -> tuple[np.ndarray, int | None, float]:
    """What the rate guards (`RiseGuard`, `FallHold`) read of a raw action: its values as
    floats, the rate's index among them (None: no rate tuned, or a wrong length, which is
    `apply_action`'s error) and the value that keeps the rate (``keep``)."""
    values = np.array(action, dtype=np.float64).reshape(-1)
    if "lr" not in tuned or values.shape != (len(tuned),):
        return values, None, 0.0
    return values, list(tuned).index("lr"), 1.0 if action_mode == "discrete" else 0.0


class RiseGuard:
    """No further rise of the learning rate until the validation loss improves.

    A rate action that raises the rate (a positive value; discrete ``2``) records
    the validation loss it was decided on. Until a later decision sees a lower
    validation loss, every rate action is held at ``keep`` or below (a continuous
    value clipped to <= 0, a discrete ``2`` becomes ``1``); the other tuned
    hyperparameters are untouched. A first improvement frees the rate again.

    Collapse is what it guards against (docs/results.md section 7): a policy
    that raises the rate x3 per decision while the loss climbs, until the model
    sits at chance without diverging. The guard lets it climb as long as the
    loss improves (a run started 100x too low) and stops the climb at the first
    rise that did not help. One instance per run: `hpenv.episode.Episode` holds
    one in meta-training (`hpenv.episode_config.EpisodeConfig.rise_guard`), and
    `agents.policy.step.PolicyStep` one when deployed, so a policy meets the
    rule it was trained under.

    Example:
        >>> guard = RiseGuard()
        >>> guard.filter(("lr",), "continuous", [0.8], val_loss=1.0).tolist()  # a rise
        [0.8]
        >>> guard.filter(("lr",), "continuous", [0.5], val_loss=1.2).tolist()  # no better
        [0.0]
        >>> guard.filter(("lr",), "continuous", [0.5], val_loss=0.9).tolist()  # improved
        [0.5]
    """

    def __init__(self) -> None:
        self.loss_at_rise: float | None = None
        self.held = 0

    @staticmethod
    def check_steer_mode(steer_mode: str | None) -> None:
        """Refuse a guard over actions that set the rate's offset rather than move it.

        Raises:
            InputError: ``steer_mode`` is ``absolute`` (`hpenv.base.BaseConfig.steer_mode`):
                there a positive action is an offset above the base, not a rise, so holding
                it would snap the rate to the base.
        """
        if steer_mode == "absolute":
            raise InputError(
                "the rise guard holds actions that raise the rate; with steer_mode 'absolute' "
                "an action sets the offset from the base instead: use steer_mode 'increment' "
                "or no rise guard"
            )

    def reset(self) -> None:
        """Start a run: no rise yet."""
        self.loss_at_rise = None
        self.held = 0

    def filter(
        self, tuned: Sequence[str], action_mode: ActionMode, action: Any, val_loss: float
    ) -> np.ndarray:
        """``action`` (raw, as the policy gave it) with a held rise turned into ``keep``.

        Args:
            tuned: Names of the tuned hyperparameters, in action order.
            action_mode: How ``action`` is written (``continuous`` or ``discrete``).
            action: One value per tuned hyperparameter.
            val_loss: The validation loss the decision is taken on (NaN never improves).
        """
        values, i, keep = _rate_slot(tuned, action_mode, action)
        if i is None:
            return values
        if self.loss_at_rise is not None and val_loss < self.loss_at_rise:
            self.loss_at_rise = None  # improved since the last rise: free again
        if values[i] > keep:
            if self.loss_at_rise is not None:
                values[i] = keep
                self.held += 1
            else:
                self.loss_at_rise = float(val_loss)
        return values

    def state_dict(self) -> dict[str, Any]:
        return {"loss_at_rise": self.loss_at_rise, "held": self.held}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        loss = state.get("loss_at_rise")
        self.loss_at_rise = None if loss is None else float(loss)
        self.held = int(state.get("held", 0))


#: `FallHold`'s default ``threshold``: a new best validation loss at least 1% below the last.
FALL_HOLD_THRESHOLD = 0.01


class FallHold:
    """No fall of the learning rate below the run's start while training still improves.

    A rate action that lowers the rate (a negative value; discrete ``0``) is held at
    ``keep`` when the validation loss it is decided on is a new best, below the best so far
    (the untrained model's loss at first) by more than ``threshold`` (in ln), and the rate is
    at or below the rate the run started with (the user's, or a restart's lowered one).
    Above its start the policy lowers freely: a rate it raised itself, or a start too high,
    is never kept by the hold. Other tuned hyperparameters are untouched.

    What it is for (docs/measurements/issue23_fall_hold.md): a layout-1 policy anneals the
    rate in the second half of every run, about x0.6 per decision, whatever the loss does.
    On a run that is still learning fast (SGD, short budgets) that stops it early: digits
    with SGD in 45 steps ends at 50% against 74% at the constant rate. A deployment rule
    like `RiseGuard` (the policy was not trained with it); `agents.policy.step.PolicyStep`
    holds one per run when the policy's file says so (`PolicyMetadata.fall_hold`).

    Example:
        >>> hold = FallHold()
        >>> hold.reset(val_loss=2.3, lr=0.05)
        >>> hold.filter(("lr",), "continuous", [-0.5], val_loss=2.0, lr=0.05).tolist()
        [0.0]
        >>> hold.filter(("lr",), "continuous", [-0.5], val_loss=2.0, lr=0.05).tolist()  # no best
        [-0.5]
        >>> hold.filter(("lr",), "continuous", [-0.5], val_loss=1.5, lr=0.1).tolist()  # > start
        [-0.5]
    """

    def __init__(self, threshold: float = FALL_HOLD_THRESHOLD) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ValueError(f"the fall hold's threshold must be a number, got {threshold!r}")
        if not (math.isfinite(threshold) and threshold >= 0):
            raise ValueError(f"the fall hold's threshold must be finite and >= 0, got {threshold}")
        self.threshold = float(threshold)
        self.best = math.inf
        self.start_lr = math.inf
        self.held = 0

    def reset(self, val_loss: float, lr: float) -> None:
        """Start a run (or a restart of it): the untrained model's validation loss is the best
        so far, ``lr`` the rate the run starts at. ``held`` counts on over a restart."""
        self.best = float(val_loss) if math.isfinite(val_loss) else math.inf
        self.start_lr = float(lr)

    def filter(
        self,
        tuned: Sequence[str],
        action_mode: ActionMode,
        action: Any,
        val_loss: float,
        lr: float,
    ) -> np.ndarray:
        """``action`` with a held fall of the rate turned into ``keep``.

        Args:
            tuned: Names of the tuned hyperparameters, in action order.
            action_mode: How ``action`` is written (``continuous`` or ``discrete``).
            action: One value per tuned hyperparameter (after the rise guard, if any).
            val_loss: The validation loss the decision is taken on (NaN never improves).
            lr: The rate the decision is taken at.
        """
        values, i, keep = _rate_slot(tuned, action_mode, action)
        best = self.best
        if math.isfinite(val_loss):
            self.best = min(self.best, float(val_loss))
        if i is None:
            return values
        new_best = (
            math.isfinite(best)
            and best > 0
            and math.isfinite(val_loss)
            and val_loss > 0
            and math.log(best / val_loss) > self.threshold
        )
        if values[i] < keep and new_best and lr <= self.start_lr * (1 + 1e-9):
            values[i] = keep
            self.held += 1
        return values

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "start_lr": self.start_lr, "held": self.held}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.start_lr = float(state["best"]), float(state["start_lr"])
        self.held = int(state.get("held", 0))
