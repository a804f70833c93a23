"""Fixed learning-rate schedules and reactive rules: what users run instead of a policy.

Interval granularity: every method here changes hyperparameters only at the
``decisions`` interval boundaries of `core.run_intervals`, the same boundaries
at which the policy acts, never per optimizer step. A schedule's value for an
interval is its formula at the interval's start (``progress`` = samples done /
budget), held for the whole interval: the piecewise-constant, left-point
version of the per-step schedule (what a per-step torch scheduler would give if
an interval were one step). The first interval starts at progress 0.

Every method starts from ``spec.start_hparams()`` (the task defaults with the
learning rate times ``spec.start_lr_factor``) and scales that starting learning
rate ``lr0``; nothing but the learning rate (and One-cycle's momentum) changes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from agents.evaluation.methods.core import CellRun, MethodResult, RunSpec, train_runs
from hpenv.base import BaseConfig, BaseSchedule, Decay
from hpenv.hyperparams import HParams
from hpenv.plan import EpisodePlan
from hpenv.probe import DEFAULT_RULE, ProbeConfig, ProbeResult, SuggestionRule

#: ``(progress, val_loss) -> changes`` for the interval that starts at ``progress``.
#: Called once with ``(0.0, None)`` before training (the first interval's values),
#: then at every interval boundary with the validation loss just measured. A new
#: controller is made for every run, so stateful rules start fresh.
Controller = Callable[[float, float | None], dict[str, Any]]


def controlled_run(
    spec: RunSpec, name: str, controller: Controller, *, hparams: HParams | None = None
) -> CellRun:
    """The run of ``spec`` whose hyperparameters ``controller`` sets at every interval.

    Args:
        spec: The cell.
        name: Method name for the row.
        controller: See `Controller` (a new one for every run).
        hparams: Starting hyperparameters before the controller's first call
            (default ``spec.start_hparams()``).
    """
    start = hparams or spec.start_hparams()
    start = start.replace(**controller(0.0, None))

    def adjust(report: Any) -> dict[str, Any]:
        return controller(report.progress, report.evaluation.loss)

    return CellRun(spec, start, adjust, method=name)


class ScheduleMethod:
    """A method that is one `controlled_run` from ``spec.start_hparams()``: every class here.

    Subclasses give `controller` (and may change `details`); the cell is one run,
    so it can train as a population member beside other cells (`BatchableMethod`).
    """

    name: str

    def controller(self, start: HParams) -> Controller:
        raise NotImplementedError

    def details(self, start: HParams) -> dict[str, Any]:
        """The row's ``extra``: the starting rate and the method's settings."""
        return {"start_lr": start.lr, "config": _config(self)}

    def runs(self, spec: RunSpec) -> list[CellRun]:
        start = spec.start_hparams()
        return [controlled_run(spec, self.name, self.controller(start), hparams=start)]

    def result(self, spec: RunSpec, results: list[MethodResult]) -> MethodResult:
        (result,) = results
        result.extra.update(self.details(spec.start_hparams()))
        return result

    def run(self, spec: RunSpec) -> MethodResult:
        return self.result(spec, train_runs(self.runs(spec)))


def _config(method: Any) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(method).items() if k != "name"}


def cosine_factor(progress: float, min_factor: float = 0.0) -> float:
    """Cosine annealing from 1 at progress 0 to ``min_factor`` at progress 1."""
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _annealing_cos(start: float, end: float, pct: float) -> float:
    """torch's OneCycleLR cosine ramp from ``start`` (pct 0) to ``end`` (pct 1)."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)


@dataclass
class Static(ScheduleMethod):
    """The task defaults (learning rate x ``spec.start_lr_factor``), never changed."""

    name: str = "static"

    def controller(self, start: HParams) -> Controller:
        return lambda progress, val_loss: {}

    def details(self, start: HParams) -> dict[str, Any]:
        return {"lr": start.lr}


@dataclass
class Cosine(ScheduleMethod):
    """Cosine annealing: ``lr = lr0 * (m + (1 - m) * (1 + cos(pi * progress)) / 2)``.

    ``m = min_factor`` (default 0: torch's ``CosineAnnealingLR`` with
    ``eta_min=0``, ``T_max`` = the whole run, no warm-up, no restarts).
    """

    name: str = "cosine"
    min_factor: float = 0.0

    def controller(self, start: HParams) -> Controller:
        lr0 = start.lr
        return lambda progress, val_loss: {"lr": lr0 * cosine_factor(progress, self.min_factor)}


