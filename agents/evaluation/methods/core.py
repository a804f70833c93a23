"""What every baseline shares: one evaluation cell, one result row, the interval runner.

Every method, the frozen policy included, trains the same `TrainingRun` of the
same task, seed and budget, in ``decisions + 1`` intervals (as `HPTuneEnv`
does), and is scored on the same fixed validation subset after every
interval. Search methods (grid, random, Optuna, PBT) spend a multiple of the
budget and report it as ``compute_samples``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from hpenv.hyperparams import DEFAULT_LR, HParams, OptimizerName
from hpenv.plan import EpisodePlan, Fidelity, budget_samples, fidelity_for, plan_episode
from hpenv.tasks import Task, TaskData, get_task
from hpenv.training import EvalStats, IntervalStats, TrainingRun


@dataclass(frozen=True)
class RunSpec:
    """One evaluation cell: a task, a seed, a budget.

    Attributes:
        task: Registered task name.
        seed: Seed of the training run (weights, data order) and of the method.
        fidelity: Subset and budget of the run (default: `hpenv.plan.FIDELITY`
            for the task, else the task's full budget).
        decisions: Decision points over the run (intervals = decisions + 1).
        start_lr_factor: Initial learning rate = the task default x this (1 = default).
        device: Training device.
        data_dir: Local data directory.
        val_size: Validation samples scored per interval (None: as HPTuneEnv).
        optimizer: Train with this optimizer instead of the task's (at its usual
            rate, `hpenv.hyperparams.DEFAULT_LR`, momentum 0.9); None keeps the task's.
        data: Pre-loaded data (tests); loaded from the task when None.
    """

    task: str
    seed: int
    fidelity: Fidelity | None = None
    decisions: int = 20
    start_lr_factor: float = 1.0
    device: str = "cpu"
    data_dir: str | None = None
    val_size: int | None = None
    optimizer: OptimizerName | None = None
    data: TaskData | None = field(default=None, compare=False, repr=False)

    def resolved_task(self) -> Task:
        return get_task(self.task)

    def load_data(self) -> TaskData:
        if self.data is not None:
            return self.data
        fidelity = self.fidelity_or_default()
        return self.resolved_task().load_data(data_dir=self.data_dir, subset=fidelity.subset)

    def fidelity_or_default(self) -> Fidelity:
        return self.fidelity or fidelity_for(self.task)

    def budget(self, data: TaskData) -> int:
        """Training samples of one run."""
        fidelity = self.fidelity_or_default()
        return budget_samples(fidelity, data.train_x.shape[0], self.resolved_task().budget_epochs)

    def plan(self, data: TaskData) -> EpisodePlan:
        """The run's intervals and validation size (`hpenv.plan`, as `HPTuneEnv` plans them)."""
        fidelity = self.fidelity_or_default()
        return plan_episode(
            budget=self.budget(data),
            decisions=self.decisions,
            val_size=self.val_size if self.val_size is not None else fidelity.val_size,
            task_val_size=self.resolved_task().val_size,
        )

    def defaults(self) -> HParams:
        """The task's default hyperparameters, with ``optimizer`` (and its usual rate) if set."""
        base = self.resolved_task().defaults
        if self.optimizer is None or self.optimizer == base.optimizer:
            return base
        return base.replace(optimizer=self.optimizer, lr=DEFAULT_LR[self.optimizer], momentum=0.9)

    def start_hparams(self) -> HParams:
        defaults = self.defaults()
        return defaults.replace(lr=defaults.lr * self.start_lr_factor)


