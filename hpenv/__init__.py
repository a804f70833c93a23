"""hpenv: hyperparameter tuning as reinforcement learning.

Training a neural network is a Gymnasium environment: observations are the
run's metrics, actions adjust its hyperparameters while it trains.

>>> import gymnasium as gym
>>> import hpenv
>>> "HPTune-MNIST-v0" in gym.registry
True
"""

import os

import torch

from hpenv.registration import ENV_IDS, register_envs

__version__ = "0.1.0"

register_envs()


def _one_thread_after_fork() -> None:
    # torch's CPU thread pool does not survive fork(): a forked child that runs torch
    # ops with the parent's thread count hangs (gymnasium's AsyncVectorEnv forks by
    # default on Linux). A forked child gets one thread, which workers want anyway.
    torch.set_num_threads(1)


os.register_at_fork(after_in_child=_one_thread_after_fork)

__all__ = ["ENV_IDS", "__version__", "register_envs"]
