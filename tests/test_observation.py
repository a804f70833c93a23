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
