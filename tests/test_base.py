"""The base schedule anchored at the probe, and the residual rate action over it."""

from __future__ import annotations

import math

import pytest

from hpenv.base import MAX_OFFSET, BaseConfig, BaseSchedule, ResidualRate
from hpenv.probe import ProbeResult


def _probe(best_lr: float = 1e-2) -> ProbeResult:
    lrs = [1e-6, 1e-5, 1e-4, 1e-3, best_lr, 1e-1]
    smoothed = [2.0, 2.0, 1.8, 1.2, 0.5, 8.0]
    return ProbeResult(lrs, smoothed, smoothed, 4, 5, 8, 5, 1e-6, 1.0)


def test_base_is_the_probes_reading_decayed_after_the_probe():
    base = BaseConfig().schedule(_probe(), start_lr=1e-3, p0=0.1)
    assert base.anchor == pytest.approx(1e-2 / 30)  # the lowest-loss rate / 30
    assert base.lr(0.0) == base.lr(0.1) == pytest.approx(1e-2 / 30)
    assert base.lr(0.55) == pytest.approx(0.5e-2 / 30)  # halfway through the rest
    assert base.lr(1.0) == pytest.approx(0.0, abs=1e-12)
    constant = BaseConfig(rule="min/30", decay="constant").schedule(_probe(), 1e-3, 0.1)
    assert constant.lr(0.9) == pytest.approx(1e-2 / 30)


def test_base_falls_back_to_the_start_when_the_probe_says_nothing():
    flat = ProbeResult([1e-6, 1e-5, 1e-4], [1.0] * 3, [1.0] * 3, 1, None, 3, 2, 1e-6, 1e-4)
    assert BaseConfig().schedule(flat, start_lr=3e-4, p0=0.05).anchor == pytest.approx(3e-4)
    assert BaseConfig().schedule(None, start_lr=3e-4, p0=0.0).anchor == pytest.approx(3e-4)


def test_a_short_run_reads_the_probe_by_the_short_rule():
    """BaseConfig.short_rule: runs under short_steps optimizer steps read the probe their
    own way; runs of unknown length, and every run without a short rule, read ``rule``."""
    from hpenv.hyperparams import HParams
    from hpenv.plan import plan_episode

    config = BaseConfig(short_rule="min/10", short_steps=300)
    assert config.schedule(_probe(), 1e-3, 0.1, steps=299).anchor == pytest.approx(1e-2 / 10)
    assert config.schedule(_probe(), 1e-3, 0.1, steps=300).anchor == pytest.approx(1e-2 / 30)
    assert config.schedule(_probe(), 1e-3, 0.1).anchor == pytest.approx(1e-2 / 30)
    assert BaseConfig().schedule(_probe(), 1e-3, 0.1, steps=10).anchor == pytest.approx(1e-2 / 30)
    # schedule_for: the run's steps are its plan's budget over its batch size.
    plan = plan_episode(budget=200 * 32, decisions=4, task_val_size=100, probe=20 * 32)
    base = config.schedule_for(_probe(), HParams(lr=1e-3, batch_size=32), plan)
    assert (base.anchor, base.p0) == (pytest.approx(1e-2 / 10), pytest.approx(0.1))
    longer = config.schedule_for(_probe(), HParams(lr=1e-3, batch_size=16), plan)
    assert longer.anchor == pytest.approx(1e-2 / 30)  # 400 steps: the long-run rule
    for bad, message in (
        ({"short_rule": "min/7"}, "rule must be one of"),
        ({"short_steps": 0}, ">= 1"),
        ({"short_steps": 2.5}, "an int"),
    ):
        with pytest.raises(ValueError, match=message):
            BaseConfig(**bad)  # type: ignore[arg-type]


def test_neutral_actions_follow_the_base_exactly_and_others_steer_around_it():
    base = BaseSchedule(1e-3, 0.1)
    residual = ResidualRate()
    for p in (0.1, 0.3, 0.6, 0.9):
        assert residual.step(0.0, base.lr(p)) == base.lr(p)
    assert residual.step(1.0, 1e-3) == pytest.approx(3e-3)  # x3 at most per decision
    assert residual.step(-0.5, 1e-3) == pytest.approx(1e-3 * math.sqrt(3))
    for _ in range(20):
        residual.step(1.0, 1e-3)
    assert residual.offset == pytest.approx(MAX_OFFSET)
    assert residual.rate(1e-3) == pytest.approx(1.0)  # x1000, and the range's top
    with pytest.raises(ValueError, match="finite"):
        residual.step(math.nan, 1e-3)