@dataclass
class LinearDecay(ScheduleMethod):
    """Linear decay: ``lr = lr0 * (1 - (1 - end_factor) * progress)``.

    Default ``end_factor`` 0: to zero at the end of the budget, no warm-up (as
    ``transformers.get_linear_schedule_with_warmup`` with no warm-up steps).
    """

    name: str = "linear"
    end_factor: float = 0.0

    def controller(self, start: HParams) -> Controller:
        lr0 = start.lr
        return lambda progress, val_loss: {"lr": lr0 * (1.0 - (1.0 - self.end_factor) * progress)}


@dataclass
class OneCycle(ScheduleMethod):
    """One-cycle (Smith & Topin 2019) with torch's ``OneCycleLR`` defaults, over progress.

    With ``max_lr = lr0 * max_factor``, ``initial = max_lr / div_factor`` and
    ``final = initial / final_div_factor``:

    - ``progress < pct_start``: ``lr`` rises from ``initial`` to ``max_lr``,
    - then it falls to ``final`` at progress 1,

    both along torch's cosine ramp ``end + (start - end) * (1 + cos(pi * t)) / 2``
    (``t`` the fraction of the phase done). With ``cycle_momentum`` the momentum
    (Adam's beta1) moves the opposite way, ``max_momentum`` -> ``base_momentum``
    -> ``max_momentum``, as ``OneCycleLR`` does by default.

    Defaults are ``OneCycleLR``'s (``pct_start=0.3``, ``div_factor=25``,
    ``final_div_factor=1e4``, ``anneal_strategy="cos"``, ``cycle_momentum=True``,
    momentum 0.85-0.95). ``max_factor=1``: the peak is the starting learning rate,
    the way ``OneCycleLR(optimizer, max_lr=lr)`` is normally called with the
    learning rate one would otherwise use (fastai's ``fit_one_cycle`` likewise
    peaks at its default ``lr_max=1e-3``, Adam's usual rate). A larger peak
    needs an LR range test, which is a search of its own, and the evaluation
    cells already vary the starting rate (``start_lr_factor``).
    """

    name: str = "onecycle"
    max_factor: float = 1.0
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    cycle_momentum: bool = True
    base_momentum: float = 0.85
    max_momentum: float = 0.95

    def values(self, lr0: float, progress: float) -> dict[str, float]:
        """Learning rate (and momentum) at ``progress``."""
        max_lr = lr0 * self.max_factor
        initial = max_lr / self.div_factor
        final = initial / self.final_div_factor
        if progress < self.pct_start:
            pct = progress / self.pct_start
            lr = _annealing_cos(initial, max_lr, pct)
            momentum = _annealing_cos(self.max_momentum, self.base_momentum, pct)
        else:
            pct = min((progress - self.pct_start) / (1.0 - self.pct_start), 1.0)
            lr = _annealing_cos(max_lr, final, pct)
            momentum = _annealing_cos(self.base_momentum, self.max_momentum, pct)
        return {"lr": lr, "momentum": momentum} if self.cycle_momentum else {"lr": lr}

    def controller(self, start: HParams) -> Controller:
        lr0 = start.lr
        return lambda progress, val_loss: self.values(lr0, progress)


@dataclass
class Plateau(ScheduleMethod):
    """``torch.optim.lr_scheduler.ReduceLROnPlateau`` on the validation loss at each boundary.

    torch's own class runs on a dummy optimizer holding the learning rate; it is
    stepped with the validation loss after every interval (one interval = one of
    its "epochs"). When the loss has not improved on its best by more than
    ``threshold`` (relative) for more than ``patience`` boundaries in a row, the
    learning rate is multiplied by ``factor`` (never below ``lr0 * min_factor``),
    then ``cooldown`` boundaries pass before counting again.

    Defaults: ``factor=0.5``, ``patience=2``, torch's ``threshold=1e-4`` (rel),
    ``cooldown=0``, ``min_lr=0``. torch's own defaults (``patience=10``,
    ``factor=0.1``) suit runs of a hundred or more epochs; a run here has only
    ``decisions`` (20) boundaries, where patience 10 would hardly ever fire.
    Patience 2 cuts on the third non-improving boundary in a row (about 15% of
    the run), and halving (a common choice, e.g. in Keras' examples) is gentler
    than 0.1 since cuts can come more often.
    """

    name: str = "plateau"
    factor: float = 0.5
    patience: int = 2
    threshold: float = 1e-4
    cooldown: int = 0
    min_factor: float = 0.0

    def controller(self, start: HParams) -> Controller:
        lr0 = start.lr
        holder = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr0)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            holder,
            mode="min",
            factor=self.factor,
            patience=self.patience,
            threshold=self.threshold,
            threshold_mode="rel",
            cooldown=self.cooldown,
            min_lr=lr0 * self.min_factor,
            eps=0.0,  # torch's 1e-8 would drop every cut of an lr below 2e-8
        )

        def control(progress: float, val_loss: float | None) -> dict[str, Any]:
            if val_loss is not None:
                scheduler.step(val_loss)
            return {"lr": float(holder.param_groups[0]["lr"])}

        return control


