"""Every registered environment id, in one place (run on ``import hpenv``).

| id | task |
|---|---|
| ``HPTune-CIFAR10-v0`` | CIFAR-10, small CNN |
| ``HPTune-MNIST-v0`` | MNIST, MLP |
| ``HPTune-FashionMNIST-v0`` | Fashion-MNIST, MLP |
| ``HPTune-IMDB-v0`` | IMDB, LSTM |
| ``HPTune-AGNews-v0`` | AG News, LSTM |
| ``HPTune-TREC-v0`` | TREC, LSTM |
| ``HPTune-Digits-v0`` | scikit-learn digits, MLP (offline) |
| ``HPTune-Synthetic-v0`` | a new generated task each episode (offline) |
| ``HPTune-MultiTask-v0`` | one task per episode drawn from ``task=[...]`` |

Each id also exists as ``-v1`` (``HPTune-Digits-v1``, ...): observation layout 2
(layout 1's features and the probe's), a learning-rate probe before the
warm-up, the rate action residual over the base schedule anchored at the
probe, and the reward paired with the base schedule's run on the same seed
(`hpenv.rewards.PairedLogValLoss`; the environment trains that run beside the
episode's, about twice the cost). The ``-v0`` ids are unchanged.

Each id's defaults are the task's full budget (a real run on a GPU), 20
decisions and the learning rate as the tuned hyperparameter; every keyword of
`hpenv.env.HPTuneEnv` can override them (for example ``budget``, ``subset``,
``decisions``, ``device``) for cheap meta-training.
"""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym

from hpenv.base import BaseConfig
from hpenv.probe import ProbeConfig
from hpenv.tasks import SyntheticFamily

ENTRY_POINT = "hpenv.env:HPTuneEnv"

#: Default task list of HPTune-MultiTask-v0: the offline tasks.
DEFAULT_MULTITASK: tuple[Any, ...] = ("digits", SyntheticFamily())

ENV_IDS: dict[str, dict[str, Any]] = {
    "HPTune-CIFAR10-v0": {"task": "cifar10"},
    "HPTune-MNIST-v0": {"task": "mnist"},
    "HPTune-FashionMNIST-v0": {"task": "fashion_mnist"},
    "HPTune-IMDB-v0": {"task": "imdb"},
    "HPTune-AGNews-v0": {"task": "ag_news"},
    "HPTune-TREC-v0": {"task": "trec"},
    "HPTune-Digits-v0": {"task": "digits"},
    "HPTune-Synthetic-v0": {"task": SyntheticFamily()},
    "HPTune-MultiTask-v0": {"task": DEFAULT_MULTITASK},
}


#: What a ``-v1`` id adds to its ``-v0`` twin (observation layout 2, see the module docstring).
LAYOUT_2: dict[str, Any] = {
    "probe": ProbeConfig(),
    "base": BaseConfig(),
    "reward": "paired_log_val_loss",
}
ENV_IDS.update(
    {name[:-3] + "-v1": {**kwargs, **LAYOUT_2} for name, kwargs in list(ENV_IDS.items())}
)


def register_envs() -> None:
    """Register every id with Gymnasium (idempotent).

    Gymnasium warns that a ``-v0`` id "is out of date" once a ``-v1`` exists; ours
    are two layouts side by side (the shipped policy reads layout 1), so that
    warning, for these ids only, is filtered.
    """
    warnings.filterwarnings(
        "ignore", message=r".*The environment HPTune-[A-Za-z0-9]+-v0 is out of date",
        category=DeprecationWarning,
    )  # fmt: skip
    for env_id, kwargs in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=ENTRY_POINT, kwargs=kwargs)