def test_steer_range_bounds_the_offset_either_way():
    assert BaseConfig().residual().max_offset == pytest.approx(MAX_OFFSET)
    residual = BaseConfig(steer_range=10.0).residual()
    for _ in range(5):
        residual.step(1.0, 1e-3)
    assert residual.rate(1e-3) == pytest.approx(1e-2)  # x10, not x243
    for _ in range(10):
        residual.step(-1.0, 1e-3)
    assert residual.rate(1e-3) == pytest.approx(1e-4)
    for bad in (1.0, 0.5, math.inf, math.nan):
        with pytest.raises(ValueError, match="steer_range"):
            BaseConfig(steer_range=bad)
        with pytest.raises(ValueError, match="unprobed_steer_range"):
            BaseConfig(unprobed_steer_range=bad)


def test_absolute_steering_sets_the_offset_so_a_constant_bias_does_not_accumulate():
    config = BaseConfig(steer_range=10.0, steer_mode="absolute")
    residual = config.residual()
    assert residual.step(0.0, 1e-3) == 1e-3  # the neutral action: the base
    for _ in range(20):  # a small constant bias: a small constant offset, not a drift
        rate = residual.step(0.1, 1e-3)
    assert rate == pytest.approx(1e-3 * 10**0.1)
    assert residual.step(1.0, 1e-3) == pytest.approx(1e-2)  # the range's top at once
    assert residual.step(-0.5, 1e-3) == pytest.approx(1e-3 / math.sqrt(10))
    increment = BaseConfig(steer_range=10.0).residual()
    for _ in range(30):
        rate = increment.step(0.1, 1e-3)
    assert rate == pytest.approx(1e-2)  # the same bias, accumulated, runs into the bound
    with pytest.raises(ValueError, match="steer_mode"):
        BaseConfig(steer_mode="position")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode"):
        ResidualRate(1.0, "position")  # type: ignore[arg-type]


def test_runs_the_probe_did_not_anchor_can_keep_a_range_of_their_own():
    config = BaseConfig(steer_range=10.0, unprobed_steer_range=1000.0)
    flat = ProbeResult([1e-6, 1e-3, 1e-1], [2.0] * 3, [2.0] * 3, 1, 2, 3, 3, 1e-6, 1.0)
    assert flat.doubt() is not None
    probed, unprobed = config.schedule(_probe(), 1e-3, 0.1), config.schedule(flat, 1e-3, 0.1)
    assert probed.probed
    assert not unprobed.probed
    assert unprobed.anchor == 1e-3
    assert not config.schedule(None, 1e-3, 0.0).probed
    assert config.max_offset(probed) == pytest.approx(math.log(10.0))  # the probe's base
    assert config.max_offset(None) == pytest.approx(math.log(1000.0))  # no base
    assert config.max_offset(unprobed) == pytest.approx(math.log(1000.0))  # the start's base
    unset = BaseConfig(steer_range=10.0)  # every run: steer_range
    assert unset.max_offset(unprobed) == unset.max_offset(probed) == pytest.approx(math.log(10))
    residual = config.residual()
    residual.reset(config.max_offset(None))
    for _ in range(10):
        residual.step(1.0, 1e-5)
    assert residual.rate(1e-5) == pytest.approx(1e-2)  # climbs past x10, to x1000
    residual.reset(config.max_offset(probed))
    for _ in range(10):
        residual.step(1.0, 1e-5)
    assert residual.offset == pytest.approx(math.log(10))
    assert residual.rate(1e-5) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="max_offset"):
        residual.reset(0.0)


def test_a_layout_2_policy_steers_around_the_base_and_is_saved_with_its_layout(tmp_path):
    import numpy as np
    from policies import make_policy

    from agents.policy import load_policy
    from agents.policy.artifact import IncompatiblePolicyError, PolicyActor
    from agents.policy.step import PolicyStep
    from hpenv.hyperparams import HParams
    from hpenv.observation import IntervalMetrics

    policy = make_policy(obs_version=2)
    assert policy.metadata.obs_size == 33
    assert policy.metadata.action_kind == "residual"
    loaded = load_policy(policy.save(tmp_path / "v2.pt"))
    assert (loaded.metadata.obs_version, loaded.metadata.action_kind) == (2, "residual")
    step = PolicyStep(loaded)
    assert step.needs_probe
    base = BaseConfig().schedule(_probe(), 1e-3, 0.1)
    hparams = HParams(lr=base.anchor)  # the run starts at the base's first rate
    step.start(2.3, 0.1, hparams, probe=_probe(), base=base)
    metrics = IntervalMetrics(0.2, 2.0, 0.1, 1.0, 1e-3, 2.1, 0.3, hparams, base_lr=8e-4)
    chosen = step.decide(metrics)
    assert chosen.lr == pytest.approx(8e-4 * math.exp(step.residual.offset))
    assert step.residual.shift == 0.0
    with pytest.raises(ValueError, match="base"):
        step.decide(IntervalMetrics(0.3, 2.0, 0.1, 1.0, 1e-3, 2.1, 0.3, hparams))
    with pytest.raises(IncompatiblePolicyError, match="layout v2"):
        PolicyActor(loaded)(np.zeros(20, dtype=np.float32))  # a layout-1 run's observation


