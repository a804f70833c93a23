"""Population Based Training (Ray Tune) as a baseline on the harness's cells.

``population`` members train the cell's task and seed at once, each from the
task defaults with its own learning rate, drawn log-uniformly in
``default x 10 ** lr_decades`` (default 10^-2 to 10^1.5, the range of the
grid and random searches) by ``random.Random(spec.seed)``. Like the other
search baselines, PBT ignores ``spec.start_lr_factor``.

Each member is a Ray Tune function trainable (`pbt_member`) wrapping one
`TrainingRun`: it trains one interval (the same ``decisions + 1`` intervals
as every method) per `ray.tune.report`, and every ``checkpoint_interval``
intervals (and after the last) it saves a checkpoint, `TrainingRun.state_dict`
(model, optimizer state, hyperparameters, data order, RNG) plus the lineage's
trajectory, ``torch.save``-d into the checkpoint directory.
`ray.tune.schedulers.PopulationBasedTraining` (asynchronous, ``synch=False``:
synchronous mode is known to leave trials paused) runs with
``perturbation_interval = checkpoint_interval`` on the lineage's interval
count: at a boundary, a member in the bottom quantile restarts from a top
member's latest checkpoint (exploit: `TrainingRun.load_state_dict`) with a
perturbed learning rate (explore: x1.2 or x0.8, or resampled from the range
with probability ``resample_probability``; optionally momentum too), clipped
to the range. One deviation from plain Ray PBT (``clone_behind=False``): a
member only clones a donor whose latest checkpoint is at least as far as
itself. Asynchronous PBT compares scores of different times, and with members
out of step (Ray pauses every member while another waits to restart) a member
would otherwise clone the same stale checkpoint again and again, retraining
the same intervals; on a noisy tiny cell that cost up to 5x the nominal
compute.

Scoring: members are ranked by the validation accuracy after the interval
(minus 1e-6 x the validation loss, to break ties); a diverged member scores
-1 and keeps reporting (training nothing) until it is replaced.

The reported row is the member with the best final validation accuracy (ties:
lower loss): its lineage's trajectory, i.e. validation metrics and
hyperparameters per interval across exploits (the donor's history up to the
exploit, then its own). ``compute_samples`` is the samples all members
actually trained (copies cost nothing): at most population x budget
(``extra["nominal_compute"]``), less when a member clones a donor that is
intervals ahead of it. A member's last report ends it (a stopper), so nobody
is exploited after the last interval.

PBT is not bit-reproducible: exploits depend on the order in which members
report, and Ray's explore step draws from Python's global RNG in the driver.
All members share the cell's seed (weights, data order): they differ in
hyperparameters only, like the trials of the other search methods.

Ray runs locally (`agents.cluster.ray_session`: ``num_cpus``, no dashboard,
worker logs not forwarded, Ray's own logging at ERROR) unless the caller has initialised it
already (then it is reused and not shut down: a harness running many cells
should ``ray.init`` once to pay the start-up once). Members get one CPU each
and ``torch.set_num_threads(1)``; Tune's storage is a temporary directory,
removed afterwards. Ray is imported inside `PBT.run` only
(``pip install "ray[tune]"``). Overhead measured on a busy 2-core CPU machine:
``ray.init`` ~8 s, Tune start/teardown and worker start-up ~15 s more per
`PBT.run` (``extra["ray_init_time"]``, ``extra["tune_fit_time"]`` and
``extra["train_time"]`` report it per run).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import random
import shutil
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from agents.evaluation.methods.core import MethodResult, RunSpec, trajectory_point
from agents.evaluation.methods.search import RANDOM_RANGES
from hpenv.io import safe_torch_load
from hpenv.tasks import TaskData
from hpenv.training import TrainingRun

CHECKPOINT_FILE = "run.pt"
#: Momentum range when ``mutate_momentum`` (as `agents.evaluation.methods.search.RANDOM_RANGES`).
MOMENTUM_RANGE: tuple[float, float] = RANDOM_RANGES["momentum"]
#: Score of a diverged member (below any accuracy).
DIVERGED_SCORE = -1.0


@dataclass
class PBT:
    """Population Based Training of the cell's run with Ray Tune.

    Attributes:
        population: Members trained at once.
        checkpoint_interval: Intervals between checkpoints, also the PBT
            ``perturbation_interval`` (1: exploit/explore at every boundary).
        lr_decades: Learning-rate range, in decades around the task default:
            initial values are drawn log-uniformly in it (seeded by the cell's
            seed), resamples too, and perturbed values are clipped to it.
        mutate_momentum: Also perturb momentum (uniform in [0.5, 0.99]).
        quantile_fraction: PBT's bottom/top quantile.
        resample_probability: Chance that explore resamples instead of scaling.
        perturbation_factors: Explore scale factors.
        burn_in: Intervals before the first perturbation.
        clone_behind: Let a member clone a donor whose latest checkpoint is
            behind it (Ray's plain behaviour). Off by default: with members
            out of step, a member can then clone the same stale checkpoint
            again and again, retraining the same intervals (seen here: up to
            5x the nominal compute on a noisy tiny cell).
        num_cpus: CPUs given to ``ray.init`` (None: Ray detects them). Ignored
            when Ray is already initialised (then it is not shut down either).
        cpus_per_member / gpus_per_member: Ray resources of each member (set
            ``gpus_per_member`` for a CUDA ``spec.device``, e.g. 1 / population).
        name: Method name of the result rows.
    """

    population: int = 4
    checkpoint_interval: int = 2
    lr_decades: tuple[float, float] = (-2.0, 1.5)
    mutate_momentum: bool = False
    quantile_fraction: float = 0.25
    resample_probability: float = 0.25
    perturbation_factors: tuple[float, float] = (1.2, 0.8)
    burn_in: int = 0
    clone_behind: bool = False
    num_cpus: int | None = 2
    cpus_per_member: float = 1.0
    gpus_per_member: float = 0.0
    name: str = "pbt"

    def __post_init__(self) -> None:
        if self.population < 2:
            raise ValueError(f"population must be >= 2, got {self.population}")
        if self.checkpoint_interval < 1:
            raise ValueError(f"checkpoint_interval must be >= 1, got {self.checkpoint_interval}")
        if self.lr_decades[0] >= self.lr_decades[1]:
            raise ValueError(f"lr_decades must be (low, high), got {self.lr_decades}")

    def run(self, spec: RunSpec) -> MethodResult:
        from ray import tune

        start = time.perf_counter()
        if torch.device(spec.device).type == "cuda" and self.gpus_per_member <= 0:
            raise ValueError("PBT on CUDA needs gpus_per_member > 0 (e.g. 1 / population)")
        data = spec.load_data()
        plan = spec.plan(data)
        base = spec.defaults()
        lr_range = tuple(base.lr * 10.0**d for d in self.lr_decades)
        rng = random.Random(spec.seed)
        initial_lrs = [
            math.exp(rng.uniform(math.log(lr_range[0]), math.log(lr_range[1])))
            for _ in range(self.population)
        ]
        setup = {
            "spec": dataclasses.replace(spec, data=None),
            "data": data,
            "budget": plan.budget,
            "interval": plan.interval,
            "checkpoint_interval": self.checkpoint_interval,
        }
        trainable = tune.with_resources(
            tune.with_parameters(pbt_member, setup=setup),
            {"cpu": self.cpus_per_member, "gpu": self.gpus_per_member},
        )
        param_space = {"lr": tune.grid_search(initial_lrs), "momentum": base.momentum}
        collector = _make_collector()
        finals, timings = self._fit(trainable, param_space, self._scheduler(lr_range), collector)
        best = min(finals, key=_final_rank)
        history: list[dict[str, float]] = best["history"]
        last = history[-1]
        finite = [h["val_accuracy"] for h in history if math.isfinite(h["val_accuracy"])]
        exploits = list(collector.events)
        return MethodResult(
            method=self.name,
            task=spec.task,
            seed=spec.seed,
            start_lr_factor=spec.start_lr_factor,
            val_loss=last["val_loss"],
            val_accuracy=last["val_accuracy"],
            test_accuracy=best["test_accuracy"],
            best_val_accuracy=max(finite) if finite else math.nan,
            samples=int(best["samples_done"]),
            compute_samples=collector.samples,
            wall_time=time.perf_counter() - start,
            diverged=bool(best["diverged"]),
            trajectory=history,
            extra={
                "population": self.population,
                "perturbations": len(exploits),
                "exploits": exploits,
                "lineage_exploits": best["lineage"],
                "initial_lr": initial_lrs,
                "final_lr": sorted(float(f["lr"]) for f in finals),
                "checkpoint_interval": self.checkpoint_interval,
                "intervals": plan.intervals,
                "nominal_compute": self.population * plan.budget,
                "lr_range": list(lr_range),
                **timings,
                "train_time": collector.train_time,
                "members_finished": len(finals),
                "reports": collector.reports,
            },
        )

    def _scheduler(self, lr_range: tuple[float, ...]) -> Any:
        """The PBT scheduler: what mutates, within which bounds, how often."""
        from ray import tune

        mutations: dict[str, Any] = {"lr": tune.loguniform(*lr_range)}
        bounds = {"lr": lr_range}
        if self.mutate_momentum:
            mutations["momentum"] = tune.uniform(*MOMENTUM_RANGE)
            bounds["momentum"] = MOMENTUM_RANGE

        def clip(config: dict[str, Any]) -> dict[str, Any]:
            for key, (low, high) in bounds.items():
                config[key] = min(max(float(config[key]), low), high)
            return config

        return _make_scheduler(
            self.clone_behind,
            time_attr="interval",
            metric="score",
            mode="max",
            perturbation_interval=self.checkpoint_interval,
            burn_in_period=self.burn_in,
            hyperparam_mutations=mutations,
            quantile_fraction=self.quantile_fraction,
            resample_probability=self.resample_probability,
            perturbation_factors=self.perturbation_factors,
            custom_explore_fn=clip,
            synch=False,
        )

    def _fit(
        self, trainable: Any, param_space: dict[str, Any], scheduler: Any, collector: Any
    ) -> tuple[list[dict[str, Any]], dict[str, float]]:
        """Run the population on Ray Tune (a local Ray if none is running).

        Returns:
            The final metrics of every member that finished, and the timings.
        """
        from ray import tune

        from agents.cluster import LOCAL, ray_session

        storage = tempfile.mkdtemp(prefix="hpenv-pbt-")
        ray_start = time.perf_counter()
        try:
            with ray_session(LOCAL, num_cpus=self.num_cpus):  # reused if already connected
                ray_init_time = time.perf_counter() - ray_start
                tuner = tune.Tuner(
                    trainable,
                    param_space=param_space,
                    tune_config=tune.TuneConfig(scheduler=scheduler, reuse_actors=True),
                    run_config=tune.RunConfig(
                        name="pbt",
                        storage_path=storage,
                        stop=_finished,
                        verbose=0,
                        callbacks=[collector],
                        checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
                        failure_config=tune.FailureConfig(max_failures=0, fail_fast=True),
                    ),
                )
                fit_start = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):  # Tune's banner ignores verbose=0
                    grid = tuner.fit()
                fit_time = time.perf_counter() - fit_start
                results = [grid[i] for i in range(len(grid))]
                errors = [str(r.error) for r in results if r.error is not None]
                if errors:
                    raise RuntimeError(f"PBT member failed: {errors[0]}")
                finals = [r.metrics for r in results if r.metrics and r.metrics.get("finished")]
        finally:
            shutil.rmtree(storage, ignore_errors=True)
        if not finals:
            raise RuntimeError("PBT: no member finished")
        return finals, {"ray_init_time": ray_init_time, "tune_fit_time": fit_time}


def pbt_member(config: dict[str, Any], setup: dict[str, Any]) -> None:
    """Ray Tune function trainable: one PBT member, one interval per `ray.tune.report`.

    Args:
        config: ``lr`` and ``momentum`` (PBT's current values).
        setup: ``spec`` (`RunSpec` without data), ``data`` (`TaskData`),
            ``budget`` and ``interval`` (samples), ``checkpoint_interval``.

    Each report carries ``interval`` (intervals done by the lineage, PBT's time
    attribute), ``score``, ``interval_samples`` (trained by this worker in
    that interval), ``interval_time`` (its seconds, training and validation),
    on the first report after an exploit ``exploited_from`` (the donor trial
    whose checkpoint this worker started from; else "") and ``exploited_at``
    (the interval count of that checkpoint; else -1), and on the last one
    ``finished``, ``history``, ``lineage``, ``test_accuracy``.
    """
    from ray import tune

    torch.set_num_threads(1)
    spec: RunSpec = setup["spec"]
    data: TaskData = setup["data"]
    budget: int = setup["budget"]
    interval: int = setup["interval"]
    every: int = setup["checkpoint_interval"]
    me = tune.get_context().get_trial_id()
    run = member_run(spec, data)
    exploited_from, exploited_at = "", -1
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            saved = load_member(run, directory)
        history, lineage, done = saved["history"], saved["lineage"], saved["intervals"]
        if saved["trial_id"] != me:
            exploited_from, exploited_at = saved["trial_id"], done
            lineage.append(
                {
                    "interval": done,
                    "samples": run.samples_done,
                    "from": exploited_from,
                    "to": me,
                    "lr": float(config["lr"]),
                }
            )
    else:
        first = run.evaluate()
        history = [trajectory_point(0.0, 0, run, first.loss, first.accuracy)]
        lineage, done = [], 0
    run.set_hparams(lr=float(config["lr"]), momentum=float(config["momentum"]))
    total = -(-budget // interval)
    while True:
        trained, tick = 0, time.perf_counter()
        if done < total:
            if run.samples_done < budget and not run.diverged:
                before = run.samples_done
                stats = run.train(min(interval, budget - run.samples_done))
                trained = run.samples_done - before
                if stats.diverged:
                    history.append(trajectory_point(1.0, run.samples_done, run, math.nan, math.nan))
                else:
                    ev = run.evaluate()
                    progress = run.samples_done / budget
                    history.append(
                        trajectory_point(progress, run.samples_done, run, ev.loss, ev.accuracy)
                    )
            done += 1
        finished = done >= total
        last = history[-1]
        score = (
            DIVERGED_SCORE
            if run.diverged or not math.isfinite(last["val_accuracy"])
            else last["val_accuracy"] - 1e-6 * min(last["val_loss"], 1e6)
        )
        metrics: dict[str, Any] = {
            "interval": done,
            "score": score,
            "val_accuracy": last["val_accuracy"],
            "val_loss": last["val_loss"],
            "lr": run.hparams.lr,
            "interval_samples": trained,
            "interval_time": time.perf_counter() - tick,
            "samples_done": run.samples_done,
            "exploited_from": exploited_from,
            "exploited_at": exploited_at,
            "diverged": run.diverged,
            "finished": finished,
        }
        exploited_from, exploited_at = "", -1
        if finished:
            test = math.nan
            if run.data.test_x is not None and not run.diverged:
                test = run.evaluate("test").accuracy
            metrics.update(history=history, lineage=lineage, test_accuracy=test)
        if finished or done % every == 0:
            with tempfile.TemporaryDirectory() as directory:
                save_member(run, directory, me, history, lineage, done)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
        else:
            tune.report(metrics)
        if finished:
            return


def member_run(spec: RunSpec, data: TaskData) -> TrainingRun:
    """A member's `TrainingRun` (task defaults), built as `run_intervals` builds a cell's."""
    task = spec.resolved_task()
    val_size = spec.plan(data).val_size
    return TrainingRun(
        task,
        hparams=spec.defaults(),
        seed=spec.seed,
        device=spec.device,
        data=data,
        val_size=val_size,
    )


def save_member(
    run: TrainingRun,
    directory: str,
    trial_id: str,
    history: list[dict[str, float]],
    lineage: list[dict[str, Any]],
    intervals: int,
) -> None:
    """Write a member checkpoint (`TrainingRun.state_dict` + lineage) into ``directory``."""
    torch.save(
        {
            "run": run.state_dict(),
            "trial_id": trial_id,
            "history": history,
            "lineage": lineage,
            "intervals": intervals,
        },
        os.path.join(directory, CHECKPOINT_FILE),
    )


def load_member(run: TrainingRun, directory: str) -> dict[str, Any]:
    """Restore ``run`` from a `save_member` checkpoint; returns the saved record."""
    saved: dict[str, Any] = safe_torch_load(
        os.path.join(directory, CHECKPOINT_FILE), "PBT member checkpoint", run.device
    )
    run.load_state_dict(saved["run"])
    return saved


def _finished(trial_id: str, result: Mapping[str, Any]) -> bool:
    """Stopper: a member's last report ends it (no exploit after the last interval)."""
    return bool(result.get("finished"))


def _final_rank(metrics: dict[str, Any]) -> tuple[float, float]:
    accuracy, loss = metrics["val_accuracy"], metrics["val_loss"]
    if metrics["diverged"] or not math.isfinite(accuracy):
        return (math.inf, math.inf)
    return (-accuracy, loss if math.isfinite(loss) else math.inf)


def _make_scheduler(clone_behind: bool, **kwargs: Any) -> Any:
    """Ray's `PopulationBasedTraining`; unless ``clone_behind``, one that never clones
    a donor whose latest checkpoint is behind the member (then the member goes on)."""
    from ray.tune.schedulers import PopulationBasedTraining

    if clone_behind:
        return PopulationBasedTraining(**kwargs)
    if not hasattr(PopulationBasedTraining, "_checkpoint_or_exploit"):  # a Ray we do not know
        warnings.warn(
            "this Ray's PopulationBasedTraining has no _checkpoint_or_exploit: "
            "running plain PBT (clone_behind=True)",
            stacklevel=3,
        )
        return PopulationBasedTraining(**kwargs)

    class AheadOnlyPBT(PopulationBasedTraining):
        def _checkpoint_or_exploit(
            self, trial: Any, tune_controller: Any, upper_quantile: list, lower_quantile: list
        ) -> None:
            if trial in lower_quantile:
                now = self._trial_state[trial].last_train_time
                ahead = [t for t in upper_quantile if self._trial_state[t].last_train_time >= now]
                if ahead:
                    upper_quantile = ahead
                else:
                    lower_quantile = [t for t in lower_quantile if t is not trial]
            super()._checkpoint_or_exploit(trial, tune_controller, upper_quantile, lower_quantile)

    return AheadOnlyPBT(**kwargs)


def _make_collector() -> Any:
    """A `ray.tune.Callback` (in the driver) that sums trained samples and logs exploits."""
    from ray.tune import Callback

    class Collector(Callback):
        def __init__(self) -> None:
            self.samples = 0
            self.train_time = 0.0
            self.events: list[dict[str, Any]] = []
            self.reports = 0

        def on_trial_result(
            self, iteration: int, trials: Any, trial: Any, result: dict, **info: Any
        ) -> None:
            self.samples += int(result.get("interval_samples", 0))
            self.reports += 1
            self.train_time += float(result.get("interval_time", 0.0))
            if result.get("exploited_from"):
                self.events.append(
                    {
                        "interval": int(result["exploited_at"]),
                        "from": result["exploited_from"],
                        "to": trial.trial_id,
                        "lr": float(result["lr"]),
                    }
                )

    return Collector()
