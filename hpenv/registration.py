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

Each id's defaults are the task's full budget (a real run on a GPU), 20
decisions and the learning rate as the tuned hyperparameter; every keyword of
`hpenv.env.HPTuneEnv` can override them (for example ``budget``, ``subset``,
``decisions``, ``device``) for cheap meta-training.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

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


def register_envs() -> None:
    """Register every id with Gymnasium (idempotent)."""
    for env_id, kwargs in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=ENTRY_POINT, kwargs=kwargs)
