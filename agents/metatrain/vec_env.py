"""The vectorised training environments of meta-training (SB3 ``VecEnv``).

``subprocess``: one `HPTuneEnv` per process (`SubprocVecEnv`, forkserver), one
torch thread each, SIGINT/SIGTERM left to the main process; ``dummy``: all
in this process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecFrameStack

from agents.metatrain.config import MetaTrainConfig
from agents.metatrain.suite import make_env
from agents.stopping import ignore_stop_signals


def env_kwargs(config: MetaTrainConfig, tasks: list[str]) -> dict[str, Any]:
    return {
        "tasks": tasks,
        "tuned": config.tuned,
        "action_mode": config.action_mode,
        "decisions": config.decisions,
        "budget": config.budget,
        "reward": config.reward,
        "lr_below": config.lr_below,
        "lr_above": config.lr_above,
        "device": config.env_device,
        "data_dir": config.data_dir,
    }


def _worker_env(kwargs: dict[str, Any]) -> Monitor:
    """Runs in each environment process: one torch thread, so workers do not oversubscribe.

    Workers leave SIGINT and SIGTERM to the main process, which stops them cleanly.
    """
    torch.set_num_threads(1)
    ignore_stop_signals()
    return Monitor(make_env(**kwargs))


def build_vec_env(config: MetaTrainConfig, tasks: list[str]) -> VecEnv:
    """The (unnormalised) vectorised training environments."""
    factory: Callable[[], gym.Env[Any, Any]] = functools.partial(
        _worker_env, env_kwargs(config, tasks)
    )
    fns = [factory] * config.n_envs
    venv: VecEnv
    if config.vec_env == "subprocess" and config.n_envs > 1:
        venv = SubprocVecEnv(fns, start_method="forkserver")
    else:
        venv = DummyVecEnv(fns)
    if config.frame_stack > 1:
        venv = VecFrameStack(venv, config.frame_stack)
    return venv


def terminate_workers(venv: VecEnv) -> None:
    """Close without waiting on workers that may be mid-step (after a hard interrupt)."""
    inner: Any = venv
    while hasattr(inner, "venv"):
        inner = inner.venv
    for process in getattr(inner, "processes", ()):
        process.kill()  # workers ignore SIGTERM (see ignore_stop_signals)
        process.join(timeout=5)
    if hasattr(inner, "closed"):
        inner.closed = True
