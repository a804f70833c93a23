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
from hpenv.base import BaseConfig, BaseSchedule, rate_after_probe
from hpenv.plan import EpisodePlan
from hpenv.population import SHARED_HPARAMS
from hpenv.probe import ProbeResult


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
        """One run; a layout-2 policy's probes first and steers around the probe's base, a
        layout-1 policy's with a probe start (`hpenv.base.ProbeStart`) probes first and
        starts at the probe's rate."""
        driver: TrainingRunDriver | None = None
        start = spec.start_hparams()
        base: BaseSchedule | None = None
        meta = self.policy.metadata
        layout_2 = meta.obs_version == 2
        base_config = meta.base_config() or BaseConfig()

        def after_probe(probe: ProbeResult, plan: EpisodePlan) -> dict[str, Any]:
            nonlocal base
            if layout_2:
                base = base_config.schedule_for(probe, start, plan)
            lr = rate_after_probe(probe, start.lr, base, meta.probe_start)
            return {} if lr is None else {"lr": lr}

        def adjust(report: IntervalReport) -> dict[str, Any]:
            nonlocal driver, base
            if driver is None:  # first boundary: start from the untrained metrics
                if layout_2 and base is None:  # the run was too short for a probe
                    base = base_config.schedule(None, start.lr, 0.0)
                driver = TrainingRunDriver(self.policy, report.run, report.plan, base=base)
                driver.start(report.initial, probe=report.probe)
            driver.after_interval(report.stats, report.evaluation)
            return {}  # the driver has applied the decisions to the run

        probe = meta.probe_config()
        restart = meta.restart
        if probe is None:  # layout 1 without a probe start
            return CellRun(spec, start, adjust, method=self.name, restart=restart)
        return CellRun(
            spec,
            start,
            adjust,
            method=self.name,
            probe=probe,
            after_probe=after_probe,
            restart=restart,
        )
