"""hpenv: hyperparameter tuning as reinforcement learning.

Training a neural network is a Gymnasium environment: observations are the
run's metrics, actions adjust its hyperparameters while it trains.
"""

__version__ = "0.1.0"
