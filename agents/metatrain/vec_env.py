"""The vectorised training environments of meta-training (SB3 ``VecEnv``).

``subprocess``: one `HPTuneEnv` per process (`SubprocVecEnv`, forkserver), one
torch thread each, SIGINT/SIGTERM left to the main process; ``dummy``: all
in this process; ``population``: ``n_envs`` members of one architecture
trained as one batched step in this process (`PopulationVecEnv`; each new
population comes from one suite task, chosen uniformly; models a population
cannot batch, such as IMDB's LSTM, are left out of the suite with a message);
``ray``: one Ray actor per `HPTuneEnv` (or per group of
``ray_members_per_actor`` population members) on the nodes of a Ray cluster
(`agents.metatrain.ray_vec.RayVecEnv`; `vec_env_runtime` connects to it).

``budget_end="termination"`` wraps any of them in `BudgetEndAsTermination`, so an
episode's end at its budget ends PPO's return instead of being bootstrapped.

Data on Ray: this process resolves the data directory (``data_dir``, else
``HPENV_DATA_DIR``) once. With ``ray_data="object_store"`` (the default) it
loads each suite task's data once and puts it in Ray's object store; the
actors get references and fetch the data from the nearest copy (one
transfer per node, no download or file access on the workers:
`agents.metatrain.ray_vec.SharedTaskData`). With ``ray_data="data_dir"``
every actor loads the data itself from the resolved directory, which must
then be a path every node sees (a shared filesystem), or each node's own copy
at that path. Generated tasks (``synthetic``) are generated where they run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecEnvWrapper,
    VecFrameStack,
    VecMonitor,
)
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from agents.cli import use_threads
from agents.metatrain.callbacks import ACTOR_RESTARTED
from agents.metatrain.config import MetaTrainConfig, episode_config
from agents.metatrain.population_tasks import (
    PopulationTasks,
    SuitePopulation,
    SyntheticPopulation,
    TaskPopulation,
)
from agents.metatrain.population_vec import PopulationVecEnv
from agents.metatrain.suite import make_env, resolve_tasks
from agents.stopping import ignore_stop_signals
from hpenv.plan import Fidelity
from hpenv.population import supports
from hpenv.tasks import Task, TaskData, get_task
from hpenv.tasks.data.loader import data_dir_setting


def env_kwargs(
    config: MetaTrainConfig,
    tasks: Sequence[str | Task],
    fidelity: dict[str, Fidelity] | None = None,
) -> dict[str, Any]:
    """`agents.metatrain.suite.make_env` arguments of a run: the run's `episode_config`
    (``fidelity``: per-task run sizes replacing `hpenv.plan.FIDELITY`, e.g. the cheaper
    episodes of `agents.metatrain.adapt`) and where the environment runs (``tasks``:
    suite names, or `Task` objects such as adaptation's). Plain values: they pickle."""
    return {
        "tasks": tasks,
        "episode": episode_config(config, fidelity),
        "device": config.env_device,
        "data_dir": config.data_dir,
        "synthetic": config.synthetic_family(),
    }


def worker_env(
    kwargs: dict[str, Any], niceness: int = 0, threads: int = 1, own_process: bool = True
) -> Monitor:
    """Runs in each environment process (or Ray actor): ``threads`` torch threads (one by
    default, so that workers do not oversubscribe the cores; ``--threads``).

    Workers in a process of their own leave SIGINT and SIGTERM to the main process,
    which stops them cleanly; an environment built in the main process
    (``own_process=False``: ``--vec-env dummy``, or one subprocess environment) leaves
    the main process's handlers alone, or Ctrl-C would no longer stop the run.
    ``niceness`` is added to the process's (`scripts/benchmark_ray.py` gives
    subprocesses the niceness of Ray's workers).
    """
    if niceness:
        os.nice(niceness)
    use_threads(threads)
    if own_process:
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


def build_population(
    config: MetaTrainConfig,
    tasks: list[str],
    data_fn: Callable[[Task], TaskData] | None = None,
) -> PopulationVecEnv:
    """``n_envs`` population members over the suite (see `PopulationVecEnv`), with the
    run's `episode_config` (the settings its `HPTuneEnv` workers get) and, for a paired
    reward, one reference member per ``reference_group`` members."""
    episode = episode_config(config)
    sources: dict[str, PopulationTasks] = {}
    for name in tasks:
        if name == "synthetic":
            family = config.synthetic_family()
            sources[name] = SyntheticPopulation(family)
        else:
            subset = episode.task_fidelity(name).subset
            sources[name] = TaskPopulation(
                name, subset=subset, data_dir=config.data_dir, data_fn=data_fn
            )
    return PopulationVecEnv(
        SuitePopulation(sources),
        num_envs=config.n_envs,
        config=episode,
        group_size=config.reference_group,
        device=config.env_device,
        data_dir=config.data_dir,
    )


def build_vec_env(
    config: MetaTrainConfig,
    tasks: Sequence[str | Task],
    fidelity: dict[str, Fidelity] | None = None,
) -> VecEnv:
    """The (unnormalised) vectorised training environments (``fidelity``, ``tasks``: see
    `env_kwargs`; per-task fidelities and `Task` objects are for `HPTuneEnv` workers in
    this machine's processes).

    ``ray`` needs a Ray connection: build it inside `vec_env_runtime`.
    """
    venv: VecEnv
    if config.vec_env in ("population", "ray"):
        names = [t for t in tasks if isinstance(t, str)]
        if fidelity is not None or len(names) < len(tasks):
            raise ValueError(
                "per-task fidelities and Task objects are for HPTuneEnv workers (--vec-env "
                f"subprocess or dummy), not --vec-env {config.vec_env}"
            )
        if config.vec_env == "population":
            venv = VecMonitor(build_population(config, names))
        else:
            venv = build_ray(config, names)
    else:
        subprocesses = config.vec_env == "subprocess" and config.n_envs > 1
        factory: Callable[[], gym.Env[Any, Any]] = functools.partial(
            worker_env,
            env_kwargs(config, tasks, fidelity),
            threads=config.threads,
            own_process=subprocesses,
        )
        fns = [factory] * config.n_envs
        venv = SubprocVecEnv(fns, start_method="forkserver") if subprocesses else DummyVecEnv(fns)
    if config.budget_end == "termination":
        venv = BudgetEndAsTermination(venv)
    if config.frame_stack > 1:
        venv = VecFrameStack(venv, config.frame_stack)
    return venv


class BudgetEndAsTermination(VecEnvWrapper):
    """Episodes that end at their budget end PPO's return there (``budget_end="termination"``).

    An `hpenv.env.HPTuneEnv` episode that spends its budget ends with ``truncated=True``
    (Gymnasium's reading of a time limit), and SB3 then adds ``gamma`` x the value of the
    last observation to the last reward, as if the run went on. It does not: the training
    run is over, and how much of the budget is spent is in the observation (``progress``),
    so the return after it is 0, and the value of that last observation (progress 1) is
    one no rollout ever fitted. This wrapper clears ``TimeLimit.truncated`` from such
    episodes' infos, so SB3 reads their end as a termination and the return is the sum of
    the episode's rewards (with ``gamma`` 1: ln(initial / final validation loss) for the
    default reward). An episode lost with its Ray actor (``ACTOR_RESTARTED``) was cut
    short from outside the run, and stays a truncation.
    """

    def reset(self) -> VecEnvObs:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        for done, info in zip(dones, infos, strict=True):
            if done and info.get("TimeLimit.truncated") and not info.get(ACTOR_RESTARTED):
                info["TimeLimit.truncated"] = False
        return obs, rewards, dones, infos


def vec_env_runtime(config: MetaTrainConfig) -> contextlib.AbstractContextManager[Any]:
    """What the environments need around them: for ``ray``, a Ray connection (else nothing).

    A local Ray instance (no ``ray_address``) gets at least the CPUs its actors
    ask for, so that all of them start (oversubscribing the cores as
    ``subprocess`` does). Enter it outside `agents.stopping.GracefulStop`
    (`agents.cluster.ray_session`).
    """
    if config.vec_env != "ray":
        return contextlib.nullcontext()
    from agents.cluster import ray_session

    actors = config.n_envs // config.ray_members_per_actor
    needed = math.ceil(actors * config.ray_cpus_per_env)
    return ray_session(config.ray_address, num_cpus=max(os.cpu_count() or 1, needed))


def build_ray(config: MetaTrainConfig, tasks: list[str]) -> VecEnv:
    """`RayVecEnv` of the suite: ``n_envs`` HPTuneEnvs, or groups of population members."""
    from agents.metatrain.ray_vec import RayVecEnv, SharedTaskData

    root = data_dir_setting(config.data_dir)  # resolved here: workers may not have the variable
    data_dir = None if root is None else str(root)
    data_fn = None
    if config.ray_data == "object_store":
        data_fn = SharedTaskData(put_task_data(tasks, data_dir), data_dir, config.env_device)
    k = config.ray_members_per_actor
    factory: Callable[[], Any]
    if k == 1:
        kwargs = {**env_kwargs(config, tasks), "data_dir": data_dir, "data_fn": data_fn}
        factory = functools.partial(worker_env, kwargs)
    else:
        group = dataclasses.replace(config, n_envs=k, data_dir=data_dir)
        factory = functools.partial(_population_group, group, tasks, data_fn)
    return RayVecEnv(
        [factory] * (config.n_envs // k),
        num_cpus=config.ray_cpus_per_env,
        num_gpus=config.ray_gpus_per_env,
    )


def put_task_data(tasks: list[str], data_dir: str | None) -> dict[str, Any]:
    """Each dataset task's data, loaded once here and put in Ray's object store.

    Generated tasks (the synthetic family, ``synthetic_deep``) are left out:
    they are generated where they run.
    """
    import ray

    refs = {}
    for task in resolve_tasks(tasks):
        if isinstance(task, Task) and task.generate is None:
            refs[task.name] = ray.put(task.load_data(data_dir=data_dir))
    return refs


def _population_group(
    config: MetaTrainConfig, tasks: list[str], data_fn: Callable[[Task], TaskData] | None
) -> VecEnv:
    """Runs in a Ray actor: ``config.n_envs`` population members as one `VecEnv`."""
    return VecMonitor(build_population(config, tasks, data_fn))


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
