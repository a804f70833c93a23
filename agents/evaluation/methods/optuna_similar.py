"""Optuna TPE warm-started from the most similar prior tasks (by meta-features).

`OptunaSimilar` is `agents.evaluation.methods.optuna_search.OptunaTPE` with a
warm start chosen by task similarity, where `OptunaWarmStart` takes the best
configurations of *every* other task in name order. Before searching it:

1. describes the cell's task and every prior task with
   `agents.evaluation.methods.meta_features.describe_task` (training samples,
   input size, classes, model parameters, modality, and the first interval's
   loss curve at the task defaults, probed with the cell's seed);
2. keeps the ``k`` prior tasks nearest in that feature space, each with a
   similarity weight (``exp(-distance / bandwidth)``, normalised);
3. enqueues up to ``trials // 2`` configurations (as `OptunaWarmStart`): first
   the similarity-weighted mean of those tasks' best configurations (on each
   parameter's own scale: log for ``lr_factor``, ``one_minus_momentum`` and
   ``weight_decay``, linear for ``batch_doublings`` and ``dropout``), then each
   task's own best configurations, the number per task in proportion to its
   weight (closest task first; duplicates skipped).

TPE then models them with its own trials, as in `OptunaWarmStart`. The prior
configurations come from the harness's result files: the finished ``optuna``
runs of the other tasks (``extra["best_params"]``, one per seed), fed in by the
runner as ``warm_configs`` (task -> configurations), with ``prior_specs``
(task -> a `RunSpec` of that task, to describe it). The cell's own task is
always left out.

Accounting: the probe of the cell's task (one interval) is added to
``compute_samples``; the probes of the prior tasks describe the prior results
(in a standing system they are computed once, with those results) and are
reported in ``extra["prior_probe_samples"]``, not added. ``extra`` also holds
``meta_features`` (the cell's), ``similar_tasks`` (task, distance, weight),
``enqueued`` and ``enqueued_from`` (``"weighted mean"`` for the first).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.evaluation.methods.core import MethodResult, RunSpec
from agents.evaluation.methods.meta_features import (
    PROBE_POINTS,
    Neighbour,
    TaskFeatures,
    allocate,
    describe_task,
    nearest,
)
from agents.evaluation.methods.optuna_search import OptunaTPE

#: Optuna parameters averaged on a log scale (the others linearly).
LOG_PARAMS = ("lr_factor", "one_minus_momentum", "weight_decay")
WEIGHTED_MEAN = "weighted mean"


@dataclass
class OptunaSimilar(OptunaTPE):
    """`OptunaTPE` warm-started from the ``k`` prior tasks most similar to the cell's.

    Attributes:
        warm_configs: Task name -> best parameter dicts found on that task.
        prior_specs: Task name -> a cell of that task to describe it by (its seed
            is replaced by the cell's); missing tasks are described at their
            default fidelity.
        k: Most similar prior tasks to warm-start from.
        bandwidth: Similarity ``exp(-distance / bandwidth)``.
        max_warm: Most configurations to enqueue (default ``trials // 2``).
        weighted_mean: Enqueue the similarity-weighted mean configuration first.
        probe_points: Points of the probed loss curve.
    """

    warm_configs: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    prior_specs: Mapping[str, RunSpec] = field(default_factory=dict)
    k: int = 3
    bandwidth: float = 1.0
    max_warm: int | None = None
    weighted_mean: bool = True
    probe_points: int = PROBE_POINTS
    name: str = "optuna_similar"
    _features: dict[tuple[str, int], TaskFeatures] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")

    def run(self, spec: RunSpec) -> MethodResult:
        row = super().run(spec)
        row.compute_samples += int(row.extra.get("probe_samples", 0))  # the cell's own probe
        return row

    def warm_start(self, spec: RunSpec) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        limit = self.trials // 2 if self.max_warm is None else min(self.max_warm, self.trials)
        target = self.describe(spec)
        queues = {
            task: [c for c in (self.sanitize(c) for c in configs) if c]
            for task, configs in sorted(self.warm_configs.items())
            if task != spec.task
        }
        queues = {task: queue for task, queue in queues.items() if queue}
        priors = [self.describe(self._prior_spec(task, spec)) for task in queues]
        extra: dict[str, Any] = {
            "meta_features": target.to_dict(),
            "probe_samples": target.probe_samples,
            "prior_features": {f.task: f.to_dict() for f in priors},
            "prior_probe_samples": sum(f.probe_samples for f in priors),
        }
        neighbours = nearest(target, priors, self.k, self.bandwidth) if priors else []
        chosen, sources = self._choose(neighbours, queues, limit)
        extra["similar_tasks"] = [dataclasses.asdict(n) for n in neighbours]
        extra["enqueued"], extra["enqueued_from"] = chosen, sources
        if not chosen:
            extra["warm_start"] = "none available"
            return [], extra
        extra["warm_start"] = (
            f"{len(chosen)} configs from the {len(neighbours)} most similar tasks "
            f"({', '.join(n.task for n in neighbours)})"
        )
        return chosen, extra

    def describe(self, spec: RunSpec) -> TaskFeatures:
        """`describe_task`, once per (task, seed) for this instance."""
        key = (spec.task, spec.seed)
        if key not in self._features:
            self._features[key] = describe_task(spec, self.probe_points)
        return self._features[key]

    def _prior_spec(self, task: str, spec: RunSpec) -> RunSpec:
        given = self.prior_specs.get(task)
        if given is not None:
            return dataclasses.replace(given, seed=spec.seed)
        return RunSpec(
            task, spec.seed, decisions=spec.decisions, device=spec.device,
            data_dir=spec.data_dir, optimizer=spec.optimizer,
        )  # fmt: skip

    def _choose(
        self,
        neighbours: Sequence[Neighbour],
        queues: Mapping[str, Sequence[dict[str, Any]]],
        limit: int,
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The configurations to enqueue and where each came from (see the module docstring)."""
        chosen: list[dict[str, Any]] = []
        sources: list[str] = []
        if not neighbours or limit < 1:
            return chosen, sources
        if self.weighted_mean:
            mean = self.sanitize(weighted_mean(neighbours, queues))
            if mean:
                chosen.append(mean)
                sources.append(WEIGHTED_MEAN)
        counts = allocate({n.task: n.weight for n in neighbours}, limit - len(chosen))
        taken = dict.fromkeys(queues, 0)

        def take(task: str) -> bool:
            queue = queues[task]
            while taken[task] < len(queue):
                config = queue[taken[task]]
                taken[task] += 1
                if config not in chosen:
                    chosen.append(config)
                    sources.append(task)
                    return True
            return False

        for n in neighbours:  # each task's share, closest first
            for _ in range(counts[n.task]):
                take(n.task)
        while len(chosen) < limit and any(take(n.task) for n in neighbours):
            pass  # shares a task could not fill (duplicates) go to the others, in order
        return chosen[:limit], sources[:limit]


def weighted_mean(
    neighbours: Sequence[Neighbour], queues: Mapping[str, Sequence[Mapping[str, Any]]]
) -> dict[str, Any]:
    """The similarity-weighted mean configuration of the neighbours' best configurations.

    Each task's configurations are averaged first (equally), then the tasks by
    their weights; log-scale parameters (`LOG_PARAMS`) are averaged in log space.

    >>> n = [Neighbour("a", 0.1, 0.75), Neighbour("b", 0.5, 0.25)]
    >>> q = {"a": [{"lr_factor": 1.0}], "b": [{"lr_factor": 10.0 ** 4}]}
    >>> round(weighted_mean(n, q)["lr_factor"], 6)
    10.0
    """
    sums: dict[str, float] = {}
    totals: dict[str, float] = {}
    for n in neighbours:
        configs = queues.get(n.task, ())
        for key in {k for c in configs for k in c}:
            values = [_scale(key, float(c[key])) for c in configs if key in c]
            sums[key] = sums.get(key, 0.0) + n.weight * sum(values) / len(values)
            totals[key] = totals.get(key, 0.0) + n.weight
    return {key: _unscale(key, sums[key] / totals[key]) for key in sums if totals[key] > 0}


def _scale(key: str, value: float) -> float:
    return math.log(max(value, 1e-12)) if key in LOG_PARAMS else value


def _unscale(key: str, value: float) -> float:
    return math.exp(value) if key in LOG_PARAMS else value
