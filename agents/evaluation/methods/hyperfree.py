"""Learning-rate-free and schedule-free optimizers: the "no tuning at all" alternatives.

Both replace the task's optimizer through ``TrainingRun``'s
``optimizer_factory``; the rest of the task defaults (batch size, dropout,
weight decay, gradient clipping) stay. The run's ``HParams`` say ``adamw``
(both are AdamW-style optimizers with decoupled weight decay) and carry the
optimizer's own ``lr``, since `TrainingRun.apply_hparams` writes ``lr``,
``weight_decay`` and beta1 (``momentum``) into the parameter groups. Neither
uses ``spec.start_lr_factor``: not needing a starting learning rate is their
point, so their rows are the same for every starting factor of a cell.

The packages are optional (``pip install -e '.[baselines]'``) and imported only
when a run starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from agents.evaluation.methods.core import IntervalReport, MethodResult, RunSpec, run_intervals
from agents.evaluation.methods.schedules import cosine_factor
from hpenv.hyperparams import HParams
from hpenv.training import TrainingRun


def _adamw_hparams(spec: RunSpec, lr: float, beta1: float) -> HParams:
    return spec.defaults().replace(optimizer="adamw", lr=lr, momentum=beta1)


@dataclass
class Prodigy:
    """Prodigy (Mishchenko & Defazio, ICML 2024; package ``prodigyopt``) at ``lr=1``.

    ``Prodigy(params, lr=1.0, betas=(0.9, 0.999), weight_decay=<task default>,
    d_coef=1.0)``: the README recommends ``lr=1`` for all networks (``d_coef`` to
    steer the estimate instead) and "either no scheduler or cosine annealing"
    over the whole run (``CosineAnnealingLR(opt, T_max=total_steps)``), which its
    examples use; ``schedule=True`` (default) does that, with the cosine factor
    ``(1 + cos(pi * progress)) / 2`` applied at interval boundaries like the
    `schedules.Cosine` baseline; ``schedule=False`` keeps ``lr=1``. Weight decay
    is the task default (0 for every task now, also Prodigy's default).

    The row's ``lr`` is Prodigy's multiplier, not its step size; ``extra["d"]``
    holds the estimated step size ``d`` at each boundary and ``extra["effective_lr"]``
    the ``d * lr`` each next interval started with.
    """

    name: str = "prodigy"
    schedule: bool = True
    betas: tuple[float, float] = (0.9, 0.999)
    d_coef: float = 1.0
    safeguard_warmup: bool = False

    def run(self, spec: RunSpec) -> MethodResult:
        from prodigyopt import Prodigy as ProdigyOptimizer

        def factory(params: list[torch.nn.Parameter], hp: HParams) -> torch.optim.Optimizer:
            return ProdigyOptimizer(
                params,
                lr=hp.lr,
                betas=(hp.momentum, self.betas[1]),
                weight_decay=hp.weight_decay,
                d_coef=self.d_coef,
                safeguard_warmup=self.safeguard_warmup,
            )

        d_values: list[float] = []
        effective: list[float] = []

        def adjust(report: IntervalReport) -> dict[str, Any]:
            assert isinstance(report.run, TrainingRun)  # its own optimizer: never batched
            d_values.append(float(report.run.optimizer.param_groups[0]["d"]))
            lr = cosine_factor(report.progress) if self.schedule else 1.0
            effective.append(d_values[-1] * lr)
            return {"lr": lr}

        result = run_intervals(
            spec,
            adjust,
            hparams=_adamw_hparams(spec, 1.0, self.betas[0]),
            optimizer_factory=factory,
            method=self.name,
        )
        result.extra.update(
            {
                "d": d_values,
                "effective_lr": effective,
                "config": {
                    "schedule": self.schedule,
                    "betas": list(self.betas),
                    "d_coef": self.d_coef,
                    "safeguard_warmup": self.safeguard_warmup,
                },
            }
        )
        return result


@dataclass
class ScheduleFreeAdamW:
    """Schedule-Free AdamW (Defazio et al. 2024; package ``schedulefree``).

    ``AdamWScheduleFree(params, lr=0.0025, betas=(0.9, 0.999),
    weight_decay=<task default>, warmup_steps=~5% of the run's steps)``, with no
    schedule. ``lr=0.0025`` is the package default and its README's example
    rate (its README: AdamW rates "1x-10x larger than with schedule-based
    approaches"); the README recommends warm-up, and 5% of the optimizer steps
    (``warmup_fraction``, steps = budget / batch size) is the usual choice.
    ``lr=None`` uses the cell's starting learning rate instead.

    `TrainingRun` switches the optimizer to ``train()`` before training and
    ``eval()`` before scoring (the averaged ``x`` weights are evaluated).
    """

    name: str = "schedulefree"
    lr: float | None = 0.0025
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_fraction: float = 0.05

    def run(self, spec: RunSpec) -> MethodResult:
        from schedulefree import AdamWScheduleFree

        data = spec.load_data()
        spec = dataclasses.replace(spec, data=data)  # load once: the warm-up needs it too
        hparams = _adamw_hparams(
            spec, spec.start_hparams().lr if self.lr is None else self.lr, self.betas[0]
        )
        steps = -(-spec.budget(data) // min(hparams.batch_size, data.train_x.shape[0]))
        warmup = round(self.warmup_fraction * steps)

        def factory(params: list[torch.nn.Parameter], hp: HParams) -> torch.optim.Optimizer:
            return AdamWScheduleFree(
                params,
                lr=hp.lr,
                betas=(hp.momentum, self.betas[1]),
                weight_decay=hp.weight_decay,
                warmup_steps=warmup,
            )

        result = run_intervals(
            spec, None, hparams=hparams, optimizer_factory=factory, method=self.name
        )
        result.extra.update(
            {
                "lr": hparams.lr,
                "warmup_steps": warmup,
                "config": {
                    "lr": self.lr,
                    "betas": list(self.betas),
                    "warmup_fraction": self.warmup_fraction,
                },
            }
        )
        return result
