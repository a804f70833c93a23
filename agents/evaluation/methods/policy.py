"""The frozen policy as a method of the evaluation harness.

It runs on the same `run_intervals` cells as every baseline: after each
interval it builds the observation with the environment's `FeatureTracker`,
asks the policy, and applies the action with the environment's
`apply_action`, exactly as `HPTuneEnv` (and `HyperController`) do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.evaluation.methods.core import IntervalReport, MethodResult, RunSpec, run_intervals
from agents.policy.artifact import FrozenPolicy, PolicyActor
from hpenv.hyperparams import apply_action
from hpenv.observation import FeatureTracker, IntervalMetrics


@dataclass
class PolicyMethod:
    """Let ``policy`` adjust the run after every interval."""

    policy: FrozenPolicy
    name: str = "policy"
    _actor: PolicyActor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._actor = PolicyActor(self.policy)

    def run(self, spec: RunSpec) -> MethodResult:
        tracker = FeatureTracker()
        meta = self.policy.metadata
        self._actor.reset()

        def adjust(report: IntervalReport) -> dict[str, Any]:
            if len(report.history) == 2:  # first boundary: start from the untrained metrics
                tracker.reset(report.initial.loss, report.initial.accuracy, report.run.hparams)
            obs = tracker.update(
                IntervalMetrics(
                    progress=report.progress,
                    train_loss=report.stats.loss_mean,
                    train_loss_std=report.stats.loss_std,
                    grad_norm=report.stats.grad_norm,
                    update_ratio=report.stats.update_ratio,
                    val_loss=report.evaluation.loss,
                    val_accuracy=report.evaluation.accuracy,
                    hparams=report.run.hparams,
                )
            )
            new = apply_action(meta.tuned, meta.action_mode, self._actor(obs), report.run.hparams)
            return {name: getattr(new, name) for name in meta.tuned}

        return run_intervals(spec, adjust, method=self.name)
