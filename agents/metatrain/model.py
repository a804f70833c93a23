"""Building the PPO model of a meta-training run from its configuration."""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv

from agents.metatrain.config import MetaTrainConfig


def ppo_learning_rate(config: MetaTrainConfig) -> float | LinearSchedule:
    """PPO's learning rate: ``config.learning_rate``, or (``lr_schedule="linear"``) SB3's
    schedule from it down to 0 over the run.

    SB3 reads a schedule at its progress ``1 - num_timesteps / total``, and a
    resumed run's ``learn`` counts ``total`` from step 0 (``reset_num_timesteps``
    off), so a run stopped and resumed follows the same schedule.
    """
    if config.lr_schedule == "linear":
        return LinearSchedule(config.learning_rate, 0.0, 1.0)
    return config.learning_rate


def make_model(config: MetaTrainConfig, venv: VecEnv) -> Any:
    common: dict[str, Any] = {
        "n_steps": config.n_steps,
        "batch_size": config.batch_size,
        "n_epochs": config.n_epochs,
        "learning_rate": ppo_learning_rate(config),
        "gamma": config.gamma,
        "gae_lambda": config.gae_lambda,
        "clip_range": config.clip_range,
        "ent_coef": config.ent_coef,
        "seed": config.seed,
        "device": config.device,
        "verbose": 0,
    }
    policy_kwargs: dict[str, Any] = {"net_arch": list(config.net_arch)}
    if config.action_mode == "continuous":
        policy_kwargs["log_std_init"] = config.log_std_init
    if config.algorithm == "recurrent_ppo":
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO("MlpLstmPolicy", venv, policy_kwargs=policy_kwargs, **common)
    from stable_baselines3 import PPO

    return PPO("MlpPolicy", venv, policy_kwargs=policy_kwargs, **common)
