"""The base schedule a layout-2 policy steers around, and its residual rate action.

After the probe (`hpenv.probe`), a run's base schedule is a fixed reading of the
probe's curve, decayed over the rest of the budget:

    base(p) = anchor * (1 + cos(pi * (p - p0) / (1 - p0))) / 2     (decay "cosine")
    base(p) = anchor                                               (decay "constant")

with ``p`` the progress at the start of an interval (the piecewise-constant,
left-point convention of every schedule in the harness), ``p0`` the progress
when the probe ended, and ``anchor`` the probe's suggestion by ``rule``
(`hpenv.probe.ProbeResult.suggestion`; the run's own starting rate when the
probe found nothing). The base alone is the harness method ``probe_cosine``.

A policy's rate action is residual over it (`ResidualRate`): the action moves
an offset ``o`` (``o += a * ln 3`` per decision, at most x3 either way, as
layout 1's rate action; or, with `BaseConfig.steer_mode` ``absolute``, sets it:
``o = a * ln(steer_range)``; kept within `BaseConfig.steer_range` of the base,
x1000 by default; `BaseConfig.unprobed_steer_range` may give runs the probe did not
anchor a range of their own), and the rate of the
next interval is ``base(p) * exp(o)``, clipped to the tunable range. The
neutral action (0) keeps ``o = 0``: the run follows the base exactly.

A deployed run's rate can also be moved by what is not the policy: a restart or a
rollback (`hpenv.restart`) cuts it. The residual follows such a move
(`ResidualRate.follow`): the factor between the rate the run trained with and the rate
the residual last gave becomes a standing shift ``s``, and the rate is
``base(p) * exp(o + s)``, so the cut persists instead of the next decision steering
back to the base. Meta-training moves no rate behind the residual's back (``s = 0``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from hpenv.hyperparams import TUNABLES, ActionMode, HParams, apply_action, decode_action
from hpenv.plan import EpisodePlan
from hpenv.probe import (
    DEFAULT_RULE,
    SUGGESTION_RULES,
    ProbeConfig,
    ProbeResult,
    SuggestionRule,
    probe_run,
)

if TYPE_CHECKING:
    from hpenv.training import TrainingRun

Decay = Literal["cosine", "constant"]
#: How an action moves the offset: ``increment`` adds ``a * ln 3``; ``absolute`` sets
#: ``a * ln(range)`` (a constant bias in the actions is then a constant offset, not a drift).
SteerMode = Literal["increment", "absolute"]
STEER_MODES: tuple[str, ...] = ("increment", "absolute")
#: How far a policy's rate may run from the base, either way, by default (`BaseConfig.steer_range`).
DEFAULT_STEER_RANGE = 1000.0
#: Largest offset from the base by default: ln of `DEFAULT_STEER_RANGE`.
MAX_OFFSET = math.log(DEFAULT_STEER_RANGE)


@dataclass(frozen=True)
class BaseConfig:
    """How the base schedule is read off the probe.

    Attributes:
        rule: The probe's suggestion the base starts from (`hpenv.probe.DEFAULT_RULE`,
            the lowest-loss rate / 30).
        decay: ``cosine`` (to 0 at the end of the budget) or ``constant``.
        short_rule: The suggestion of runs shorter than ``short_steps`` optimizer
            steps (None: ``rule`` for every run). A short run wants a higher rate:
            on the training-side tasks cut to 114-270 steps, min/10 beat min/30
            by 0.8-6 points, while on their full runs (500-1,200 steps) min/30 won
            (docs/results.md section 7).
        short_steps: Runs of fewer optimizer steps than this read ``short_rule``.
        steer_range: The policy's rate stays within this factor of the base, either
            way (`ResidualRate`; default x1000). Policies meta-trained with x1000 drifted
            to 200-300x above their base; x10 kept them safe (docs/results.md section 7).
        unprobed_steer_range: The range of a run the probe did not anchor (no probe, or
            one that suggested nothing: its base is the run's own starting rate, which may
            be far off); None: ``steer_range`` for every run. Measured with x10 and x1000
            here (`probebound`, docs/results.md section 7): no better than x10 everywhere.
        steer_mode: ``increment`` (each action moves the offset by at most ln 3) or
            ``absolute`` (each action sets the offset within the range); see the
            module docstring. Measured with x10 (`absolute`, docs/results.md section 7):
            steadier across meta-training seeds, 0.7-1.2 points below ``increment``.
    """

    rule: SuggestionRule = DEFAULT_RULE
    decay: Decay = "cosine"
    short_rule: SuggestionRule | None = None
    short_steps: int = 400
    steer_range: float = DEFAULT_STEER_RANGE
    unprobed_steer_range: float | None = None
    steer_mode: SteerMode = "increment"

    def __post_init__(self) -> None:
        for rule in (self.rule, self.short_rule or self.rule):
            if rule not in SUGGESTION_RULES:
                raise ValueError(f"rule must be one of {SUGGESTION_RULES}, got {rule!r}")
        if self.decay not in ("cosine", "constant"):
            raise ValueError(f"decay must be cosine or constant, got {self.decay!r}")
        if isinstance(self.short_steps, bool) or not isinstance(self.short_steps, int):
            raise ValueError(f"short_steps must be an int, got {self.short_steps!r}")
        if self.short_steps < 1:
            raise ValueError(f"short_steps must be >= 1, got {self.short_steps}")
        if self.steer_mode not in STEER_MODES:
            raise ValueError(f"steer_mode must be one of {STEER_MODES}, got {self.steer_mode!r}")
        ranges = {"steer_range": self.steer_range}
        if self.unprobed_steer_range is not None:
            ranges["unprobed_steer_range"] = self.unprobed_steer_range
        for name, value in ranges.items():
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 1.0):
                raise ValueError(f"{name} must be a finite factor > 1, got {value!r}")

    def residual(self) -> ResidualRate:
        """A run's residual rate action, kept within ``steer_range`` of the base (each run
        sets its own range at `ResidualRate.reset` with `max_offset`)."""
        return ResidualRate(math.log(self.steer_range), self.steer_mode)

    def max_offset(self, base: BaseSchedule | None) -> float:
        """The largest offset of a run over ``base`` (its `schedule`; None: it has none):
        ln ``steer_range`` where the probe anchored the base (`BaseSchedule.probed`),
        ln ``unprobed_steer_range`` (when set) where the base is the run's own starting
        rate. The base records the decision, so the range and the anchor never disagree."""
        if self.unprobed_steer_range is None or (base is not None and base.probed):
            return math.log(self.steer_range)
        return math.log(self.unprobed_steer_range)

    def _suggestion(self, probe: ProbeResult | None, steps: int | None) -> float | None:
        """The probe's usable suggestion for a run of ``steps`` steps (`usable_suggestion`)."""
        return usable_suggestion(probe, self.rule_for(steps))

    def rule_for(self, steps: int | None) -> SuggestionRule:
        """The reading of a run of ``steps`` optimizer steps (None: unknown, ``rule``)."""
        if self.short_rule is not None and steps is not None and steps < self.short_steps:
            return self.short_rule
        return self.rule

    def schedule(
        self, probe: ProbeResult | None, start_lr: float, p0: float, steps: int | None = None
    ) -> BaseSchedule:
        """The base of a run of ``steps`` optimizer steps (None: unknown) whose probe
        (None: none) ended at progress ``p0``.

        The anchor is the probe's suggestion by `rule_for` the run's length, or
        ``start_lr`` when the probe found nothing usable (no probe, no finite loss,
        or `ProbeResult.doubt`).
        """
        suggested = self._suggestion(probe, steps)
        anchor = start_lr if suggested is None else suggested
        return BaseSchedule(TUNABLES["lr"].clip(anchor), p0, self.decay, suggested is not None)

    def schedule_for(
        self, probe: ProbeResult | None, start: HParams, plan: EpisodePlan
    ) -> BaseSchedule:
        """`schedule` for a run of ``plan`` started at ``start`` (its rate; its batch size
        gives the run's optimizer steps)."""
        steps = plan.budget // max(start.batch_size, 1)
        return self.schedule(probe, start.lr, plan.probe / plan.budget, steps)


