"""Test helper: small untrained `FrozenPolicy` objects built in memory (no artifact file)."""

from __future__ import annotations

import numpy as np
import torch
from stable_baselines3 import PPO

from agents.policy import FrozenPolicy


def make_policy(
    tuned=("lr",),
    seed: int = 0,
    decisions: int = 4,
    obs_version: int = 1,
    action_bias: float = 0.0,
    **env_config,
) -> FrozenPolicy:
    """An untrained but non-trivial frozen policy (random weights, wide action noise);
    ``action_bias`` is added to its mean action (e.g. 1.0: it mostly raises);
    ``env_config`` entries beside ``decisions`` (e.g. a layout-2 policy's ``base``)."""
    from gymnasium import spaces
    from stable_baselines3.common.running_mean_std import RunningMeanStd

    from hpenv.observation import layout_bounds

    OBS_LOW, OBS_HIGH = layout_bounds(obs_version)

    class Dummy:
        observation_space = spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32)
        action_space = spaces.Box(-1.0, 1.0, shape=(len(tuned),), dtype=np.float32)

    import gymnasium as gym

    class DummyEnv(gym.Env):
        observation_space = Dummy.observation_space
        action_space = Dummy.action_space

        def reset(self, *, seed=None, options=None):
            return self.observation_space.sample(), {}

        def step(self, action):
            return self.observation_space.sample(), 0.0, False, False, {}

    model = PPO("MlpPolicy", DummyEnv(), seed=seed, device="cpu", policy_kwargs={"net_arch": [8]})
    with torch.no_grad():  # make actions large enough to move the learning rate visibly
        for p in model.policy.action_net.parameters():
            p.mul_(20.0)
        model.policy.action_net.bias.add_(action_bias)
    rms = RunningMeanStd(shape=(OBS_LOW.shape[0],))
    return FrozenPolicy.from_model(
        model, rms, 10.0, 1e-8, tuned=tuned, action_mode="continuous",
        env_config={"decisions": decisions, **env_config}, obs_version=obs_version,
    )  # fmt: skip


def raising_with_rollback(decisions: int = 4) -> FrozenPolicy:
    """A policy that raises the rate x3 at every decision, deployed with the rollback
    (``--restart rollback``): a later interval blows up and rolls back (test_restart,
    test_integrations; their tests say where)."""
    return make_policy(decisions=decisions, action_bias=50.0).with_deploy_flags(restart="rollback")
