"""Optuna baselines: TPE search over static hyperparameters, with median pruning.

`OptunaTPE` is what a user with Optuna would do for one cell: ``trials`` static
runs of the cell's full budget, each configuration proposed by TPE (seeded
from the cell's seed), each run reporting its validation accuracy at every
interval boundary so that `optuna.pruners.MedianPruner` can stop bad trials
early. `OptunaWarmStart` first enqueues the best configurations found on
*other* tasks (a meta-learned warm start, leave-one-task-out).

Search space: the same ranges and scales as `agents.evaluation.methods.search.RandomSearch`
(`RANDOM_RANGES`), so that Optuna and random search differ only in how they
pick points. Optuna parameter names (as in ``extra["best_params"]``):

=======================  ====================================================
``lr_factor``            log-uniform in [0.01, 10^1.5]; lr = task default x this
``one_minus_momentum``   log-uniform in [0.01, 0.5], i.e. momentum (SGD momentum
                         or Adam beta1) in [0.5, 0.99] uniform in -ln(1 - m),
                         the `TUNABLES` ``log1m`` scale
``weight_decay``         log-uniform in [1e-6, 1e-2]
``batch_doublings``      integer in [-2, 2]; batch size = task default x 2^this
``dropout``              uniform in [0, 0.5]
=======================  ====================================================

Learning rate and batch size are relative to the task default, so a
configuration transfers across tasks (`OptunaWarmStart`); results are clipped
to the `TUNABLES` ranges. Like the other search baselines, the search starts
from the task's defaults and ignores ``spec.start_lr_factor`` (it replaces
the starting guess rather than correcting it).

Only the names in ``tuned`` are searched; the others keep the task defaults.
Every trial trains the cell's task and seed from scratch (`run_intervals`);
its validation accuracy after interval ``k`` is reported to Optuna as step ``k``.

Accounting: ``compute_samples`` sums the samples every trial actually trained
(a pruned trial counts up to the boundary where it stopped); ``wall_time``
covers the whole study. The reported row is the best *complete* trial's own
`MethodResult`, kept as it ran (no retraining: runs are deterministic given the
cell, so a retrain would reproduce it), chosen as `agents.evaluation.methods.search`
does: best final validation accuracy, ties broken by the lower final
validation loss, then by trial order; diverged trials rank last.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.evaluation.methods.core import IntervalReport, MethodResult, RunSpec, run_intervals
from agents.evaluation.methods.search import RANDOM_RANGES, best_index
from hpenv.hyperparams import TUNABLES, HParams

SEARCHABLE: tuple[str, ...] = ("lr", "momentum", "weight_decay", "batch_size", "dropout")
#: Optuna parameter name of each searchable hyperparameter.
PARAM_NAMES: dict[str, str] = {
    "lr": "lr_factor",
    "momentum": "one_minus_momentum",
    "weight_decay": "weight_decay",
    "batch_size": "batch_doublings",
    "dropout": "dropout",
}


def param_bounds(lr_decades: tuple[float, float]) -> dict[str, tuple[float, float]]:
    """(low, high) of every Optuna parameter, from `RANDOM_RANGES` (``lr`` from ``lr_decades``)."""
    momentum, batch = RANDOM_RANGES["momentum"], RANDOM_RANGES["batch_size"]
    return {
        "lr_factor": (10.0 ** lr_decades[0], 10.0 ** lr_decades[1]),
        "one_minus_momentum": (1.0 - momentum[1], 1.0 - momentum[0]),
        "weight_decay": RANDOM_RANGES["weight_decay"],
        "batch_doublings": (round(math.log2(batch[0])), round(math.log2(batch[1]))),
        "dropout": RANDOM_RANGES["dropout"],
    }


@dataclass
class OptunaTPE:
    """Optuna TPE over static hyperparameters, one full-budget run per trial.

    Attributes:
        trials: Trials per cell (pruned ones included).
        tuned: Hyperparameters searched (subset of `SEARCHABLE`).
        pruning: Stop trials early with `optuna.pruners.MedianPruner`.
        lr_decades: Learning-rate factor range, in decades around the task default
            (default as `GridSearch` / `RANDOM_RANGES`: 10^-2 to 10^1.5).
        startup_trials: Random trials before TPE models the results (default
            ``max(2, trials // 3)``: Optuna's own default of 10 would make an
            8-trial study pure random search).
        prune_startup: Complete trials before the pruner may prune (MedianPruner
            ``n_startup_trials``).
        prune_warmup: Intervals a trial always trains before it may be pruned
            (MedianPruner ``n_warmup_steps``: pruning is considered from step
            ``prune_warmup + 1`` on).
        name: Method name of the result rows.
    """

    trials: int = 8
    tuned: tuple[str, ...] = SEARCHABLE
    pruning: bool = True
    lr_decades: tuple[float, float] = (-2.0, 1.5)
    startup_trials: int | None = None
    prune_startup: int = 3
    prune_warmup: int = 2
    name: str = "optuna"

    def __post_init__(self) -> None:
        unknown = set(self.tuned) - set(SEARCHABLE)
        if unknown:
            raise ValueError(f"cannot search {sorted(unknown)}; searchable: {SEARCHABLE}")
        if self.trials < 1:
            raise ValueError(f"trials must be >= 1, got {self.trials}")
        if self.lr_decades[0] >= self.lr_decades[1]:
            raise ValueError(f"lr_decades must be (low, high), got {self.lr_decades}")

    # -------------------------------------------------------------- warm start

    def warm_start(self, spec: RunSpec) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Configurations to enqueue before searching, and what to say about them."""
        return [], {}

    # -------------------------------------------------------------------- run

    def run(self, spec: RunSpec) -> MethodResult:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        start = time.perf_counter()
        data = spec.load_data()
        spec_with_data = dataclasses.replace(spec, data=data)  # one load for all trials
        budget = spec.budget(data)
        base = spec.defaults()
        startup = (
            self.startup_trials if self.startup_trials is not None else max(2, self.trials // 3)
        )
        sampler = optuna.samplers.TPESampler(seed=spec.seed, n_startup_trials=startup)
        pruner: optuna.pruners.BasePruner = (
            optuna.pruners.MedianPruner(
                n_startup_trials=self.prune_startup, n_warmup_steps=self.prune_warmup
            )
            if self.pruning
            else optuna.pruners.NopPruner()
        )
        study = optuna.create_study(
            direction="maximize",
            sampler=sampler,
            pruner=pruner,
            storage=optuna.storages.InMemoryStorage(),
            study_name=f"{self.name}-{spec.task}-{spec.seed}",
        )
        enqueued, warm_extra = self.warm_start(spec)
        for params in enqueued:
            study.enqueue_trial(params, skip_if_exists=True)

        results: dict[int, MethodResult] = {}
        per_trial: list[dict[str, Any]] = []

        def objective(trial: optuna.Trial) -> float:
            params = self.suggest(trial)
            hparams = self.to_hparams(params, base)
            trained = {"samples": 0}

            def adjust(report: IntervalReport) -> dict[str, Any]:
                step = len(report.history) - 1
                trained["samples"] = report.run.samples_done
                trial.report(report.evaluation.accuracy, step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after interval {step}")
                return {}

            record: dict[str, Any] = {
                "number": trial.number,
                "params": params,
                "hparams": {name: getattr(hparams, name) for name in self.tuned},
            }
            try:
                result = run_intervals(spec_with_data, adjust, hparams=hparams, method=self.name)
            except optuna.TrialPruned:
                record.update(state="pruned", samples=trained["samples"])
                per_trial.append(record)
                raise
            final_step = len(result.trajectory) - 1
            value = result.val_accuracy if math.isfinite(result.val_accuracy) else 0.0
            if not result.diverged:
                trial.report(value, final_step)
            results[trial.number] = result
            record.update(
                state="complete",
                samples=result.samples,
                val_accuracy=result.val_accuracy,
                val_loss=result.val_loss,
                diverged=result.diverged,
            )
            per_trial.append(record)
            return value

        study.optimize(objective, n_trials=self.trials, catch=())
        numbers = sorted(results)
        best_number = numbers[best_index([results[n] for n in numbers])]
        best = results[best_number]
        best_params = next(r["params"] for r in per_trial if r["number"] == best_number)
        best.method = self.name
        best.compute_samples = sum(r["samples"] for r in per_trial)
        best.wall_time = time.perf_counter() - start
        best.extra = {
            "best_params": best_params,
            "best_hparams": self.to_hparams(best_params, base).to_dict(),
            "best_trial": best_number,
            "trials_run": len(per_trial),
            "trials_pruned": sum(r["state"] == "pruned" for r in per_trial),
            "per_trial": per_trial,
            "budget": budget,
            "tuned": list(self.tuned),
            "lr_decades": list(self.lr_decades),
            "sampler": f"TPESampler(seed={spec.seed}, n_startup_trials={startup})",
            "pruner": (
                f"MedianPruner(n_startup_trials={self.prune_startup}, "
                f"n_warmup_steps={self.prune_warmup})"
                if self.pruning
                else "none"
            ),
            **warm_extra,
        }
        return best

    # ------------------------------------------------------------ search space

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Draw this trial's Optuna parameters (names as in the module docstring)."""
        bounds = param_bounds(self.lr_decades)
        params: dict[str, Any] = {}
        for name in SEARCHABLE:
            if name not in self.tuned:
                continue
            key = PARAM_NAMES[name]
            low, high = bounds[key]
            if key == "batch_doublings":
                params[key] = trial.suggest_int(key, int(low), int(high))
            else:
                params[key] = trial.suggest_float(key, low, high, log=key != "dropout")
        return params

    def to_hparams(self, params: Mapping[str, Any], base: HParams) -> HParams:
        """The run's hyperparameters for Optuna ``params`` (the others from ``base``)."""
        values: dict[str, float] = {}
        if "lr_factor" in params:
            values["lr"] = base.lr * float(params["lr_factor"])
        if "one_minus_momentum" in params:
            values["momentum"] = 1.0 - float(params["one_minus_momentum"])
        if "weight_decay" in params:
            values["weight_decay"] = float(params["weight_decay"])
        if "batch_doublings" in params:
            values["batch_size"] = base.batch_size * 2.0 ** int(params["batch_doublings"])
        if "dropout" in params:
            values["dropout"] = float(params["dropout"])
        return base.replace(
            **{name: TUNABLES[name].cast(TUNABLES[name].clip(v)) for name, v in values.items()}
        )

    def sanitize(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` restricted to this search space and moved inside its ranges.

        Unknown or untuned names are dropped (TPE samples what is missing) and
        values are clipped into range (``batch_doublings`` rounded).
        """
        bounds = param_bounds(self.lr_decades)
        allowed = {PARAM_NAMES[name] for name in self.tuned}
        clean: dict[str, Any] = {}
        for key, value in params.items():
            if key not in allowed:
                continue
            low, high = bounds[key]
            clipped = min(max(float(value), low), high)
            clean[key] = round(clipped) if key == "batch_doublings" else clipped
        return clean


@dataclass
class OptunaWarmStart(OptunaTPE):
    """`OptunaTPE` that first tries the best configurations found on other tasks.

    Before searching, up to ``trials // 2`` configurations from ``warm_configs``
    are enqueued (`optuna.Study.enqueue_trial`), taken from every task but the
    cell's own (leave-one-task-out), round-robin over tasks in name order
    (each task's list in its own order), duplicates skipped. They are run as
    the first trials and count toward ``trials``; TPE then models them along
    with its own. Parameters are sanitized into this search space (see
    `OptunaTPE.sanitize`); ``lr_factor`` and ``batch_doublings`` are relative
    to each task's defaults, so they transfer across tasks.

    How the harness feeds it: run `OptunaTPE` (method ``"optuna"``) on every
    task first, then build ``warm_configs`` from those rows with
    `warm_configs_from_rows` (task -> the ``extra["best_params"]`` of its
    rows, one per seed) and construct ``OptunaWarmStart(warm_configs=...)``.
    Passing the configurations of all tasks is fine: the cell's own task is
    always excluded here. With nothing from other tasks it runs as plain
    `OptunaTPE` and says so (``extra["warm_start"] == "none available"``).

    Attributes:
        warm_configs: Task name -> best parameter dicts found on that task.
        max_warm: Most configurations to enqueue (default ``trials // 2``).
    """

    warm_configs: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    max_warm: int | None = None
    name: str = "optuna_warm"

    def warm_start(self, spec: RunSpec) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        limit = self.trials // 2 if self.max_warm is None else min(self.max_warm, self.trials)
        queues = [
            (task, [self.sanitize(c) for c in configs])
            for task, configs in sorted(self.warm_configs.items())
            if task != spec.task
        ]
        chosen: list[dict[str, Any]] = []
        sources: list[str] = []
        depth = 0
        while len(chosen) < limit and any(depth < len(q) for _, q in queues):
            for task, queue in queues:
                if depth < len(queue) and len(chosen) < limit:
                    config = queue[depth]
                    if config and config not in chosen:
                        chosen.append(config)
                        sources.append(task)
            depth += 1
        if not chosen:
            return [], {"warm_start": "none available", "enqueued": [], "enqueued_from": []}
        return chosen, {
            "warm_start": f"{len(chosen)} configs from other tasks",
            "enqueued": chosen,
            "enqueued_from": sources,
        }


def warm_configs_from_rows(
    rows: Iterable[MethodResult | Mapping[str, Any]], method: str = "optuna"
) -> dict[str, list[dict[str, Any]]]:
    """Task -> ``extra["best_params"]`` of the ``method`` rows (for `OptunaWarmStart`).

    Rows are `MethodResult` objects or their dicts (``extra`` may be a JSON string,
    as read back from a CSV). Rows of other methods or without best params are skipped.
    """
    configs: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        record = row.to_dict() if isinstance(row, MethodResult) else dict(row)
        if record.get("method") != method:
            continue
        extra = record.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra)
        params = extra.get("best_params")
        if params:
            configs.setdefault(str(record["task"]), []).append(dict(params))
    return configs
