"""The episode plan: how a training budget becomes intervals, decisions and validation size.

This is the only place the plan is computed. `HPTuneEnv`, the evaluation
harness's methods, the deployed `HyperController` and the population engine
all call it, so "an episode of this task" means the same run everywhere.

A run is split into ``decisions + 1`` intervals: a warm-up interval at the
starting hyperparameters (so that the first decision sees how training goes),
then one interval per decision. A run that probes its learning rate first
(`hpenv.probe`) reserves ``probe`` samples at the start of its budget; its
intervals split the rest. The budget is counted in training samples (or,
for a deployed optimizer, in optimizer steps), so changing the batch size
cannot buy compute.

`Fidelity` is the size of a run of one task (subset, budget, validation
size); `FIDELITY` is the table of CPU-affordable sizes used for
meta-training and by the harness.

Example:
    >>> split_budget(1_000, decisions=20)
    48
    >>> plan = plan_episode(budget=1_000, decisions=4, task_val_size=2_000)
    >>> plan.interval, plan.val_size, plan.intervals
    (200, 256, 5)
    >>> plan_episode(budget=1_100, decisions=4, task_val_size=2_000, probe=100).intervals
    5
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Decisions per episode unless configured otherwise.
DEFAULT_DECISIONS = 20
#: Fewest validation samples scored per decision when the task allows more.
MIN_VAL_SIZE = 256


@dataclass(frozen=True)
class Fidelity:
    """The size of a run of one task; None fields fall back to the next setting.

    Attributes:
        subset: Fraction of the training split to train on.
        budget: Run budget in training samples.
        budget_epochs: Run budget in passes over the (subset) training split.
        val_size: Validation samples scored per decision (caps the default).
    """

    subset: float | None = None
    budget: int | None = None
    budget_epochs: float | None = None
    val_size: int | None = None

    def __post_init__(self) -> None:
        if self.budget is not None and self.budget_epochs is not None:
            raise ValueError(f"give budget or budget_epochs, not both: {self}")
        if self.subset is not None and not 0 < self.subset <= 1:
            raise ValueError(f"subset must be in (0, 1], got {self.subset}")
        if self.budget is not None and not (_is_int(self.budget) and self.budget >= 2):
            raise ValueError(f"budget must be a whole number of samples >= 2, got {self.budget!r}")
        if self.budget_epochs is not None and not (
            math.isfinite(self.budget_epochs) and self.budget_epochs > 0
        ):
            raise ValueError(f"budget_epochs must be > 0, got {self.budget_epochs}")
        if self.val_size is not None and self.val_size < 0:
            raise ValueError(f"val_size must be >= 0, got {self.val_size}")

    @classmethod
    def coerce(cls, value: Fidelity | Mapping[str, Any], task: str = "") -> Fidelity:
        """A `Fidelity`, or a mapping of its fields (``{"subset": 0.5}``) turned into one."""
        if isinstance(value, Fidelity):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {f.name for f in dataclasses.fields(cls)}
            if unknown:
                raise ValueError(
                    f"fidelity{f' of {task!r}' if task else ''}: unknown fields {sorted(unknown)}; "
                    "use subset, budget, budget_epochs, val_size"
                )
            return cls(**value)
        raise ValueError(
            f"fidelity{f' of {task!r}' if task else ''} must be a Fidelity or a mapping of its "
            f"fields, got {value!r}"
        )

    def over(self, fallback: Fidelity) -> Fidelity:
        """This fidelity, with ``fallback``'s values where this one says nothing.

        A budget given here (in samples or epochs) replaces both of ``fallback``'s.
        """
        has_budget = self.budget is not None or self.budget_epochs is not None
        return Fidelity(
            subset=self.subset if self.subset is not None else fallback.subset,
            budget=self.budget if has_budget else fallback.budget,
            budget_epochs=self.budget_epochs if has_budget else fallback.budget_epochs,
            val_size=self.val_size if self.val_size is not None else fallback.val_size,
        )


#: CPU-affordable run sizes per task (a few seconds per episode on 2 cores):
#: meta-training's suite and the evaluation harness's default cells.
FIDELITY: dict[str, Fidelity] = {
    "digits": Fidelity(budget_epochs=20),
    "digits_rotated": Fidelity(budget_epochs=20),  # training-side variants: as their task
    "digits_noisy": Fidelity(budget_epochs=20),
    "mnist": Fidelity(subset=0.5, budget_epochs=6),
    "fashion_mnist": Fidelity(subset=0.05, budget_epochs=4),
    # An LSTM over 200 tokens costs ~5 ms per sample on a CPU core: keep IMDB small.
    "imdb": Fidelity(subset=0.2, budget_epochs=1, val_size=64),
    "ag_news": Fidelity(subset=0.02, budget_epochs=2),
    "trec": Fidelity(subset=0.5, budget_epochs=5),
    "cifar10": Fidelity(subset=0.05, budget_epochs=3),
    # The held-out suite (hpenv.tasks.registry.HELDOUT_TASKS): 3-8 s per run on one core.
    "mnist_cnn": Fidelity(subset=0.25, budget_epochs=2),
    "mnist_rotated": Fidelity(subset=0.5, budget_epochs=4),
    "mnist_noisy": Fidelity(subset=0.5, budget_epochs=8),
    "imdb_conv": Fidelity(subset=0.5, budget_epochs=3, val_size=500),
    "digits_cnn": Fidelity(budget_epochs=10),
}


def fidelity_for(task: str, table: Mapping[str, Fidelity] | None = None) -> Fidelity:
    """The run size of ``task`` in ``table`` (default `FIDELITY`); empty if not listed."""
    return (FIDELITY if table is None else table).get(task, Fidelity())


def split_budget(budget: int, decisions: int, interval: int | None = None) -> int:
    """Interval length (in the budget's unit) of a run of ``decisions`` decisions.

    ``ceil(budget / (decisions + 1))`` unless ``interval`` is given, and never
    more than half the budget (so that at least one decision happens).

    Raises:
        ValueError: ``budget < 2``, ``decisions < 1`` or ``interval < 1``.
    """
    if not (_is_int(budget) and budget >= 2):
        raise ValueError(f"the budget must be a whole number >= 2 (samples or steps), got {budget}")
    check_schedule(decisions, interval)
    if interval is None and budget < decisions + 1:
        raise ValueError(
            f"a budget of {budget} cannot be split into {decisions} decisions plus the warm-up "
            f"interval: lower decisions to at most {budget - 1} or raise the budget"
        )
    size = interval if interval is not None else -(-budget // (decisions + 1))
    return max(1, min(size, budget // 2))


def check_schedule(decisions: int, interval: int | None = None) -> None:
    """Refuse a number of decisions or an interval length that no budget can use.

    Raises:
        ValueError: ``decisions`` is not a whole number >= 1, or ``interval``
            (when given) is not a whole number >= 1.
    """
    if not (_is_int(decisions) and decisions >= 1):
        raise ValueError(f"decisions must be a whole number >= 1, got {decisions!r}")
    if interval is not None and not (_is_int(interval) and interval >= 1):
        raise ValueError(f"interval must be a whole number >= 1, got {interval!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def budget_samples(fidelity: Fidelity, n_train: int, default_epochs: float) -> int:
    """A run's budget in training samples: the fidelity's, else ``default_epochs`` passes."""
    if fidelity.budget is not None:
        return fidelity.budget
    epochs = default_epochs if fidelity.budget_epochs is None else fidelity.budget_epochs
    return max(2, round(epochs * n_train))


@dataclass(frozen=True)
class EpisodePlan:
    """One run's schedule.

    Attributes:
        budget: Training samples of the whole run.
        interval: Training samples per interval (the last may be shorter).
        decisions: Decision points (one after each interval but the last).
        val_size: Validation samples scored after each interval.
        probe: Training samples reserved for the probe before the warm-up (0: none).
    """

    budget: int
    interval: int
    decisions: int
    val_size: int
    probe: int = 0

    @property
    def intervals(self) -> int:
        """Intervals in the run after its probe: the warm-up plus one per decision."""
        return -(-(self.budget - self.probe) // self.interval)

    def rejoin(self, intervals_done: int) -> EpisodePlan:
        """The plan of a run that starts after this one trained ``intervals_done`` intervals.

        The new run makes its own probe (if this run has one) and warm-up interval
        at once, then follows this run's remaining intervals and ends with it: same
        interval length, validation size and probe, a budget of the probe, one
        interval and what remains of this one. (A population member restarted
        mid-run, see `agents.metatrain.population_vec`.)

        >>> EpisodePlan(budget=1_000, interval=200, decisions=4, val_size=256).rejoin(2)
        EpisodePlan(budget=800, interval=200, decisions=3, val_size=256, probe=0)
        >>> EpisodePlan(budget=1_100, interval=200, decisions=4, val_size=256, probe=100).rejoin(2)
        EpisodePlan(budget=900, interval=200, decisions=3, val_size=256, probe=100)

        Raises:
            ValueError: Nothing of this run remains after ``intervals_done`` intervals.
        """
        remaining = self.budget - self.probe - intervals_done * self.interval
        if intervals_done < 1 or remaining < 1:
            raise ValueError(
                f"cannot rejoin a run of {self.intervals} intervals after {intervals_done}"
            )
        return EpisodePlan(
            budget=self.probe + self.interval + remaining,
            interval=self.interval,
            decisions=-(-remaining // self.interval),
            val_size=self.val_size,
            probe=self.probe,
        )


def plan_episode(
    *,
    budget: int,
    decisions: int = DEFAULT_DECISIONS,
    interval: int | None = None,
    val_size: int | None = None,
    task_val_size: int,
    probe: int = 0,
) -> EpisodePlan:
    """The plan of a run of ``budget`` samples.

    Args:
        budget: Training samples (see `budget_samples`).
        decisions: Decisions per run.
        interval: Samples per interval, overriding the split of the budget.
        val_size: Validation samples per decision; default
            ``min(task_val_size, max(interval, MIN_VAL_SIZE))``, so short
            intervals are not dominated by their evaluation.
        task_val_size: The task's own default validation size.
        probe: Samples reserved for the probe (`hpenv.probe.ProbeConfig.samples_for`);
            the intervals split ``budget - probe``.

    Raises:
        ValueError: A probe that leaves less than two samples, or the errors of
            `split_budget`.
    """
    if not 0 <= probe <= budget - 2:
        raise ValueError(f"a probe of {probe} samples does not fit a budget of {budget}")
    size = split_budget(budget - probe, decisions, interval)
    if val_size is None:
        val_size = min(task_val_size, max(size, MIN_VAL_SIZE))
    return EpisodePlan(
        budget=budget, interval=size, decisions=decisions, val_size=val_size, probe=probe
    )