@dataclass
class MethodResult:
    """One row of ``results.csv``: a method's run on one cell.

    Attributes:
        method: Method name.
        task / seed / start_lr_factor: The cell.
        val_loss / val_accuracy: Final validation metrics (NaN if diverged).
        test_accuracy: Final test accuracy where the task has a test split.
        best_val_accuracy: Best validation accuracy after any interval.
        samples: Training samples of the final (reported) run.
        compute_samples: Training samples spent in total (search methods: all trials).
        wall_time: Seconds for the whole method (all trials).
        diverged: The reported run diverged.
        trajectory: Per interval: ``progress``, ``samples``, ``lr`` (and any other
            changed hyperparameter), ``val_loss``, ``val_accuracy``.
        extra: Method-specific details (chosen learning rate, trials, ...).
    """

    method: str
    task: str
    seed: int
    start_lr_factor: float
    val_loss: float
    val_accuracy: float
    test_accuracy: float
    best_val_accuracy: float
    samples: int
    compute_samples: int
    wall_time: float
    diverged: bool
    trajectory: list[dict[str, float]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Method(Protocol):
    """A way to choose hyperparameters: runs one cell, returns its result row."""

    name: str

    def run(self, spec: RunSpec) -> MethodResult: ...


@dataclass
class IntervalReport:
    """What an ``adjust`` callback sees at an interval boundary.

    Attributes:
        progress: Fraction of the budget used.
        run: The training run (its ``hparams`` are the current values).
        stats: The interval's training statistics.
        evaluation: Validation metrics after the interval.
        history: Every point so far (see `MethodResult.trajectory`), the initial
            evaluation first.
        initial: Validation metrics of the untrained model.
    """

    progress: float
    run: TrainingRun
    stats: IntervalStats
    evaluation: EvalStats
    history: list[dict[str, float]]
    initial: EvalStats


#: Called at the end of every interval but the last; returns hyperparameter
#: changes for the next interval (empty: keep).
Adjust = Callable[[IntervalReport], dict[str, Any]]


def run_intervals(
    spec: RunSpec,
    adjust: Adjust | None = None,
    *,
    hparams: HParams | None = None,
    optimizer_factory: Any = None,
    method: str = "",
) -> MethodResult:
    """Train one run of ``spec`` in ``decisions + 1`` intervals, calling ``adjust`` between them.

    Args:
        spec: The cell.
        adjust: Hyperparameter changes at each interval boundary (None: static).
        hparams: Starting hyperparameters (default: ``spec.start_hparams()``).
        optimizer_factory: Passed to `TrainingRun` (hyperparameter-free optimizers).
        method: Name for the result row.
    """
    start = time.perf_counter()
    data = spec.load_data()
    plan = spec.plan(data)
    budget, interval = plan.budget, plan.interval
    task = spec.resolved_task()
    run_kwargs: dict[str, Any] = {}
    if optimizer_factory is not None:
        run_kwargs["optimizer_factory"] = optimizer_factory
    run = TrainingRun(
        task,
        hparams=hparams or spec.start_hparams(),
        seed=spec.seed,
        device=spec.device,
        data=data,
        val_size=plan.val_size,
        **run_kwargs,
    )
    history: list[dict[str, float]] = []
    first = run.evaluate()
    history.append(trajectory_point(0.0, 0, run, first.loss, first.accuracy))
    while run.samples_done < budget and not run.diverged:
        stats = run.train(min(interval, budget - run.samples_done))
        if stats.diverged:
            history.append(trajectory_point(1.0, run.samples_done, run, math.nan, math.nan))
            break
        evaluation = run.evaluate()
        progress = run.samples_done / budget
        history.append(
            trajectory_point(progress, run.samples_done, run, evaluation.loss, evaluation.accuracy)
        )
        if adjust is not None and run.samples_done < budget:
            changes = adjust(IntervalReport(progress, run, stats, evaluation, history, first))
            if changes:
                run.set_hparams(**changes)
    last = history[-1]
    finite = [h["val_accuracy"] for h in history if math.isfinite(h["val_accuracy"])]
    test = math.nan
    if run.data.test_x is not None and not run.diverged:
        test = run.evaluate("test").accuracy
    return MethodResult(
        method=method,
        task=spec.task,
        seed=spec.seed,
        start_lr_factor=spec.start_lr_factor,
        val_loss=last["val_loss"],
        val_accuracy=last["val_accuracy"],
        test_accuracy=test,
        best_val_accuracy=max(finite) if finite else math.nan,
        samples=run.samples_done,
        compute_samples=run.samples_done,
        wall_time=time.perf_counter() - start,
        diverged=run.diverged,
        trajectory=history,
    )


def trajectory_point(
    progress: float, samples: int, run: TrainingRun, val_loss: float, val_accuracy: float
) -> dict[str, float]:
    """One trajectory entry: progress, samples, the run's hyperparameters, validation metrics."""
    hp = run.hparams
    return {
        "progress": progress,
        "samples": samples,
        "lr": hp.lr,
        "momentum": hp.momentum,
        "weight_decay": hp.weight_decay,
        "batch_size": hp.batch_size,
        "val_loss": val_loss,
        "val_accuracy": val_accuracy,
    }
