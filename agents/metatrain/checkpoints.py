"""Meta-training checkpoints: tensors and plain values only, written atomically.

A checkpoint holds the policy's and the optimizer's state dicts, SB3's step
counters and episode buffer, the observation normalisation and the RNG states
(torch, numpy, Python). SB3's own zip format is not used: its ``data`` part is
unpickled on load, so a crafted file could run code. Resuming rebuilds the
model from the run's configuration and loads the state dicts.
"""

from __future__ import annotations

import contextlib
import copy
import random
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env import VecNormalize

from hpenv.errors import InputError
from hpenv.io import atomic_torch_save, safe_torch_load

CHECKPOINT_FORMAT = 2


def checkpoint_state(model: Any, venv: VecNormalize, counters: dict[str, Any]) -> dict[str, Any]:
    """Everything a resume needs, as tensors and plain values only (no pickled objects).

    The SB3 model is stored as its policy's and optimizer's state dicts and
    counters (not SB3's zip, whose ``data`` part is unpickled on load): resuming
    rebuilds the model from the configuration and loads them.
    """
    rms: Any = venv.obs_rms
    numpy_state: Any = np.random.get_state(legacy=False)  # noqa: NPY002 (SB3 samples from it)
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()
    return {
        "format": CHECKPOINT_FORMAT,
        "policy": {k: v.detach().cpu().clone() for k, v in model.policy.state_dict().items()},
        "optimizer": copy.deepcopy(model.policy.optimizer.state_dict()),
        "num_timesteps": int(model.num_timesteps),
        "n_updates": int(model._n_updates),
        "episode_num": int(model._episode_num),
        "ep_info_buffer": [
            {k: float(v) for k, v in info.items()} for info in (model.ep_info_buffer or ())
        ],
        "obs_rms": {
            "mean": torch.as_tensor(rms.mean).clone(),
            "var": torch.as_tensor(rms.var).clone(),
            "count": float(rms.count),
        },
        "rng": {
            "torch": torch.get_rng_state(),
            "numpy": numpy_state,
            "python": random.getstate(),
        },
        **counters,
    }


def restore_checkpoint(checkpoint: dict[str, Any], model: Any, venv: VecNormalize) -> None:
    """Load `checkpoint_state` into a model freshly built from the run's configuration."""
    model.policy.load_state_dict(checkpoint["policy"])
    model.policy.optimizer.load_state_dict(checkpoint["optimizer"])
    model.num_timesteps = checkpoint["num_timesteps"]
    model._n_updates = checkpoint["n_updates"]
    model._episode_num = checkpoint["episode_num"]
    model.ep_info_buffer = deque(checkpoint["ep_info_buffer"], maxlen=model._stats_window_size)
    model.ep_success_buffer = deque(maxlen=model._stats_window_size)
    rms: Any = venv.obs_rms
    rms.mean = checkpoint["obs_rms"]["mean"].numpy().astype(np.float64)
    rms.var = checkpoint["obs_rms"]["var"].numpy().astype(np.float64)
    rms.count = checkpoint["obs_rms"]["count"]
    torch.set_rng_state(checkpoint["rng"]["torch"])
    numpy_state = copy.deepcopy(checkpoint["rng"]["numpy"])
    numpy_state["state"]["key"] = np.asarray(numpy_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(numpy_state)  # noqa: NPY002
    python_state = checkpoint["rng"]["python"]
    random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))


@contextlib.contextmanager
def global_rng_preserved() -> Iterator[None]:
    """Run a block on a copy of the global random streams (torch's CPU and CUDA, NumPy's
    legacy one that SB3 samples from, Python's) and put them back after it.

    Held-out evaluations during meta-training seed and draw from these streams (model
    initialisation, dropout); inside this block they leave the training run's own draws
    where they were, so a run evaluated every N steps trains the same policy as one never
    evaluated, and changing ``eval_every`` changes the selection only.
    """
    numpy_state = np.random.get_state()  # noqa: NPY002
    python_state = random.getstate()
    try:
        with torch.random.fork_rng():
            yield
    finally:
        np.random.set_state(numpy_state)  # noqa: NPY002
        random.setstate(python_state)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a `checkpoint_state` atomically."""
    atomic_torch_save(state, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint (tensors and plain values only: a crafted file cannot run code).

    Raises:
        FileNotFoundError: No file at ``path``.
        InputError: The file is empty, truncated, not a checkpoint, or of another format.
    """
    checkpoint = safe_torch_load(path, "meta-training checkpoint")
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        found = checkpoint.get("format") if isinstance(checkpoint, dict) else None
        raise InputError(
            f"{path}: checkpoint format {found} is not the format {CHECKPOINT_FORMAT} this "
            "hpenv writes; resume it with the hpenv version that wrote it, or start a new run"
        )
    return checkpoint
