"""The vectorised training environments of meta-training (SB3 ``VecEnv``).

``subprocess``: one `HPTuneEnv` per process (`SubprocVecEnv`, forkserver), one
torch thread each, SIGINT/SIGTERM left to the main process; ``dummy``: all
in this process; ``population``: ``n_envs`` members of one architecture
trained as one batched step in this process (`PopulationVecEnv`; each new
population comes from one suite task, chosen uniformly; models a population
cannot batch, such as IMDB's LSTM, are left out of the suite with a message).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecFrameStack,
    VecMonitor,
)

from agents.metatrain.config import MetaTrainConfig
from agents.metatrain.population_tasks import (
    PopulationTasks,
    SuitePopulation,
    SyntheticPopulation,
    TaskPopulation,
)
from agents.metatrain.population_vec import PopulationVecEnv
from agents.metatrain.suite import make_env
from agents.stopping import ignore_stop_signals
from hpenv.episode import Around
from hpenv.plan import FIDELITY, Fidelity
from hpenv.population import supports
from hpenv.tasks import SyntheticFamily, Task, get_task


def env_kwargs(
    config: MetaTrainConfig,
    tasks: Sequence[str | Task],
    fidelity: dict[str, Fidelity] | None = None,
) -> dict[str, Any]:
    """`agents.metatrain.suite.make_env` arguments of a run (``fidelity``: per-task run sizes
    replacing `hpenv.plan.FIDELITY`, e.g. the cheaper episodes of `agents.metatrain.adapt`;
    ``tasks``: suite names, or `Task` objects such as adaptation's)."""
    extra: dict[str, Any] = {} if fidelity is None else {"fidelity": fidelity}
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
        "synthetic_optimizers": config.synthetic_optimizers,
        **extra,
    }


def _worker_env(kwargs: dict[str, Any]) -> Monitor:
    """Runs in each environment process: one torch thread, so workers do not oversubscribe.

    Workers leave SIGINT and SIGTERM to the main process, which stops them cleanly.
    """
    torch.set_num_threads(1)
    ignore_stop_signals()
    return Monitor(make_env(**kwargs))


def batchable(tasks: list[str]) -> tuple[list[str], dict[str, str]]:
    """The suite tasks a population can train, and why each other one cannot."""
    kept, skipped = [], {}
    for name in tasks:
        why = None if name == "synthetic" else supports(get_task(name))
        if why is None:
            kept.append(name)
        else:
            skipped[name] = why
    return kept, skipped


def build_population(config: MetaTrainConfig, tasks: list[str]) -> PopulationVecEnv:
    """``n_envs`` population members over the suite (see `PopulationVecEnv`)."""
    fidelity = FIDELITY if config.budget is None else {}
    sources: dict[str, PopulationTasks] = {}
    for name in tasks:
        if name == "synthetic":
            family = SyntheticFamily(optimizers=config.synthetic_optimizers)
            sources[name] = SyntheticPopulation(family)
        else:
            subset = fidelity.get(name, Fidelity()).subset
            sources[name] = TaskPopulation(name, subset=subset, data_dir=config.data_dir)
    return PopulationVecEnv(
        SuitePopulation(sources),
        num_envs=config.n_envs,
        tuned=config.tuned,
        action_mode=config.action_mode,
        budget=config.budget,
        decisions=config.decisions,
        reward=config.reward,
        initial={"lr": Around(config.lr_below, config.lr_above)},
        fidelity=fidelity,
        device=config.env_device,
        data_dir=config.data_dir,
    )


def build_vec_env(
    config: MetaTrainConfig,
    tasks: Sequence[str | Task],
    fidelity: dict[str, Fidelity] | None = None,
) -> VecEnv:
    """The (unnormalised) vectorised training environments (``fidelity``, ``tasks``: see
    `env_kwargs`)."""
    if config.vec_env == "population":
        names = [t for t in tasks if isinstance(t, str)]
        if fidelity is not None or len(names) < len(tasks):
            raise ValueError(
                "per-task fidelities and Task objects are for HPTuneEnv workers, not a population"
            )
        venv: VecEnv = VecMonitor(build_population(config, names))
        return VecFrameStack(venv, config.frame_stack) if config.frame_stack > 1 else venv
    factory: Callable[[], gym.Env[Any, Any]] = functools.partial(
        _worker_env, env_kwargs(config, tasks, fidelity)
    )
    fns = [factory] * config.n_envs
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
