"""What every baseline shares: one evaluation cell, one result row, the interval runner.

Every method, the frozen policy included, trains the same `TrainingRun` of the
same task, seed and budget, in ``decisions + 1`` intervals (as `HPTuneEnv`
does), and is scored on the same fixed validation subset after every
interval. Search methods (grid, random, Optuna, PBT) spend a multiple of the
budget and report it as ``compute_samples``. A method that trains something of
its own before the first interval (an LR range test) does so in its run's
`Prepare` step, which counts those samples against the same budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from hpenv.hyperparams import HParams, OptimizerName, with_optimizer
from hpenv.plan import EpisodePlan, Fidelity, budget_samples, fidelity_for, plan_episode
from hpenv.probe import ProbeConfig, ProbeResult, probe_population, probe_run
from hpenv.restart import RestartConfig, Restarts
from hpenv.tasks import Task, TaskData, get_task
from hpenv.training import EvalStats, IntervalStats, TrainingRun

if TYPE_CHECKING:
    from hpenv.population import MemberRun


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
        test_from_val: A task without a test split scores on half of its validation
            split, held back from the runs (`hpenv.tasks.TaskData.test_from_val`).
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
    test_from_val: bool = False
    data: TaskData | None = field(default=None, compare=False, repr=False)

    def resolved_task(self) -> Task:
        return get_task(self.task)

    def load_data(self) -> TaskData:
        if self.data is not None:
            return self.data
        fidelity = self.fidelity_or_default()
        return self.resolved_task().load_data(
            data_dir=self.data_dir, subset=fidelity.subset, test_from_val=self.test_from_val
        )

    def fidelity_or_default(self) -> Fidelity:
        return self.fidelity or fidelity_for(self.task)

    def budget(self, data: TaskData) -> int:
        """Training samples of one run."""
        fidelity = self.fidelity_or_default()
        return budget_samples(fidelity, data.train_x.shape[0], self.resolved_task().budget_epochs)

    def plan(
        self, data: TaskData, probe: ProbeConfig | None = None, batch_size: int = 0
    ) -> EpisodePlan:
        """The run's intervals and validation size (`hpenv.plan`, as `HPTuneEnv` plans them);
        with ``probe``, the samples its probe reserves at ``batch_size`` come first."""
        fidelity = self.fidelity_or_default()
        budget = self.budget(data)
        reserved = 0 if probe is None else probe.samples_for(budget, batch_size)
        return plan_episode(
            budget=budget,
            decisions=self.decisions,
            val_size=self.val_size if self.val_size is not None else fidelity.val_size,
            task_val_size=self.resolved_task().val_size,
            probe=reserved,
        )

    def defaults(self) -> HParams:
        """The task's default hyperparameters, with ``optimizer`` (and its usual rate) if set."""
        return with_optimizer(self.resolved_task().defaults, self.optimizer)

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
        run: The training run (its ``hparams`` are the current values): a `TrainingRun`,
            or a `hpenv.population.MemberRun` when the cell trains in a population.
        stats: The interval's training statistics.
        evaluation: Validation metrics after the interval.
        history: Every point so far (see `MethodResult.trajectory`), the initial
            evaluation first.
        initial: Validation metrics of the untrained model.
        plan: The run's plan (budget, probe, intervals, validation size).
        probe: What the run's probe found (None: it had none).
    """

    progress: float
    run: TrainingRun | MemberRun
    stats: IntervalStats
    evaluation: EvalStats
    history: list[dict[str, float]]
    initial: EvalStats
    plan: EpisodePlan
    probe: ProbeResult | None = None


#: Called at the end of every interval but the last; returns hyperparameter
#: changes for the next interval (empty: keep).
Adjust = Callable[[IntervalReport], dict[str, Any]]


#: Called once per run, after the untrained model's evaluation and before the first
#: interval, with the run's `TrainingRun`; returns hyperparameter changes for the
#: first interval (empty: keep). It may train outside the interval loop (an LR range
#: test on `TrainingRun.next_batch`) if it counts every sample it reserved for that
#: against the budget (`TrainingRun.spend`) and leaves the weights it wants trained;
#: the intervals then train the rest of the budget, ``interval`` samples at a time
#: (the last shorter), so the run has fewer boundaries when it spent more than one
#: interval. Every point of the trajectory after the first counts those samples.
Prepare = Callable[[TrainingRun], dict[str, Any]]


#: How `train_runs` trains several runs of one cell group: one `TrainingRun` after
#: another, or all of them as members of one `hpenv.population.Population`.
Engine = Literal["sequential", "population"]


@dataclass
class CellRun:
    """One training run a method asks for on a cell (a search asks for several).

    Attributes:
        spec: The cell (its task, seed, budget and decisions make the run's plan).
        hparams: Starting hyperparameters.
        adjust: Hyperparameter changes at each interval boundary (None: static).
            It may keep state (a policy's driver), so a `CellRun` trains once: ask
            the method for new runs to train a cell again.
        optimizer_factory: Passed to `TrainingRun` (hyperparameter-free
            optimizers); a run with one cannot join a population.
        method: Name for the result row.
        prepare: Its own training before the first interval (see `Prepare`); a run
            with one cannot join a population.
        probe: The probe before the first interval (`hpenv.probe`): the plan
            reserves its samples, the sweep runs on the run (or on every member of
            a population at once, the same sweep) and rolls back; None: no probe.
        after_probe: Called with the `ProbeResult` and the run's plan; returns the
            hyperparameter changes of the first interval (e.g. the base's rate).
        restart: A first interval that blows up starts again from the untrained weights
            (taken before any probe), lower (`hpenv.restart`; a deployed policy's
            setting; with its ``rollback``, a later interval that blows up goes back to
            the run's best state); None: never.
    """

    spec: RunSpec
    hparams: HParams
    adjust: Adjust | None = None
    optimizer_factory: Any = None
    method: str = ""
    prepare: Prepare | None = None
    probe: ProbeConfig | None = None
    after_probe: Callable[[ProbeResult, EpisodePlan], dict[str, Any]] | None = None
    restart: RestartConfig | None = None


class BatchableMethod(Method, Protocol):
    """A method whose cell is a fixed set of `CellRun`s, combined into one row.

    Such a method's runs can train as members of one population together with
    other cells of the same task (`train_runs` with ``engine="population"``);
    ``run(spec)`` is ``result(spec, train_runs(runs(spec)))``.
    """

    def runs(self, spec: RunSpec) -> list[CellRun]:
        """The cell's runs (raises `NotBatchable` when they cannot join a population)."""
        ...

    def result(self, spec: RunSpec, results: list[MethodResult]) -> MethodResult:
        """The cell's row, from its runs' rows (in the order of `runs`)."""
        ...


class NotBatchable(ValueError):
    """A method's runs cannot train as population members (``str()`` says why)."""


def run_intervals(
    spec: RunSpec,
    adjust: Adjust | None = None,
    *,
    hparams: HParams | None = None,
    optimizer_factory: Any = None,
    method: str = "",
    prepare: Prepare | None = None,
) -> MethodResult:
    """Train one run of ``spec`` in ``decisions + 1`` intervals, calling ``adjust`` between them.

    Args:
        spec: The cell.
        adjust: Hyperparameter changes at each interval boundary (None: static).
        hparams: Starting hyperparameters (default: ``spec.start_hparams()``).
        optimizer_factory: Passed to `TrainingRun` (hyperparameter-free optimizers).
        method: Name for the result row.
        prepare: Training of the method's own before the first interval (see `Prepare`).
    """
    run = CellRun(spec, hparams or spec.start_hparams(), adjust, optimizer_factory, method, prepare)
    return train_runs([run])[0]


def train_runs(runs: Sequence[CellRun], engine: Engine = "sequential") -> list[MethodResult]:
    """Train every run in ``decisions + 1`` intervals, calling its ``adjust`` between them.

    ``sequential``: one `TrainingRun` after another. ``population``: all runs as
    members of one `hpenv.population.Population` (one batched step per
    optimizer step), each member adjusted by its own ``adjust`` at every
    boundary, exactly as it would be alone: the rows equal the sequential ones
    to float tolerance. Population runs must share the plan (task, fidelity,
    decisions), the data, the optimizer kind and the batch size, and have no
    ``optimizer_factory`` or ``prepare``; a run's ``wall_time`` is its share of the whole.

    Raises:
        NotBatchable: ``population`` with runs that cannot share one population.
    """
    if engine == "sequential":
        return [_train_group(_SingleRun, [run])[0] for run in runs]
    return _train_group(_PopulationRuns, runs) if runs else []


class _RunGroup(Protocol):
    """The training backend of `_train_group`: one `TrainingRun`, or a population's members."""

    data: TaskData
    plan: EpisodePlan

    def views(self) -> Sequence[Any]:
        """Per run, the object ``adjust`` sees as ``IntervalReport.run``."""
        ...

    def train(self, num_samples: int) -> list[IntervalStats]:
        """Train every run (diverged ones stay as they are) on ``num_samples`` samples."""
        ...

    def evaluate(self, split: str, members: Sequence[int]) -> dict[int, EvalStats]:
        """Scores of ``members`` on ``split`` (the fixed validation subset for ``val``)."""
        ...

    def probe(self, config: ProbeConfig) -> list[ProbeResult]:
        """The probe of every run, rolled back, its reserved samples spent."""
        ...

    def snapshot(self, members: Sequence[int]) -> Any:
        """Weights and optimizer state of ``members`` (what `restore` puts back)."""
        ...

    def restore(self, state: Any, member: int) -> None:
        """Put ``member`` back from a `snapshot` (not diverged after it)."""
        ...

    def spend(self, member: int, samples: int) -> None:
        """Count ``samples`` against ``member``'s budget without training on them."""
        ...


class _SingleRun:
    """One run on its own `TrainingRun` (what `run_intervals` has always trained)."""

    def __init__(self, runs: Sequence[CellRun]) -> None:
        (run,) = runs
        spec = run.spec
        self.data = spec.load_data()
        self.plan = spec.plan(self.data, run.probe, run.hparams.batch_size)
        extra = (
            {} if run.optimizer_factory is None else {"optimizer_factory": run.optimizer_factory}
        )
        self.run = TrainingRun(
            spec.resolved_task(),
            hparams=run.hparams,
            seed=spec.seed,
            device=spec.device,
            data=self.data,
            val_size=self.plan.val_size,
            **extra,
        )

    def views(self) -> list[TrainingRun]:
        return [self.run]

    def train(self, num_samples: int) -> list[IntervalStats]:
        return [self.run.train(num_samples)]

    def evaluate(self, split: str, members: Sequence[int]) -> dict[int, EvalStats]:
        return {0: self.run.evaluate(split)} if members else {}

    def probe(self, config: ProbeConfig) -> list[ProbeResult]:
        batch = min(self.run.hparams.batch_size, self.data.train_x.shape[0])
        return [probe_run(self.run, config, self.plan.probe // batch)]

    def snapshot(self, members: Sequence[int]) -> Any:
        return self.run.weights_state()

    def restore(self, state: Any, member: int) -> None:
        self.run.load_weights_state(state)

    def spend(self, member: int, samples: int) -> None:
        self.run.spend(samples)


class _PopulationRuns:
    """Every run as a member of one population (see `train_runs`)."""

    def __init__(self, runs: Sequence[CellRun]) -> None:
        from hpenv.population import Member, Population

        first = runs[0].spec
        self.data = first.load_data()
        self.plan = first.plan(self.data, runs[0].probe, runs[0].hparams.batch_size)
        for run in runs:
            why = _population_mismatch(run, first, self.plan)
            if not why and run.probe != runs[0].probe:
                why = "a population's runs share the probe (or none of them probes)"
            if why:
                raise NotBatchable(why)
        members = [Member(r.spec.resolved_task(), r.spec.seed, r.hparams, self.data) for r in runs]
        try:
            self.population = Population(members, device=first.device, val_size=self.plan.val_size)
        except ValueError as exc:  # architecture, optimizer or batch size not shared
            raise NotBatchable(str(exc)) from None
        self._views = [self.population.member(i) for i in range(len(runs))]

    def views(self) -> list[Any]:
        return self._views

    def train(self, num_samples: int) -> list[IntervalStats]:
        return self.population.train(num_samples)

    def evaluate(self, split: str, members: Sequence[int]) -> dict[int, EvalStats]:
        if not members:
            return {}
        scores = self.population.evaluate(split)  # all at once: cheaper than a subset copy
        return {i: scores[i] for i in members}

    def probe(self, config: ProbeConfig) -> list[ProbeResult]:
        batch = self.population.batch_size_for_step()
        return probe_population(self.population, config, self.plan.probe // batch)

    def snapshot(self, members: Sequence[int]) -> Any:
        return self.population.weights_state(members)

    def restore(self, state: Any, member: int) -> None:
        self.population.load_weights_state(state, [member])

    def spend(self, member: int, samples: int) -> None:
        self.population.spend(member, samples)


def _population_mismatch(run: CellRun, first: RunSpec, plan: EpisodePlan) -> str:
    """Why ``run`` cannot join a population of ``first``'s cells ('' if it can)."""
    spec = run.spec
    if run.optimizer_factory is not None:
        return f"{run.method or 'the method'} trains with an optimizer of its own"
    if run.prepare is not None:
        return f"{run.method or 'the method'} trains a step of its own before the first interval"
    if (spec.task, spec.device, spec.decisions) != (first.task, first.device, first.decisions):
        return "a population's runs share the task, device and decisions"
    if spec.fidelity_or_default() != first.fidelity_or_default():
        return "a population's runs share the fidelity"
    if spec.val_size != first.val_size:
        return "a population's runs share the validation size"
    return ""


def _train_group(
    backend: Callable[[Sequence[CellRun]], _RunGroup], runs: Sequence[CellRun]
) -> list[MethodResult]:
    """The interval loop of `train_runs`, for every run at once on ``backend(runs)``."""
    start = time.perf_counter()  # the runs' wall time counts loading data and building models
    group = backend(runs)
    plan, views = group.plan, group.views()
    budget, n = plan.budget, len(runs)
    everyone = range(n)
    first = group.evaluate("val", everyone)
    histories = [
        [trajectory_point(0.0, 0, views[i], first[i].loss, first[i].accuracy)] for i in everyone
    ]
    for i in everyone:
        _prepare(runs[i], views[i], budget)
    # A restart goes back to the untrained weights (before any probe: a probe's best point
    # can be a damaged state) and optimizer state.
    restarts = {i: Restarts(r.restart) for i, r in enumerate(runs) if r.restart is not None}
    start_state = group.snapshot(sorted(restarts)) if restarts else None
    probes: list[ProbeResult | None] = [None] * n
    if runs[0].probe is not None and plan.probe:
        probes = list(group.probe(runs[0].probe))
        for i in everyone:
            after, found = runs[i].after_probe, probes[i]
            changes = after(found, plan) if after is not None and found is not None else {}
            if i in restarts:  # no restart if the probe set the rate (hpenv.restart)
                restarts[i].after_probe(views[i].hparams.lr, changes.get("lr"))
            if changes:
                views[i].set_hparams(**changes)
    live = [not views[i].diverged for i in everyone]
    restarted: set[int] = set()  # this interval: back at the start (or best), no decision
    best_state: dict[int, Any] = {}  # with a rollback: each run's state at its best so far

    def put_back(i: int, state: Any, lr: float) -> None:
        """A restart's or a rollback's move: run ``i``'s ``state`` back, its rate set to
        ``lr``, no decision on this interval."""
        group.restore(state, i)
        views[i].set_hparams(lr=lr)
        restarted.add(i)

    def restart(i: int, diverged: bool, loss: float, train_loss: float) -> bool:
        nonlocal start_state
        state = start_state
        if i not in restarts or state is None:
            return False
        restart = restarts[i].after_interval(loss, first[i].loss, diverged, train_loss)
        if all(r.over for r in restarts.values()):
            start_state = None  # no run can restart any more: drop the copy
        if not restart:
            return False
        put_back(i, state, restarts[i].lr(views[i].hparams.lr))
        return True

    def rollback(i: int, diverged: bool, loss: float, train_loss: float) -> bool:
        """A later interval blew up (or collapsed): back to the run's best state
        (`hpenv.restart`)."""
        if i not in best_state or not restarts[i].after_later_interval(
            loss, first[i].loss, diverged, train_loss
        ):
            return False
        put_back(i, best_state[i], restarts[i].rollback_lr())
        return True

    while any(live):
        samples = {budget - views[i].samples_done for i in everyone if live[i]}
        if len(samples) != 1:  # cannot happen: every run follows the same plan
            raise RuntimeError(f"runs out of step: {sorted(samples)} samples left")
        step = min(plan.interval, samples.pop())
        before = {i: views[i].samples_done for i in everyone if live[i]}
        stats = group.train(step)
        restarted.clear()
        for i in everyone:
            diverged = live[i] and stats[i].diverged
            if (
                diverged
                and views[i].samples_done < budget
                and (restart(i, True, math.nan, math.nan) or rollback(i, True, math.nan, math.nan))
            ):
                group.spend(i, before[i] + step - views[i].samples_done)  # the rest is spent
                continue
            if live[i] and stats[i].diverged:
                done = views[i].samples_done
                histories[i].append(trajectory_point(1.0, done, views[i], math.nan, math.nan))
                live[i] = False
        evaluations = group.evaluate("val", [i for i in everyone if live[i]])
        for i, evaluation in evaluations.items():
            view, history = views[i], histories[i]
            progress = view.samples_done / budget
            history.append(
                trajectory_point(
                    progress, view.samples_done, view, evaluation.loss, evaluation.accuracy
                )
            )
            trained_lr = view.hparams.lr
            if view.samples_done >= budget:
                live[i] = False
            elif (
                i in restarted
                or restart(i, False, evaluation.loss, stats[i].loss_mean)
                or rollback(i, False, evaluation.loss, stats[i].loss_mean)
            ):
                pass  # back at the start (or best): no decision on this interval
            elif runs[i].adjust is not None:
                report = IntervalReport(
                    progress, view, stats[i], evaluation, history, first[i], plan, probes[i]
                )
                changes = runs[i].adjust(report)  # type: ignore[misc]
                if changes:
                    view.set_hparams(**changes)
            if (
                live[i]
                and i not in restarted
                and i in restarts
                and restarts[i].new_best(evaluation.loss, trained_lr, first[i].loss)
            ):
                best_state[i] = group.snapshot([i])
    tested = [i for i in everyone if not views[i].diverged] if group.data.test_x is not None else []
    tests = group.evaluate("test", tested)
    share = (time.perf_counter() - start) / n
    results = []
    for i in everyone:
        history, view = histories[i], views[i]
        finite = [h["val_accuracy"] for h in history if math.isfinite(h["val_accuracy"])]
        spec = runs[i].spec
        probe = probes[i]
        extra = {} if probe is None else {"probe": probe_summary(probe, plan, view)}
        results.append(
            MethodResult(
                method=runs[i].method,
                task=spec.task,
                seed=spec.seed,
                start_lr_factor=spec.start_lr_factor,
                val_loss=history[-1]["val_loss"],
                val_accuracy=history[-1]["val_accuracy"],
                test_accuracy=tests[i].accuracy if i in tests else math.nan,
                best_val_accuracy=max(finite) if finite else math.nan,
                samples=view.samples_done,
                compute_samples=view.samples_done,
                wall_time=share,
                diverged=view.diverged,
                trajectory=history,
                extra=extra,
            )
        )
    return results


def probe_summary(probe: ProbeResult, plan: EpisodePlan, run: Any) -> dict[str, Any]:
    """A row's ``extra["probe"]``: the curve (rates and smoothed losses, 4 significant
    digits), its readings, and its cost as a fraction of the run's optimizer steps."""
    batch = max(plan.probe // max(probe.steps, 1), 1)
    budget_steps = plan.budget // batch
    return {
        "lrs": [float(f"{v:.4g}") for v in probe.lrs],
        "smoothed": [float(f"{v:.4g}") for v in probe.smoothed],
        "best_lr": probe.best_lr,
        "divergence_lr": probe.divergence_lr,
        "steps": probe.steps,
        "kept": probe.kept,
        "cost": probe.cost(budget_steps),
        "budget_steps": budget_steps,
        "doubt": probe.doubt(),
    }


def _prepare(run: CellRun, view: Any, budget: int) -> None:
    """Run ``run``'s `Prepare` step (if any) on ``view``, its `TrainingRun`."""
    if run.prepare is None:
        return
    changes = run.prepare(view)
    if changes:
        view.set_hparams(**changes)
    if view.samples_done >= budget:
        raise ValueError(
            f"{run.method or 'the method'}'s step before the first interval spent "
            f"{view.samples_done} of the {budget} samples: nothing is left to train"
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
