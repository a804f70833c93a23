"""FeatureTracker (the one observation implementation) and reward functions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpenv.hyperparams import TUNABLES, HParams
from hpenv.observation import (
    FEATURES,
    INDEX,
    OBS_HIGH,
    OBS_LOW,
    OBS_SIZE,
    FeatureTracker,
    IntervalMetrics,
)
from hpenv.rewards import make_reward

HP = HParams(lr=1e-3)


def metrics(**changes) -> IntervalMetrics:
    base = dict(progress=0.25, train_loss=1.0, train_loss_std=0.1, grad_norm=2.0,
                update_ratio=1e-3, val_loss=1.2, val_accuracy=0.6, hparams=HP)  # fmt: skip
    return IntervalMetrics(**{**base, **changes})


def test_layout_is_documented_and_bounded():
    assert OBS_SIZE == len(FEATURES) == 20
    assert (OBS_LOW < OBS_HIGH).all()
    import hpenv.observation as module

    for i, feature in enumerate(FEATURES):
        assert f"| {i} | {feature.name} |" in module.__doc__


def test_reset_observation():
    tracker = FeatureTracker()
    obs = tracker.reset(val_loss=2.3, val_accuracy=0.1, hparams=HP)
    assert obs.dtype == np.float32
    assert obs[INDEX["val_accuracy"]] == pytest.approx(0.1)
    assert obs[INDEX["lr"]] == pytest.approx(TUNABLES["lr"].normalise(1e-3))
    zero = [n for n in INDEX if n not in ("val_accuracy", *TUNABLES)]
    assert all(obs[INDEX[n]] == 0 for n in zero)


def test_features_are_relative_to_initial_and_previous_values():
    tracker = FeatureTracker()
    tracker.reset(val_loss=2.0, val_accuracy=0.1, hparams=HP)
    obs = tracker.update(metrics(train_loss=1.0, val_loss=1.0, grad_norm=4.0))
    assert obs[INDEX["progress"]] == pytest.approx(0.25)
    assert obs[INDEX["train_loss_rel"]] == pytest.approx(math.log(0.5))
    assert obs[INDEX["val_loss_trend"]] == pytest.approx(math.log(0.5))
    assert obs[INDEX["grad_norm_rel"]] == pytest.approx(0.0)
    assert obs[INDEX["update_ratio"]] == pytest.approx(0.0)
    assert obs[INDEX["loss_spread"]] == pytest.approx(0.1)
    obs = tracker.update(metrics(progress=0.5, train_loss=0.5, val_loss=1.5, grad_norm=1.0,
                                 val_accuracy=0.7, hparams=HP.replace(lr=1e-2)))  # fmt: skip
    assert obs[INDEX["train_loss_trend"]] == pytest.approx(math.log(0.5))
    assert obs[INDEX["val_accuracy_change"]] == pytest.approx(0.1)
    assert obs[INDEX["generalisation_gap"]] == pytest.approx(math.log(3.0))
    assert obs[INDEX["grad_norm_rel"]] == pytest.approx(math.log(0.25))
    assert obs[INDEX["since_best_val"]] == pytest.approx(0.25)
    assert obs[INDEX["val_above_best"]] == pytest.approx(math.log(1.5))
    lr_range = math.log(TUNABLES["lr"].high / TUNABLES["lr"].low)
    assert obs[INDEX["lr_vs_initial"]] == pytest.approx(math.log(10) / lr_range)


def test_non_finite_and_extreme_values_stay_in_bounds():
    tracker = FeatureTracker()
    tracker.reset(val_loss=1.0, val_accuracy=0.5, hparams=HP)
    for bad in (math.nan, math.inf, 0.0, 1e30):
        obs = tracker.update(metrics(train_loss=bad, val_loss=bad, grad_norm=bad, update_ratio=bad))
        assert np.isfinite(obs).all()
        assert ((obs >= OBS_LOW) & (obs <= OBS_HIGH)).all()
    diverged = tracker.mark_diverged()
    assert diverged[INDEX["diverged"]] == 1.0


def test_state_dict_round_trip():
    tracker = FeatureTracker()
    tracker.reset(val_loss=2.0, val_accuracy=0.1, hparams=HP)
    tracker.update(metrics())
    clone = FeatureTracker()
    clone.load_state_dict(tracker.state_dict())
    m = metrics(progress=0.5, val_loss=0.9)
    np.testing.assert_array_equal(tracker.update(m), clone.update(m))


def test_update_before_reset_is_an_error():
    with pytest.raises(RuntimeError, match="reset"):
        FeatureTracker().update(metrics())


def test_rewards_telescope_and_divergence_cancels():
    losses = [2.0, 1.0, 0.8, 0.5]
    reward = make_reward("log_val_loss")
    reward.reset(losses[0], 0.1)
    total = sum(reward.step(v, 0.5, last=i == 2) for i, v in enumerate(losses[1:]))
    assert total == pytest.approx(math.log(losses[0] / losses[-1]))
    assert reward.diverged(worst_loss=230.0) == pytest.approx(-(math.log(230.0 / 0.5)) - 1.0)
    assert reward.episode_return < -1.0

    accuracy = make_reward("val_accuracy")
    accuracy.reset(2.0, 0.1)
    assert accuracy.step(1.0, 0.4, last=False) == pytest.approx(0.3)
    assert accuracy.diverged(worst_loss=230.0) == pytest.approx(-0.4 - 0.1)

    final = make_reward("final_accuracy")
    final.reset(2.0, 0.1)
    assert final.step(1.0, 0.4, last=False) == 0.0
    assert final.step(1.0, 0.7, last=True) == pytest.approx(0.7)
    assert make_reward("final_accuracy").diverged(worst_loss=230.0) == pytest.approx(-0.1)
    with pytest.raises(ValueError, match="unknown reward"):
        make_reward("nope")
    with pytest.raises(ValueError, match="divergence_penalty"):
        make_reward("log_val_loss", divergence_penalty=-1.0)


def _probe_result():
    from hpenv.probe import ProbeResult

    lrs = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
    smoothed = [2.0, 2.0, 1.8, 1.0, 0.5, 8.0]
    return ProbeResult(
        lrs=lrs, losses=smoothed, smoothed=smoothed, best=4, stopped=5, steps=8, kept=5,
        lr_min=1e-6, lr_max=1.0,
    )  # fmt: skip


def test_layout_2_appends_the_probe_features():
    import math

    from hpenv.observation import LAYOUTS, PROBE_FEATURES, layout_bounds, probe_features

    assert len(LAYOUTS[1]) == 20
    assert len(LAYOUTS[2]) == 20 + len(PROBE_FEATURES) == 33
    low, high = layout_bounds(2)
    assert low.shape == high.shape == (33,)
    values = probe_features(_probe_result(), lr=1e-3, base_lr=2e-3, anchor=4e-3)
    assert values["probe_found"] == 1.0
    assert values["curve_0.001"] == pytest.approx(math.log(0.5))  # 1.0 / 2.0
    assert values["curve_0.1"] == pytest.approx(math.log(4.0))  # where the sweep stopped
    assert values["curve_1"] == pytest.approx(math.log(4.0))  # beyond it: its last value
    assert values["probe_depth"] == pytest.approx(math.log(0.25))
    assert values["lr_vs_probe_best"] == pytest.approx(-1 / 6)  # 1e-3 vs 1e-2: a decade
    assert values["lr_vs_probe_divergence"] == pytest.approx(-2 / 6)
    assert values["lr_vs_base"] == pytest.approx(math.log(0.5) / math.log(1000))
    assert values["base_decay"] == pytest.approx(0.5)
    nothing = probe_features(None, lr=1e-3, base_lr=None, anchor=None)
    assert nothing["probe_found"] == 0.0
    assert nothing["base_decay"] == 1.0


def test_layout_2_tracker_keeps_its_probe_across_a_resume():
    from hpenv.observation import FeatureTracker, IntervalMetrics, layout_bounds

    tracker = FeatureTracker(version=2)
    hparams = HParams(lr=1e-3)
    first = tracker.reset(2.3, 0.1, hparams, probe=_probe_result(), anchor=1e-3)
    assert first.shape == (33,)
    metrics = IntervalMetrics(0.1, 2.0, 0.1, 1.0, 1e-3, 2.1, 0.3, hparams, base_lr=1e-3)
    resumed = FeatureTracker(version=2)
    resumed.load_state_dict(tracker.state_dict())
    low, high = layout_bounds(2)
    obs = tracker.update(metrics)
    assert np.array_equal(obs, resumed.update(metrics))
    assert (obs >= low).all()
    assert (obs <= high).all()
    with pytest.raises(ValueError, match="unknown observation layout 4"):
        FeatureTracker(version=4)


def test_layout_3_adds_whether_the_optimizer_is_sgd_after_layout_1():
    from hpenv.observation import FEATURES, LAYOUTS, FeatureTracker, IntervalMetrics

    assert LAYOUTS[3][: len(FEATURES)] == FEATURES
    assert [f.name for f in LAYOUTS[3][len(FEATURES) :]] == ["optimizer_sgd"]
    for optimizer, flag in (("sgd", 1.0), ("adam", 0.0), ("adamw", 0.0)):
        hparams = HParams(optimizer=optimizer, lr=1e-2)
        one, three = FeatureTracker(version=1), FeatureTracker(version=3)
        first = three.reset(2.3, 0.1, hparams)
        assert first.shape == (21,)
        assert first[20] == flag
        assert np.array_equal(first[:20], one.reset(2.3, 0.1, hparams))
        metrics = IntervalMetrics(0.1, 2.0, 0.1, 1.0, 1e-3, 2.1, 0.3, hparams)
        obs = three.update(metrics)
        assert obs[20] == flag
        assert np.array_equal(obs[:20], one.update(metrics))