def test_a_layout_2_step_follows_a_rate_a_restart_or_a_rollback_cut():
    """`ResidualRate.follow` in `PolicyStep`: a run started below its base's first rate (a
    restart cut it) or trained below the rate the step gave (a rollback cut it) keeps the
    cut in every later rate (base x exp(offset + shift)); the shift resumes with the
    step's state, and an older state without it reads as no shift."""
    from policies import make_policy

    from agents.policy.step import PolicyStep
    from hpenv.hyperparams import HParams
    from hpenv.observation import IntervalMetrics

    base = BaseConfig().schedule(_probe(), 1e-3, 0.1)
    step = PolicyStep(make_policy(obs_version=2))
    step.start(2.3, 0.1, HParams(lr=base.anchor / 10), probe=_probe(), base=base)  # restarted
    assert step.residual.shift == pytest.approx(math.log(0.1))

    def decide(lr: float, base_lr: float) -> float:
        metrics = IntervalMetrics(0.4, 2.0, 0.1, 1.0, 1e-3, 2.1, 0.3, HParams(lr=lr),
                                  base_lr=base_lr)  # fmt: skip
        return step.decide(metrics).lr

    first = decide(base.anchor / 10, 8e-4)  # trained as started: no further shift
    assert first == pytest.approx(8e-4 / 10 * math.exp(step.residual.offset))
    second = decide(first, 6e-4)  # trained as given
    assert step.residual.shift == pytest.approx(math.log(0.1))
    third = decide(second / 10, 4e-4)  # a rollback cut the rate the step gave by 10
    assert step.residual.shift == pytest.approx(math.log(0.01))
    assert third == pytest.approx(4e-4 / 100 * math.exp(step.residual.offset))
    resumed = PolicyStep(make_policy(obs_version=2))
    resumed.start(2.3, 0.1, HParams(lr=base.anchor), probe=_probe(), base=base)
    resumed.load_state_dict(step.state_dict())
    assert (resumed.residual.shift, resumed.residual.last_rate) == (step.residual.shift, third)
    older = {k: v for k, v in step.state_dict().items() if k not in ("shift", "last_rate")}
    resumed.load_state_dict(older)
    assert (resumed.residual.shift, resumed.residual.last_rate) == (0.0, None)
    with pytest.raises(ValueError, match="positive and finite"):
        resumed.residual.follow(math.nan)


def test_a_probe_start_moves_the_runs_rate_to_the_probes_reading():
    """`ProbeStart`: the suggestion itself (within 1), or the run's own rate kept when within
    the factor of it; the run's rate where the probe says nothing; checked values."""
    from hpenv.base import ProbeStart

    suggestion = 1e-2 / 30  # _probe's lowest-loss rate / 30
    assert ProbeStart().lr(_probe(), 3e-1) == pytest.approx(suggestion)
    assert ProbeStart().lr(_probe(), 1e-7) == pytest.approx(suggestion)
    assert ProbeStart(rule="min/10").lr(_probe(), 1.0) == pytest.approx(1e-3)
    within = ProbeStart(within=10.0)
    assert within.lr(_probe(), 1e-3) == pytest.approx(1e-3)  # 3x the suggestion: kept
    assert within.lr(_probe(), 3e-1) == pytest.approx(10 * suggestion)  # 900x: moved
    assert within.lr(_probe(), 1e-7) == pytest.approx(suggestion / 10)
    flat = ProbeResult([1e-6, 1e-5, 1e-4], [1.0] * 3, [1.0] * 3, 1, None, 3, 2, 1e-6, 1e-4)
    assert ProbeStart().lr(flat, 3e-1) == 3e-1
    assert ProbeStart().lr(None, 3e-1) == 3e-1
    assert ProbeStart.from_dict(within.to_dict()) == within
    for bad in ({"within": 0.5}, {"within": math.inf}, {"within": True}, {"rule": "min/7"}):
        with pytest.raises(ValueError, match=r"within must|rule must"):
            ProbeStart(**bad)
    with pytest.raises(ValueError, match="mapping of rule and within"):
        ProbeStart.from_dict({"rule": "min/30", "code": "x"})
