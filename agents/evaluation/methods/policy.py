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
from agents.evaluation.methods.core import (
    CellRun,
    IntervalReport,
    MethodResult,
    NotBatchable,
    RunSpec,
    train_runs,
)
from agents.policy.artifact import FrozenPolicy
from hpenv.population import SHARED_HPARAMS


@dataclass
class PolicyMethod:
    """Let ``policy`` adjust the run after every interval (through a `TrainingRunDriver`)."""

    policy: FrozenPolicy
    name: str = "policy"

    def runs(self, spec: RunSpec) -> list[CellRun]:
        """The cell's one run, its decisions taken by a fresh driver at every boundary.

        Raises:
            NotBatchable: The policy tunes a hyperparameter a population's members
                share (the batch size); `run` still trains it on its own.
        """
        shared = [name for name in self.policy.metadata.tuned if name in SHARED_HPARAMS]
        if shared:
            raise NotBatchable(f"the policy tunes {shared}, which a population's members share")
        return [self._run(spec)]

    def result(self, spec: RunSpec, results: list[MethodResult]) -> MethodResult:
        (result,) = results
        return result

    def run(self, spec: RunSpec) -> MethodResult:
        return train_runs([self._run(spec)])[0]

    def _run(self, spec: RunSpec) -> CellRun:
        driver: TrainingRunDriver | None = None

        def adjust(report: IntervalReport) -> dict[str, Any]:
            nonlocal driver
            if driver is None:  # first boundary: start from the untrained metrics
                driver = TrainingRunDriver(self.policy, report.run, report.plan)
                driver.start(report.initial)
            driver.after_interval(report.stats, report.evaluation)
            return {}  # the driver has applied the decisions to the run

        return CellRun(spec, spec.start_hparams(), adjust, method=self.name)
