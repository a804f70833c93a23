"""The frozen policy as a method of the evaluation harness.

It runs on the same `run_intervals` cells as every baseline: after each
interval `agents.policy.step.PolicyStep` (the one policy-in-the-loop step,
shared with `HyperController`) observes, asks the policy and applies its
action, exactly as in `HPTuneEnv`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.evaluation.methods.core import IntervalReport, MethodResult, RunSpec, run_intervals
from agents.policy.artifact import FrozenPolicy
from agents.policy.step import PolicyStep
from hpenv.observation import IntervalMetrics


@dataclass
class PolicyMethod:
    """Let ``policy`` adjust the run after every interval."""

    policy: FrozenPolicy
    name: str = "policy"

    def run(self, spec: RunSpec) -> MethodResult:
        step = PolicyStep(self.policy)
        tuned = self.policy.metadata.tuned

        def adjust(report: IntervalReport) -> dict[str, Any]:
            if len(report.history) == 2:  # first boundary: start from the untrained metrics
                step.start(report.initial.loss, report.initial.accuracy, report.run.hparams)
            metrics = IntervalMetrics.from_stats(
                report.progress, report.stats, report.evaluation, report.run.hparams
            )
            new = step.decide(metrics)
            return {name: getattr(new, name) for name in tuned}

        return run_intervals(spec, adjust, method=self.name)
