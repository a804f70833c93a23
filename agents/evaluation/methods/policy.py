"""The frozen policy as a method of the evaluation harness.

It runs on the same `run_intervals` cells as every baseline, driven by
`agents.deploy.run_driver.TrainingRunDriver`, the driver of
``scripts/run_policy.py``: after each interval the driver's
`agents.policy.step.PolicyStep` (the one policy-in-the-loop step, shared with
`HyperController`) observes, asks the policy and applies its decisions to the
run, batch size and dropout included, exactly as in `HPTuneEnv`. The budget is
the cell's, in samples, so batch-size decisions change the optimizer steps, not
the samples trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.deploy.run_driver import TrainingRunDriver
from agents.evaluation.methods.core import IntervalReport, MethodResult, RunSpec, run_intervals
from agents.policy.artifact import FrozenPolicy


@dataclass
class PolicyMethod:
    """Let ``policy`` adjust the run after every interval (through a `TrainingRunDriver`)."""

    policy: FrozenPolicy
    name: str = "policy"

    def run(self, spec: RunSpec) -> MethodResult:
        driver: TrainingRunDriver | None = None

        def adjust(report: IntervalReport) -> dict[str, Any]:
            nonlocal driver
            if driver is None:  # first boundary: start from the untrained metrics
                driver = TrainingRunDriver(self.policy, report.run, report.plan)
                driver.start(report.initial)
            driver.after_interval(report.stats, report.evaluation)
            return {}  # the driver has applied the decisions to the run

        return run_intervals(spec, adjust, method=self.name)
