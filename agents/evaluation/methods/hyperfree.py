"""Learning-rate-free, schedule-free and self-tuning optimizers: "no tuning at all" alternatives.

Each replaces the task's optimizer through ``TrainingRun``'s
``optimizer_factory``; the rest of the task defaults (batch size, dropout,
weight decay, gradient clipping) stay. `TrainingRun.apply_hparams` writes
``lr``, ``weight_decay`` and beta1 (``momentum``) into the parameter groups, so
the run's ``HParams`` name an optimizer of the same family: ``adamw`` for
Prodigy and Schedule-Free (AdamW-style, decoupled weight decay), the cell's own
optimizer for Mechanic (which wraps it). Prodigy and Schedule-Free do not use
``spec.start_lr_factor``: not needing a starting learning rate is their point,
so their rows are the same for every starting factor of a cell; Mechanic starts
from the cell's starting rate, since robustness to a wrong one is its claim.

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
from hpenv.hyperparams import HParams, OptimizerName
from hpenv.training import TrainingRun

#: The torch optimizer class of each `OptimizerName` (what Mechanic wraps).
OPTIMIZER_CLASSES: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}


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


@dataclass
class Mechanic:
    """Mechanic (Cutkosky, Defazio & Mehta, NeurIPS 2023; package ``mechanic-pytorch``).

    ``mechanize(Base)(params, lr=<the cell's starting rate>, ...)`` with the
    package's defaults (``s_decay=0.01``, ``betas=(0.9, ..., 0.999999)``,
    ``s_init=1e-8``, ``store_delta=False``): Mechanic learns a scale ``s`` that
    multiplies the base optimizer's updates (effective rate ``s * lr``). ``Base``
    is the cell's optimizer (Adam for every task's default; SGD with momentum in
    ``--optimizer sgd`` cells), or ``base`` if set, at its usual betas / momentum.

    The rate: ``mechanize``'s docstring swaps ``SGD(params, lr=0.01)`` for
    ``mechanize(SGD)(params, lr=0.01)`` (a drop-in at the usual rate), and its
    README says any ``lr`` works ("very robust to heavily mis-specified values of
    lr"; too small ones risk precision) and shows ``lr=1.0`` for SGD. Here it is
    the cell's starting rate (the task default x ``spec.start_lr_factor``; the
    default rate at factor 1), so rescue cells test that robustness; ``lr``
    overrides it. No schedule: the README allows "any pytorch optimizer and
    schedule" and recommends none (github.com/optimizedlearning/mechanic,
    README.md).

    ``extra["scale"]`` holds the learned ``s`` (summed over its betas, as the
    package logs it) at each boundary and ``extra["effective_lr"]`` ``s * lr``.
    """

    name: str = "mechanic"
    base: OptimizerName | None = None
    lr: float | None = None

    def run(self, spec: RunSpec) -> MethodResult:
        from mechanic_pytorch import mechanize

        cell = spec if self.base is None else dataclasses.replace(spec, optimizer=self.base)
        start = cell.start_hparams()
        hparams = start if self.lr is None else start.replace(lr=self.lr)
        kind = hparams.optimizer
        optimizer_class = mechanize(OPTIMIZER_CLASSES[kind])

        def factory(params: list[torch.nn.Parameter], hp: HParams) -> torch.optim.Optimizer:
            if hp.optimizer == "sgd":
                return optimizer_class(
                    params, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay
                )
            return optimizer_class(
                params, lr=hp.lr, betas=(hp.momentum, 0.999), weight_decay=hp.weight_decay
            )

        scales: list[float] = []

        def adjust(report: IntervalReport) -> dict[str, Any]:
            assert isinstance(report.run, TrainingRun)  # its own optimizer: never batched
            state: dict[Any, Any] = report.run.optimizer.state
            scales.append(float(state["_mechanic"]["s"].sum()) if "_mechanic" in state else 0.0)
            return {}

        result = run_intervals(
            spec, adjust, hparams=hparams, optimizer_factory=factory, method=self.name
        )
        result.extra.update(
            {
                "lr": hparams.lr,
                "optimizer": kind,
                "scale": scales,
                "effective_lr": [scale * hparams.lr for scale in scales],
                "config": {"base": self.base, "lr": self.lr},
            }
        )
        return result
