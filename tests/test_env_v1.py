"""HPTuneEnv-v1 (observation layout 2): the probe, the base, residual actions, the paired reward."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import hpenv  # noqa: F401  (registers the ids)
from hpenv.base import BaseConfig
from hpenv.env import Around, HPTuneEnv
from hpenv.probe import ProbeConfig

#: digits at 4 epochs: 180 optimizer steps at batch 32, a 20-step probe, 4 decisions.
V1 = {"budget_epochs": 4, "decisions": 4, "device": "cpu"}


def _rollout(env: HPTuneEnv, seed: int, action: float, start_lr: float | None = None):
    options = {} if start_lr is None else {"hparams": {"lr": start_lr}}
    obs, info = env.reset(seed=seed, options=options)
    lrs, rewards, infos = [env.run.hparams.lr], [], [info]
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(np.array([action], np.float32))
        lrs.append(env.run.hparams.lr)
        rewards.append(reward)
        infos.append(info)
        done = terminated or truncated
    return lrs, rewards, infos, obs


def test_v1_ids_are_layout_2_with_a_probe_and_a_paired_reward():
    env = gym.make("HPTune-Digits-v1", **V1).unwrapped
    assert isinstance(env, HPTuneEnv)
    assert env.config.layout == 2
    assert env.config.reward == "paired_log_val_loss"
    assert env.observation_space.shape == (33,)
    assert gym.make("HPTune-Digits-v0", **V1).observation_space.shape == (20,)
    obs, info = env.reset(seed=0)
    assert obs.shape == (33,)
    assert obs[20] == 1.0  # the probe found a minimum
    assert info["probe"]["steps"] == 20
    assert env.plan.probe == 20 * 32
    assert env.run.samples_done == env.plan.probe + env.plan.interval  # probe, then warm-up
    assert info["base_lr"] == pytest.approx(env.episode.base.anchor)


def test_the_neutral_action_follows_the_base_and_ties_the_reference():
    env = HPTuneEnv("digits", **V1, probe=ProbeConfig(), base=BaseConfig(),
                    reward="paired_log_val_loss")  # fmt: skip
    lrs, rewards, infos, _ = _rollout(env, seed=0, action=0.0)
    base = env.episode.base
    assert base is not None
    budget = env.plan.budget
    for lr, info in zip(lrs[1:], infos[:-1], strict=True):  # each interval's rate
        assert lr == pytest.approx(base.lr(info["samples"] / budget))
    assert rewards == pytest.approx([0.0] * len(rewards))  # the run is its reference
    assert all("reference_val_loss" in info for info in infos[1:])


def test_the_start_no_longer_matters_and_steering_pays_against_the_base():
    env = HPTuneEnv("digits", **V1, probe=ProbeConfig(), base=BaseConfig(),
                    reward="paired_log_val_loss")  # fmt: skip
    low, _, _, _ = _rollout(env, seed=1, action=0.0, start_lr=1e-5)
    high, _, _, _ = _rollout(env, seed=1, action=0.0, start_lr=0.1)
    assert low[1:] == pytest.approx(high[1:])  # the base is the probe's, not the start's
    _, rewards, infos, _ = _rollout(env, seed=1, action=-1.0)  # steer far below the base
    final = infos[-1]
    margin = np.log(final["reference_val_loss"]) - np.log(final["val_loss"])
    assert sum(rewards) == pytest.approx(margin, abs=1e-6)  # the return is the final margin


def test_layout_2_needs_lr_tuned():
    with pytest.raises(ValueError, match="include 'lr'"):
        HPTuneEnv("digits", tuned=("momentum",), base=BaseConfig())


def test_layout_1_pairs_the_run_with_its_start_held():
    """Without a base the paired reward's reference is the run at its starting
    hyperparameters (static): the neutral action ties it, a move of the rate does not."""
    env = HPTuneEnv("digits", **V1, reward="paired_log_val_loss")
    assert env.config.layout == 1
    lrs, rewards, infos, _ = _rollout(env, seed=0, action=0.0, start_lr=3e-4)
    assert lrs == pytest.approx([3e-4] * len(lrs))
    assert rewards == pytest.approx([0.0] * len(rewards))  # the run is its reference
    assert all(i["reference_val_loss"] == pytest.approx(i["val_loss"]) for i in infos[1:])
    lrs, rewards, infos, _ = _rollout(env, seed=0, action=1.0, start_lr=3e-4)  # raise it
    assert lrs[-1] > 10 * lrs[0]
    assert env.reference is not None
    assert env.reference.hparams.lr == pytest.approx(3e-4)  # the reference kept the start
    final = infos[-1]
    margin = np.log(final["reference_val_loss"]) - np.log(final["val_loss"])
    assert abs(margin) > 1e-3
    assert sum(rewards) == pytest.approx(margin, abs=1e-6)  # the return is the final margin


def test_episodes_draw_the_users_optimizer_at_its_usual_rate():
    env = HPTuneEnv("digits", budget=600, decisions=2, device="cpu",
                    optimizers=("adam", "sgd"), initial={"lr": Around(1.0, 1.0)})  # fmt: skip
    drawn = {}
    for seed in range(8):
        env.reset(seed=seed)
        drawn[env.run.hparams.optimizer] = env.run.hparams
    assert set(drawn) == {"adam", "sgd"}
    assert drawn["sgd"].lr == pytest.approx(0.05)  # SGD's usual rate, not Adam's default
    assert drawn["sgd"].momentum == pytest.approx(0.9)
    assert drawn["adam"].lr == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="not both"):
        HPTuneEnv("digits", optimizer="sgd", optimizers=("adam",))