def usable_suggestion(probe: ProbeResult | None, rule: SuggestionRule) -> float | None:
    """The probe's suggestion by ``rule``, or None where it says nothing usable (no probe,
    `hpenv.probe.ProbeResult.doubt`, or not a positive finite rate)."""
    if probe is None or probe.doubt() is not None:
        return None
    suggested = probe.suggestion(rule)
    return suggested if math.isfinite(suggested) and suggested > 0 else None


@dataclass(frozen=True)
class ProbeStart:
    """Where a layout-1 run starts after its probe: the probe sets the rate's scale.

    A layout-1 policy steers the rate multiplicatively from wherever it starts, at
    most x3 per decision, so a start 30x too high costs it most of a short run
    (docs/results.md section 7). With a `ProbeStart` the run probes first (as a
    layout-2 run does, `hpenv.probe`) and starts at its own rate moved to within
    ``within`` of the probe's suggestion by ``rule``: ``within=1`` starts at the
    suggestion whatever the user gave, a larger factor keeps the user's rate unless the
    probe finds it more than that far off. Where the probe suggests nothing
    (`usable_suggestion`), or the run is too short for one, the run starts at its own
    rate. The policy's observation and actions are unchanged (layout 1).

    >>> ProbeStart(within=10).lr(None, 0.3)  # no probe: the user's rate
    0.3

    Attributes:
        rule: The probe's reading (`hpenv.probe.DEFAULT_RULE`, the base's).
        within: Factor >= 1 around the suggestion the start is moved into.
    """

    rule: SuggestionRule = DEFAULT_RULE
    within: float = 1.0

    def __post_init__(self) -> None:
        if self.rule not in SUGGESTION_RULES:
            raise ValueError(f"rule must be one of {SUGGESTION_RULES}, got {self.rule!r}")
        within = self.within
        if isinstance(within, bool) or not isinstance(within, int | float):
            raise ValueError(f"within must be a factor >= 1, got {within!r}")
        if not (math.isfinite(within) and within >= 1.0):
            raise ValueError(f"within must be a finite factor >= 1, got {within!r}")

    def lr(self, probe: ProbeResult | None, start_lr: float) -> float:
        """The run's starting rate after ``probe`` (None: it had none) for a user's
        ``start_lr``: moved to within ``within`` of the suggestion, clipped to the
        tunable range; ``start_lr`` where the probe suggests nothing."""
        suggested = usable_suggestion(probe, self.rule)
        if suggested is None:
            return start_lr
        moved = min(max(start_lr, suggested / self.within), suggested * self.within)
        return float(TUNABLES["lr"].clip(moved))

    def to_dict(self) -> dict[str, Any]:
        """Plain values (a policy file's ``deploy`` entry); `from_dict` reads them back."""
        return {"rule": self.rule, "within": float(self.within)}

    @classmethod
    def from_dict(cls, values: Any) -> ProbeStart:
        """A `ProbeStart` from `to_dict`'s values (checked).

        Raises:
            ValueError: Not a mapping of ``rule`` and ``within``, or a bad value.
        """
        if not isinstance(values, dict) or set(values) - {"rule", "within"}:
            raise ValueError(f"a probe start is a mapping of rule and within, got {values!r}")
        return cls(**values)