@dataclass
class DAC4SGDRule(ScheduleMethod):
    """The rule that won the DAC4SGD track of the DAC4AutoML competition (AutoML-Conf 2022).

    Source: the winners' published solution, github.com/thetourney/DAC4SGD
    (``solution.py``; README: "a linear decay is applied to the learning rate at
    each batch step. Then, at the end of each epoch, if the validation loss
    worsens compared to the previous epoch, the learning rate is further reduced
    by a constant factor"). Its code is

        lr = LR * (1 - step / cutoff) * reduction
        reduction *= RF  whenever  validation_loss > previous validation_loss

    with ``LR = 0.005`` and ``RF = 0.05``; the first validation loss is compared
    with ``float max`` (never cuts).

    Implemented here: ``lr = lr0 * (1 - progress) * cut_factor ** k``, ``k`` the
    number of boundaries so far whose validation loss exceeded the previous
    boundary's (the untrained model's loss is not compared), ``cut_factor=0.05``
    as in the winner. Differences, all for comparability with the other
    baselines: ``lr0`` is the cell's starting learning rate, not the winner's
    absolute 0.005 (tuned for the competition's AdamW benchmark); decay and
    validation happen per interval rather than per batch and per epoch.
    """

    name: str = "dac4sgd"
    cut_factor: float = 0.05

    def controller(self, start: HParams) -> Controller:
        lr0 = start.lr
        state = {"reduction": 1.0, "last": math.inf}

        def control(progress: float, val_loss: float | None) -> dict[str, Any]:
            if val_loss is not None:
                if val_loss > state["last"]:
                    state["reduction"] *= self.cut_factor
                state["last"] = val_loss
            return {"lr": lr0 * (1.0 - progress) * state["reduction"]}

        return control


@dataclass
class ProbeCosine:
    """The base a layout-2 policy steers around, alone: the probe, then its reading, decayed.

    The run probes its rate first (`hpenv.probe`, its samples out of the budget,
    rolled back to its best state), then trains at the base schedule of
    `hpenv.base`: the probe's ``rule`` reading (the lowest smoothed loss's rate /
    30 by default), cosine-decayed over the rest of the budget, set at interval
    boundaries like every schedule here. A run too short for a probe, or whose
    probe suggests nothing, uses its starting rate (task default x
    ``spec.start_lr_factor``) as the anchor. Every report shows what a policy adds
    over this.

    ``probe`` sets the sweep (default `hpenv.probe.ProbeConfig`: no probe under 80 steps);
    ``short_rule`` and ``short_steps`` a reading for short runs (`hpenv.base.BaseConfig`).
    ``extra``: the anchor (``base_lr``), and the probe's curve and cost under ``probe``.
    """

    name: str = "probe_cosine"
    rule: SuggestionRule = DEFAULT_RULE
    decay: Decay = "cosine"
    probe: ProbeConfig = dataclasses.field(default_factory=ProbeConfig)
    short_rule: SuggestionRule | None = None  # see hpenv.base.BaseConfig
    short_steps: int = 400

    def runs(self, spec: RunSpec) -> list[CellRun]:
        start = spec.start_hparams()
        config = BaseConfig(self.rule, self.decay, self.short_rule, self.short_steps)
        holder: dict[str, BaseSchedule] = {}

        def after_probe(probe: ProbeResult, plan: EpisodePlan) -> dict[str, Any]:
            holder["base"] = config.schedule_for(probe, start, plan)
            return {"lr": holder["base"].lr(holder["base"].p0)}

        def adjust(report: Any) -> dict[str, Any]:
            base = holder.setdefault("base", config.schedule(None, start.lr, 0.0))
            return {"lr": base.lr(report.progress)}

        return [
            CellRun(
                spec, start, adjust, method=self.name, probe=self.probe, after_probe=after_probe
            )
        ]

    def result(self, spec: RunSpec, results: list[MethodResult]) -> MethodResult:
        (result,) = results
        first = result.trajectory[1] if len(result.trajectory) > 1 else result.trajectory[0]
        result.extra.update({"config": _config(self), "base_lr": first["lr"]})
        return result

    def run(self, spec: RunSpec) -> MethodResult:
        return self.result(spec, train_runs(self.runs(spec)))


@dataclass
class ProbeCosineShort(ProbeCosine):
    """`ProbeCosine` whose runs under 400 optimizer steps read the probe by min/10 (the base
    of ``--base-short-rule min/10``; `hpenv.base.BaseConfig.short_rule`)."""

    name: str = "probe_cosine_short"
    short_rule: SuggestionRule | None = "min/10"
