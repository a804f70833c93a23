"""The restart: a run whose first interval blew up starts again from its start, lower.

A rate far too high damages a model within the first interval (a CNN started 30x too
high: the validation loss 2.3 -> 10 after two optimizer steps), and no later lowering
of the rate undoes it in a short run: the policy's x3 per decision comes too late, and
a run too short for a probe (`hpenv.probe`) has no other warning. So after the first
interval of a run, and after the first interval since a restart, a deployed policy's
run checks its validation loss against the untrained model's: above it by more than
``tolerance`` (or diverged), the weights and optimizer state go back to the untrained
ones the run started with (before any probe: a probe's best point can be a damaged
state), the rate is divided by ``cut``, and the interval's samples stay spent (they
count against the budget, like the probe's). The policy makes no decision on such an
interval: its first decision comes after the first interval that did not blow up. At
most ``most`` restarts per run.

Measured first on training-side tasks (digits, wine, breast cancer, the synthetic task,
45-67 optimizer steps): identical runs where nothing blows up (every start from 0.01x
to 30x), and from 100x too high digits 45 -> 84, the synthetic task 46 -> 70
(docs/measurements/issue23_short_runs.md).

With ``rollback`` on, a later interval that blows up the same way (or diverges) puts back
the state of the run's best validation loss so far, at the rate that interval trained with
/ ``cut``; the interval's samples stay spent, the policy's episode goes on (no decision on
that interval); at most ``most`` rollbacks per run, beside the restarts. Measured first on
training-side tasks (short runs with SGD from 30x: 66.9 -> 87.9, the runs that diverged
come back; full length and Adam: within 0.1; docs/measurements/issue23_fall_hold.md).

With ``collapse`` on too, a later interval also rolls back when the run forgot what it had
learned: its best validation loss was at most ``COLLAPSE_LEARNED`` x the untrained model's, and
now the validation loss and the interval's mean training loss are both back at ``best +
COLLAPSE_UNDONE x (untrained - best)`` or above. A network that collapsed to chance (a CNN with
SGD after a rise of the rate: 1.07 -> 2.30 against 2.31 untrained, its outputs constant) never
climbs above the untrained loss, so the blow-up limit misses it; an overfitting run (the
validation loss climbs back, the training loss stays low) is left alone. Measured first on
training-side tasks (no run collapses there: every row identical), then held out
(docs/measurements/issue23_collapse.md).

A run whose probe set its rate (`hpenv.base.rate_after_probe` moved it: a layout-2 run's
base anchored at the probe's reading, a layout-1 run's probe start) does not restart after
its first interval (`Restarts.after_probe`): the restart is for a run started at the
user's rate with no warning, and after a probe the first interval trains from the weights
the probe kept at the probe's own reading, where a loss above the untrained model's is a
learning run's overconfidence more often than damage (held out, the layout-2 ensembles of
the twenty-sixth session: mnist_rotated's first interval after its probe reached accuracy
0.46 at validation loss 4.0 against 2.3 untrained, and restarted in every cell;
docs/measurements/issue23_layout2_ensemble.md). Its later intervals keep the rollback.

This module holds the rule (`RestartConfig`, `Restarts`); each driver keeps the
snapshot its own way: `agents.evaluation.methods.core` (a `TrainingRun` or a population
member), `agents.deploy.drive` (the job driver) and `agents.deploy.controller`
(`HyperController`, through the optimizer's parameter groups), each before any probe.

Example:
    >>> restarts = Restarts(RestartConfig())
    >>> restarts.after_interval(val_loss=10.0, initial_loss=2.3)  # blew up: restart
    True
    >>> restarts.after_interval(val_loss=2.0, initial_loss=2.3)   # fine: decide as usual
    False
    >>> restarts.after_interval(val_loss=10.0, initial_loss=2.3)  # later intervals: never
    False
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

#: With ``collapse``: an interval collapsed when its validation loss and mean training loss
#: are both back this fraction of the way from the run's best validation loss to the untrained
#: model's ...
COLLAPSE_UNDONE = 0.9
#: ... after a best validation loss at most this fraction of the untrained model's (a run that
#: learned: on a task where the loss barely moves, noise would read as a collapse).
COLLAPSE_LEARNED = 0.8


@dataclass(frozen=True)
class RestartConfig:
    """When a run restarts and how much lower.

    Attributes:
        tolerance: The first interval blew up when its validation loss is above the
            untrained model's x (1 + ``tolerance``), not finite, or the run diverged.
        cut: The rate after a restart is the rate before it / ``cut``.
        most: Restarts per run at most.
        train_loss: Also restart when the interval's mean training loss is above that
            limit (a run that collapsed to chance without its validation loss rising).
        rollback: Also roll a later interval that blew up (validation loss only) back to
            the run's best state (see the module).
        collapse: With ``rollback``, also roll back a later interval that collapsed: its
            validation and training losses both back near the untrained model's (see the
            module).
    """

    tolerance: float = 0.1
    cut: float = 10.0
    most: int = 2
    train_loss: bool = False
    rollback: bool = False
    collapse: bool = False

    def __post_init__(self) -> None:
        for name, value, low in (("tolerance", self.tolerance, 0.0), ("cut", self.cut, 1.0)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not (math.isfinite(value) and value >= low) or (name == "cut" and value == 1):
                bound = "> 1" if name == "cut" else ">= 0"
                raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
        if isinstance(self.most, bool) or not isinstance(self.most, int) or self.most < 1:
            raise ValueError(f"most must be a whole number >= 1, got {self.most!r}")
        for name in ("train_loss", "rollback", "collapse"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.collapse and not self.rollback:
            raise ValueError("collapse rolls a run back: it needs rollback on")

    def to_dict(self) -> dict[str, Any]:
        """Plain values (a policy file's ``deploy`` entry); `from_dict` reads them back.
        ``train_loss``, ``rollback`` and ``collapse`` off are left out (files written before
        they existed read the same)."""
        values = asdict(self)
        for name in ("train_loss", "rollback", "collapse"):
            if not values[name]:
                del values[name]
        return values

    @classmethod
    def from_dict(cls, values: Any) -> RestartConfig:
        """A `RestartConfig` from `to_dict`'s values (checked).

        Raises:
            ValueError: Not a mapping of its fields, or a bad value.
        """
        fields = {"tolerance", "cut", "most", "train_loss", "rollback", "collapse"}
        if not isinstance(values, dict) or set(values) - fields:
            raise ValueError(f"a restart is a mapping of {sorted(fields)}, got {values!r}")
        return cls(**values)


class Restarts:
    """One run's restarts: call `after_interval` after every interval; True: restart now
    (put back the snapshot taken before the run's first interval, divide the rate with
    `lr`, make no decision on this interval)."""

    def __init__(self, config: RestartConfig) -> None:
        self.config = config
        self.count = 0
        self.since = 0  # intervals since the start or the last restart
        self.rollbacks = 0
        self.best = math.inf  # the best validation loss since the start or the last restart
        self.best_lr = math.nan  # the rate its interval trained with
        self.collapsed = False  # the last rollback's cause: a collapse (else a blow-up)

    def after_interval(
        self,
        val_loss: float,
        initial_loss: float,
        diverged: bool = False,
        train_loss: float = math.nan,
    ) -> bool:
        """Whether the interval just trained blew up and the run restarts (see the module);
        ``train_loss``: the interval's mean training loss (read with ``train_loss`` on)."""
        self.since += 1
        if self.count >= self.config.most or self.since != 1:
            return False
        limit = self._limit(initial_loss)
        trained_up = self.config.train_loss and train_loss > limit
        if not diverged and val_loss <= limit and not trained_up:
            return False
        self.count += 1
        self.since = 0
        self.best, self.best_lr = math.inf, math.nan  # a new start: no best state yet
        return True

    @property
    def over(self) -> bool:
        """No restart can come any more (the most were made, or an interval since the start
        or the last restart did not blow up): a driver may drop its copy of the start."""
        return self.count >= self.config.most or self.since >= 1

    def new_best(self, val_loss: float, lr: float, initial_loss: float) -> bool:
        """With ``rollback``: whether the interval just trained (at ``lr``, not rolled back or
        restarted) reached the run's best validation loss so far, below the untrained
        model's; True: keep a copy of the run's state now (what `after_later_interval` puts
        back)."""
        if not self.config.rollback or not math.isfinite(val_loss):
            return False
        if val_loss >= min(self.best, initial_loss):
            return False
        self.best, self.best_lr = float(val_loss), float(lr)
        return True

    def after_later_interval(
        self,
        val_loss: float,
        initial_loss: float,
        diverged: bool,
        train_loss: float = math.nan,
    ) -> bool:
        """With ``rollback``: whether an interval after the first blew up (its validation loss
        above the untrained model's x (1 + ``tolerance``), or diverged), or with ``collapse``
        collapsed (``train_loss``: its mean training loss; see the module), and the run goes
        back to its best state (kept at `new_best`) at `rollback_lr`."""
        if not self.config.rollback or self.rollbacks >= self.config.most:
            return False
        if not math.isfinite(self.best):
            return False  # no best state yet
        blew_up = diverged or val_loss > self._limit(initial_loss)
        collapsed = not blew_up and self._collapsed(val_loss, initial_loss, train_loss)
        if not (blew_up or collapsed):
            return False
        self.rollbacks += 1
        self.collapsed = collapsed
        return True

    def _collapsed(self, val_loss: float, initial_loss: float, train_loss: float) -> bool:
        """With ``collapse``: the run had learned and both losses are back near the untrained
        model's (NaN reads as not: a diverged interval is a blow-up)."""
        if not self.config.collapse or self.best > COLLAPSE_LEARNED * initial_loss:
            return False
        level = self.best + COLLAPSE_UNDONE * (initial_loss - self.best)
        return val_loss >= level and train_loss >= level

    def _limit(self, initial_loss: float) -> float:
        """The loss above which an interval blew up: the untrained model's x (1 +
        ``tolerance``); one limit for the restart and the rollback."""
        return initial_loss * (1 + self.config.tolerance)

    def rollback_lr(self) -> float:
        """The rate after a rollback: the best interval's / ``cut`` (the range's floor at
        least)."""
        return self.lr(self.best_lr)

    def rollback_message(self, val_loss: float, initial_loss: float, lr: float) -> str:
        """What a driver says when its run rolls back (after `after_later_interval`)."""
        how = "collapsed" if self.collapsed else "blew up"
        near = ", back near the" if self.collapsed else " against"
        return (
            f"an interval {how} (validation loss {val_loss:.4g}{near} {initial_loss:.4g} "
            f"untrained): the run goes back to its best state (validation loss "
            f"{self.best:.4g}) at lr {lr:.3g} (rollback {self.rollbacks} of at most "
            f"{self.config.most})"
        )

    def message(self, val_loss: float, initial_loss: float, lr: float) -> str:
        """What a driver says when its run restarts (after `after_interval` said so)."""
        return (
            f"the first interval blew up (validation loss {val_loss:.4g} against "
            f"{initial_loss:.4g} untrained): the run starts again from its untrained weights "
            f"at lr {lr:.3g} (restart {self.count} of at most {self.config.most})"
        )

    def after_probe(self, before: float, after: float | None) -> bool:
        """The run's rate ``before`` its probe and ``after`` it (`hpenv.base.rate_after_probe`;
        None: kept). Where the probe set the rate (moved it), no restart after the first
        interval (see the module; `over` from now on, so a driver may drop its copy of the
        start); rollbacks stay. Call it once the probe is done, before the first interval.
        Returns whether the probe set the rate."""
        if after is None or after == before:
            return False
        self.since = max(self.since, 1)
        return True

    def lr(self, lr: float) -> float:
        """The rate after a restart (the tunable range's floor at least)."""
        from hpenv.hyperparams import TUNABLES

        return float(TUNABLES["lr"].clip(lr / self.config.cut))

    def state_dict(self) -> dict[str, float]:
        return {
            "count": self.count,
            "since": self.since,
            "rollbacks": self.rollbacks,
            "best": self.best,
            "best_lr": self.best_lr,
        }

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.count, self.since = int(state["count"]), int(state["since"])
        self.rollbacks = int(state.get("rollbacks", 0))  # older states: none
        self.best = float(state.get("best", math.inf))
        self.best_lr = float(state.get("best_lr", math.nan))