@dataclass(frozen=True)
class BaseSchedule:
    """One run's base: the rate at each progress (see the module docstring).

    ``probed``: the probe's suggestion anchored it (False: the run's own starting rate,
    because it had no probe or the probe suggested nothing; `BaseConfig.max_offset`).
    """

    anchor: float
    p0: float
    decay: Decay = "cosine"
    probed: bool = False

    def lr(self, progress: float) -> float:
        """The base rate of the interval that starts at ``progress``."""
        if self.decay == "constant" or progress <= self.p0:
            return self.anchor
        t = min((progress - self.p0) / max(1.0 - self.p0, 1e-12), 1.0)
        return self.anchor * 0.5 * (1.0 + math.cos(math.pi * t))


class ResidualRate:
    """A policy's rate action as an offset from the base (see the module docstring).

    Args:
        max_offset: The largest offset either way (ln of the factor;
            `BaseConfig.residual` builds it from ``steer_range``).
        mode: ``increment`` (the action moves the offset) or ``absolute`` (it sets it).
    """

    def __init__(self, max_offset: float = MAX_OFFSET, mode: SteerMode = "increment") -> None:
        if mode not in STEER_MODES:
            raise ValueError(f"mode must be one of {STEER_MODES}, got {mode!r}")
        self.mode = mode
        self.reset(max_offset)

    def reset(self, max_offset: float | None = None) -> None:
        """Start a run at offset 0; ``max_offset``: its range (`BaseConfig.max_offset`),
        if it differs from the last run's."""
        if max_offset is not None:
            if not max_offset > 0:
                raise ValueError(f"max_offset must be > 0, got {max_offset}")
            self.max_offset = max_offset
        self.offset = 0.0
        #: ln of the factor by which a restart or a rollback moved the rate (`follow`).
        self.shift = 0.0
        #: The rate the run trains with as far as the residual knows: the one it last
        #: gave (`step`) or was told (`follow`); None before either.
        self.last_rate: float | None = None

    def follow(self, trained: float, expected: float | None = None) -> None:
        """The run trained with the rate ``trained`` where the residual expected
        ``expected`` (default: `last_rate`, the one it gave): a restart or a rollback moved
        it (`hpenv.restart`). Later rates move by the same factor (``shift``), so the move
        persists; a relative difference within 1e-6 is no move."""
        if not (math.isfinite(trained) and trained > 0):
            raise ValueError(f"a trained rate must be positive and finite, got {trained}")
        expected = self.last_rate if expected is None else expected
        if expected is not None and expected > 0 and abs(trained / expected - 1.0) > 1e-6:
            self.shift += math.log(trained / expected)
        self.last_rate = trained

    def step(self, action: float, base_lr: float) -> float:
        """Move (``increment``) or set (``absolute``) the offset by ``action`` in [-1, 1];
        the rate ``base_lr * exp(offset + shift)``."""
        if not math.isfinite(action):
            raise ValueError(f"actions must be finite, got {action}")
        action = max(-1.0, min(1.0, action))
        if self.mode == "absolute":
            self.offset = action * self.max_offset
        else:
            move = action * TUNABLES["lr"].max_step
            self.offset = max(-self.max_offset, min(self.max_offset, self.offset + move))
        self.last_rate = self.rate(base_lr)
        return self.last_rate

    def rate(self, base_lr: float) -> float:
        """The rate at the current offset (and shift) over ``base_lr``, clipped to the
        tunable range."""
        return float(TUNABLES["lr"].clip(base_lr * math.exp(self.offset + self.shift)))


