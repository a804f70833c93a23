"""Building the PPO model of a meta-training run from its configuration."""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.vec_env import VecEnv

from agents.metatrain.config import MetaTrainConfig


def make_model(config: MetaTrainConfig, venv: VecEnv) -> Any:
    common: dict[str, Any] = {
        "n_steps": config.n_steps,
        "batch_size": config.batch_size,
        "n_epochs": config.n_epochs,
        "learning_rate": config.learning_rate,
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
