"""One episode's bookkeeping: training statistics in, observations, rewards and infos out.

This is the only implementation of an episode's sequencing: `HPTuneEnv` and
`agents.metatrain.population_vec.PopulationVecEnv` (one `Episode` per member) both feed
it the statistics of their training backend (a `TrainingRun`, or one member
of a `hpenv.population.Population`), so the warm-up, the divergence rules,
the reward and the info keys are the same everywhere.

The life of an episode: `Episode` is created from the untrained model's
validation metrics, `Episode.warmup` takes the warm-up interval (the first
observation), then `Episode.step` takes one interval per decision until the
budget is spent (truncation) or the run diverges (termination). If the run
diverged in the warm-up, the first step is `Episode.end_without_training`
(reward 0: the agent had no say).

`draw_initial_hparams` is the starting state's random draw (`Around` ranges
relative to the task default, ``(low, high)`` ranges, fixed values).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpenv.base import BaseSchedule
from hpenv.errors import InputError
from hpenv.hyperparams import (
    ActionMode,
    FallHold,
    HParams,
    RiseGuard,
    Tunable,
    tunable,
    with_optimizer,
)
from hpenv.observation import FeatureTracker, IntervalMetrics
from hpenv.plan import EpisodePlan
from hpenv.probe import ProbeResult
from hpenv.rewards import OOM_PENALTY, Reward
from hpenv.tasks import Task
from hpenv.training import EvalStats, IntervalStats

#: What `Episode.step` returns: observation, reward, terminated, truncated, info.
StepResult = tuple[np.ndarray, float, bool, bool, dict[str, Any]]


@dataclass(frozen=True)
class Around:
    """Initial range relative to the task's default: [default / below, default * above].

    Values are drawn uniformly on the hyperparameter's scale (log-uniform for lr).
    """

    below: float = 10.0
    above: float = 10.0

    def __post_init__(self) -> None:
        if self.below < 1 or self.above < 1:
            raise ValueError(f"Around factors must be >= 1, got {self}")


InitialValue = float | tuple[float, float] | Around
DEFAULT_INITIAL: Mapping[str, InitialValue] = {"lr": Around(10.0, 10.0)}


def check_initial(initial: Mapping[str, InitialValue], what: str = "initial") -> None:
    """Known names; fixed values and ranges inside the hyperparameter's range (no silent clip).

    Raises:
        InputError: ``initial`` is not a mapping, or names or values are wrong
            (``what`` names the argument in the message).
    """
    if not isinstance(initial, Mapping):
        raise InputError(
            f"{what} must map hyperparameter names to values, e.g. {{'lr': 0.01}}; got {initial!r}"
        )
    for name, spec in initial.items():
        t = tunable(name)
        if isinstance(spec, Around):
            continue  # relative to the task default: the drawn value is clipped to the range
        values = spec if isinstance(spec, tuple) else (spec,)
        for value in values:
            if not t.low <= float(value) <= t.high:
                raise ValueError(
                    f"initial {name}={value!r} is outside its range [{t.low:g}, {t.high:g}]; "
                    "give a value inside it"
                )


def draw_initial_hparams(
    task: Task,
    rng: np.random.Generator,
    initial: Mapping[str, InitialValue],
    tuned: Sequence[Tunable],
    optimizer: str | None = None,
) -> HParams:
    """An episode's starting hyperparameters: the task's defaults, with ``initial`` drawn.

    Args:
        task: Its defaults are the starting point.
        rng: The episode's generator (draws in the order of ``initial``).
        initial: Hyperparameter -> fixed value, ``(low, high)`` range or `Around`.
        tuned: The tuned hyperparameters; their values are clipped into range.
        optimizer: Replaces the task's optimizer kind when given (at its usual rate and
            momentum 0.9, `hpenv.hyperparams.with_optimizer`: the defaults the ranges of
            ``initial`` are relative to).
    """
    hparams = with_optimizer(task.defaults, optimizer)  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for name, spec in initial.items():
        t = tunable(name)
        if isinstance(spec, Around):
            default = getattr(hparams, name)
            values[name] = t.sample(rng, default / spec.below, default * spec.above)
        elif isinstance(spec, tuple):
            values[name] = t.sample(rng, *spec)
        else:
            values[name] = t.cast(spec)
    for t in tuned:  # tuned values start inside their range
        values[t.name] = t.cast(t.clip(values.get(t.name, getattr(hparams, t.name))))
    return hparams.replace(**values)


class Episode:
    """The features, reward, history and info of one run (see the module docstring).

    Args:
        task: The task trained (for the ``task`` info key).
        plan: The run's plan (budget, interval).
        features: The observation tracker (reset here).
        reward: The reward function (reset at the warm-up).
        hparams: The starting hyperparameters (for a run with a base: the base's, after
            the probe).
        initial: The untrained model's validation metrics.
        probe: What the run's probe found (layout 2; None: it had none).
        base: The base schedule the rate is steered around (layout 2; None: layout 1).
        rise_guard: Hold the rate's rises until the validation loss improves
            (`hpenv.hyperparams.RiseGuard`; `guard_action` applies it).
        fall_hold: Hold the rate's falls below ``hparams``'s rate while the validation
            loss improves by more than this (`hpenv.hyperparams.FallHold`, the deployed
            policy's rule; `guard_action` applies it after the rise guard). None: none.
    """

    def __init__(
        self,
        task: Task,
        plan: EpisodePlan,
        features: FeatureTracker,
        reward: Reward,
        hparams: HParams,
        initial: EvalStats,
        probe: ProbeResult | None = None,
        base: BaseSchedule | None = None,
        rise_guard: bool = False,
        fall_hold: float | None = None,
    ) -> None:
        self.task, self.plan = task, plan
        self.guard = RiseGuard() if rise_guard else None
        self.fall_hold = None if fall_hold is None else FallHold(fall_hold)
        if self.fall_hold is not None:  # as `agents.policy.step.PolicyStep.start`
            self.fall_hold.reset(initial.loss, hparams.lr)
        self.features, self.reward = features, reward
        self.initial = initial
        self.probe, self.base = probe, base
        self.timer = {"start": time.perf_counter() - initial.wall_time, "train": 0.0}
        self.timer["eval"] = initial.wall_time
        anchor = None if base is None else base.anchor
        features.reset(initial.loss, initial.accuracy, hparams, probe=probe, anchor=anchor)
        self.history: list[dict[str, Any]] = [
            {"progress": 0.0, "train_loss": math.nan, "val_loss": initial.loss,
             "val_accuracy": initial.accuracy, "hparams": hparams.to_dict()}
        ]  # fmt: skip
        self.warmup_diverged = False
        self.last_reward = 0.0
        self.done = False
        self._hparams = hparams
        self._samples = 0

    @property
    def budget(self) -> int:
        return self.plan.budget

    def next_samples(self, samples_done: int) -> int:
        """Samples of the next interval (the last one completes the budget)."""
        return min(self.plan.interval, self.plan.budget - samples_done)

    def warmup(
        self, stats: IntervalStats, evaluation: EvalStats | None, hparams: HParams
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """The first observation and info, from the warm-up interval (``reset``'s return;
        with a base its ``base_lr``, with a probe what it found)."""
        info = self._record(stats, evaluation, hparams)
        self.warmup_diverged = info["diverged"]
        if self.warmup_diverged:
            obs = self.features.mark_diverged()
            self.reward.reset(self.initial.loss, self.initial.accuracy)
        else:
            assert evaluation is not None
            obs = self._observe(stats, evaluation, hparams)
            self.reward.reset(evaluation.loss, evaluation.accuracy)
        info["initial_val_loss"] = self.initial.loss
        info["initial_val_accuracy"] = self.initial.accuracy
        if self.base is not None:
            info["base_lr"] = self.base.anchor
        if self.probe is not None:
            probe = self.probe
            info["probe"] = {"best_lr": probe.best_lr, "steps": probe.steps, "kept": probe.kept}
        self.last_reward = 0.0
        return obs, info

    def end_without_training(self) -> StepResult:
        """The first step of a run that diverged in its warm-up: it ends, reward 0."""
        self.done = True
        info = {**self._history_info(), "diverged": True, **self.timings()}
        self.last_reward = 0.0
        return self.features.mark_diverged(), 0.0, True, False, info

    def guard_action(self, tuned: Sequence[str], action_mode: ActionMode, action: Any) -> Any:
        """The agent's ``action`` after the run's rise guard and fall hold (as given without
        them), decided on the last interval's validation loss and rate, in the order
        `agents.policy.step.PolicyStep.decide` applies them."""
        val_loss = self.history[-1]["val_loss"]
        if self.guard is not None:
            action = self.guard.filter(tuned, action_mode, action, val_loss)
        if self.fall_hold is not None:
            action = self.fall_hold.filter(tuned, action_mode, action, val_loss, self._hparams.lr)
        return action

    def base_lr(self, samples_done: int) -> float | None:
        """The base's rate for the interval that starts after ``samples_done`` (None: no base)."""
        return None if self.base is None else self.base.lr(samples_done / self.plan.budget)

    def step(
        self,
        stats: IntervalStats,
        evaluation: EvalStats | None,
        hparams: HParams,
        max_loss: float,
        reference: float | None = None,
    ) -> StepResult:
        """One decision's result, from the interval trained after it.

        Args:
            stats: The interval's training statistics.
            evaluation: Validation metrics after it (None when training diverged).
            hparams: The hyperparameters the interval trained with.
            max_loss: The run's divergence threshold (the worst loss of the reward).
            reference: The reference run's validation loss after the same interval
                (a paired reward; NaN if the reference diverged).
        """
        info = self._record(stats, evaluation, hparams)
        diverged = info["diverged"]
        truncated = not diverged and stats.samples_done >= self.plan.budget
        if diverged:
            obs = self.features.mark_diverged()
            reward = self.reward.diverged(worst_loss=max_loss)
        else:
            assert evaluation is not None
            obs = self._observe(stats, evaluation, hparams)
            reward = self.reward.step(
                evaluation.loss, evaluation.accuracy, last=truncated, reference=reference
            )
        if stats.oom:  # the batch size the agent chose did not fit: reverted, and penalised
            reward -= OOM_PENALTY
        self.done = diverged or truncated
        if self.done:
            info.update(self.timings())
        self.last_reward = reward
        return obs, float(reward), diverged, truncated, info

    def timings(self) -> dict[str, float]:
        """Seconds spent in the whole episode, in training, in evaluation."""
        return {
            "wall_time": time.perf_counter() - self.timer["start"],
            "train_time": self.timer["train"],
            "eval_time": self.timer["eval"],
        }

    def render_text(self, tuned: Sequence[str]) -> str:
        """One line: task, progress, tuned values, latest losses and reward."""
        last = self.history[-1]
        hp = last["hparams"]
        values = " ".join(f"{n}={hp[n]:.3g}" for n in tuned)
        return (
            f"{self.task.name}/{self.task.model} {100 * last['progress']:5.1f}% {values} "
            f"train={last['train_loss']:.4f} val={last['val_loss']:.4f} "
            f"acc={last['val_accuracy']:.4f} reward={self.last_reward:+.4f}"
        )

    # ---------------------------------------------------------------- internals

    def _record(
        self, stats: IntervalStats, evaluation: EvalStats | None, hparams: HParams
    ) -> dict[str, Any]:
        self.timer["train"] += stats.wall_time
        if evaluation is not None:
            self.timer["eval"] += evaluation.wall_time
        self._hparams, self._samples = hparams, stats.samples_done
        diverged = evaluation is None or not math.isfinite(evaluation.loss)
        self.history.append(
            {"progress": stats.samples_done / self.plan.budget, "train_loss": stats.loss_mean,
             "val_loss": evaluation.loss if evaluation else math.nan,
             "val_accuracy": evaluation.accuracy if evaluation else math.nan,
             "hparams": hparams.to_dict()}
        )  # fmt: skip
        return {
            **self._history_info(),
            "train_loss": stats.loss_mean,
            "train_loss_std": stats.loss_std,
            "grad_norm": stats.grad_norm,
            "update_ratio": stats.update_ratio,
            "diverged": diverged,
            "oom": stats.oom,
        }

    def _history_info(self) -> dict[str, Any]:
        last = self.history[-1]
        return {
            "task": f"{self.task.name}/{self.task.model}",
            "hparams": self._hparams.to_dict(),
            "samples": self._samples,
            "budget": self.plan.budget,
            "val_loss": last["val_loss"],
            "val_accuracy": last["val_accuracy"],
        }

    def _observe(self, stats: IntervalStats, evaluation: EvalStats, hparams: HParams) -> np.ndarray:
        progress = stats.samples_done / self.plan.budget
        base_lr = self.base_lr(stats.samples_done)
        return self.features.update(
            IntervalMetrics.from_stats(progress, stats, evaluation, hparams, base_lr=base_lr)
        )