def probe_and_base(
    run: TrainingRun,
    plan: EpisodePlan,
    start: HParams,
    probe: ProbeConfig | None,
    base: BaseConfig | None,
    probe_start: ProbeStart | None = None,
) -> tuple[ProbeResult | None, BaseSchedule | None]:
    """Start a run's probe part: its probe, when ``plan`` reserves one (`probe_run`: the
    reserved samples at ``start``'s batch size), then its base (`BaseConfig.schedule_for`),
    whose first rate the run takes; a layout-1 run (``base`` None) with ``probe_start``
    takes that rate (`ProbeStart.lr`). None for what the run has not got.
    `hpenv.env.HPTuneEnv` and the job driver (`agents.deploy.drive`) both start their runs
    with it."""
    found = None
    if probe is not None and plan.probe:
        batch = min(start.batch_size, run.data.train_x.shape[0])
        found = probe_run(run, probe, plan.probe // batch)
    schedule = None if base is None else base.schedule_for(found, start, plan)
    lr = rate_after_probe(found, start.lr, schedule, probe_start)
    if lr is not None:
        run.set_hparams(lr=lr)
    return found, schedule


def rate_after_probe(
    probe: ProbeResult | None,
    start_lr: float,
    base: BaseSchedule | None,
    probe_start: ProbeStart | None,
) -> float | None:
    """The rate a run takes once its probe is done (``probe`` None: it had none): its
    base's first (layout 2), a layout-1 run's `ProbeStart.lr` from ``start_lr`` (its own
    starting rate), or None: the run keeps its rate. Every driver of a run with a probe
    (`probe_and_base`, the population engine, the harness, `HyperController`) starts it
    this way."""
    if base is not None:
        return base.lr(base.p0)
    if probe_start is not None and probe is not None:
        return probe_start.lr(probe, start_lr)
    return None


def apply_residual(
    tuned: Sequence[str],
    action_mode: ActionMode,
    action: Any,
    hparams: HParams,
    residual: ResidualRate,
    base_lr: float,
) -> HParams:
    """The hyperparameters after one action of a layout-2 policy.

    The rate is ``base_lr`` moved by the residual's offset (`ResidualRate.step`);
    every other tuned hyperparameter moves as in `hpenv.hyperparams.apply_action`.
    """
    values = decode_action(tuned, action_mode, action)
    others = [(n, v) for n, v in zip(tuned, values, strict=True) if n != "lr"]
    new = apply_action([n for n, _ in others], "continuous", [v for _, v in others], hparams)
    if "lr" in tuned:
        new = new.replace(lr=residual.step(float(values[list(tuned).index("lr")]), base_lr))
    return new
