"""hpenv: hyperparameter tuning as reinforcement learning.

Training a neural network is a Gymnasium environment: observations are the
run's metrics, actions adjust its hyperparameters while it trains.

>>> import gymnasium as gym
>>> import hpenv
>>> "HPTune-MNIST-v0" in gym.registry
True
"""

from hpenv.registration import ENV_IDS, register_envs

__version__ = "0.1.0"

register_envs()

__all__ = ["ENV_IDS", "__version__", "register_envs"]
