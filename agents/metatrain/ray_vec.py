"""`RayVecEnv`: an SB3 vectorised environment whose environments live in Ray actors.

Where `SubprocVecEnv` runs one process per environment on this machine, this
runs one Ray actor per environment (or per group of population members) on
any node of a Ray cluster; the learner stays in the calling process.

Example (a local Ray instance; see `agents.cluster.ray_session`):

    >>> import functools
    >>> from agents.cluster import ray_session
    >>> from agents.metatrain.suite import make_env
    >>> from hpenv.env import EpisodeConfig
    >>> factory = functools.partial(make_env, ["synthetic"], EpisodeConfig(decisions=2, budget=96))
    >>> with ray_session(num_cpus=2):  # doctest: +SKIP
    ...     venv = RayVecEnv([factory, factory], num_cpus=1)
    ...     venv.seed(0)
    ...     obs = venv.reset()
    ...     venv.close()
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import ray
import torch
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from agents.cluster import describe, lost_errors
from agents.metatrain.callbacks import ACTOR_RESTARTED
from agents.stopping import ignore_stop_signals
from hpenv.tasks import Task, TaskData
from hpenv.training import resolve_device

#: What one actor hosts: a Gymnasium env (run in a `DummyVecEnv` of one) or a `VecEnv`.
EnvFactory = Callable[[], Any]


class EnvHost:
    """The inside of one Ray actor: one vectorised environment, stepped on request.

    Args:
        make: Builds a Gymnasium env (hosted in a `DummyVecEnv` of one, so
            auto-reset, ``terminal_observation`` and ``TimeLimit.truncated``
            are SB3's own) or a `VecEnv` (e.g. a group of population members).

    The worker uses one torch thread and leaves SIGINT and SIGTERM to the
    driver (`agents.stopping.ignore_stop_signals`).
    """

    def __init__(self, make: EnvFactory) -> None:
        torch.set_num_threads(1)
        if threading.current_thread() is threading.main_thread():
            ignore_stop_signals()
        env = make()
        self.venv: VecEnv = env if isinstance(env, VecEnv) else DummyVecEnv([lambda: env])

    def spaces(self) -> tuple[int, gym.Space[Any], gym.Space[Any]]:
        return self.venv.num_envs, self.venv.observation_space, self.venv.action_space

    def reset(
        self, seed: int | None, options: list[dict[str, Any]]
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Reset every environment (seeded ``seed``, ``seed + 1``, ... when given)."""
        if seed is not None:
            self.venv.seed(seed)
        if any(options):
            self.venv.set_options(options)
        obs = self.venv.reset()
        return np.asarray(obs), list(self.venv.reset_infos)

    def step(self, actions: np.ndarray) -> tuple[Any, ...]:
        """One step; also the reset infos of the environments that started a new episode."""
        obs, rewards, dones, infos = self.venv.step(actions)
        resets = {int(k): self.venv.reset_infos[k] for k in np.flatnonzero(dones)}
        return np.asarray(obs), rewards, dones, infos, resets

    def get_attr(self, name: str, indices: list[int]) -> list[Any]:
        return self.venv.get_attr(name, indices)

    def set_attr(self, name: str, value: Any, indices: list[int]) -> None:
        self.venv.set_attr(name, value, indices)

    def env_method(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], indices: list[int]
    ) -> list[Any]:
        return self.venv.env_method(name, *args, indices=indices, **kwargs)

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper[Any, Any, Any, Any]], indices: list[int]
    ) -> list[bool]:
        return self.venv.env_is_wrapped(wrapper_class, indices)

    def node_id(self) -> str:
        """The id of the Ray node this actor runs on."""
        return str(ray.get_runtime_context().get_node_id())


#: A remote call on an actor handle (retried on a replacement when the actor is lost).
Call = Callable[[Any], Any]


class RayVecEnv(VecEnv):
    """SB3 `VecEnv` over environments hosted in Ray actors, stepped asynchronously.

    ## Description

    Actor ``j`` hosts what ``env_fns[j]()`` builds (`EnvHost`): one
    environment, or a `VecEnv` of several (a group of population members).
    `step_async` sends every actor its slice of the actions at once;
    `step_wait` gathers the results as they arrive (`ray.wait`). Each actor
    asks Ray for ``num_cpus`` CPUs and ``num_gpus`` GPUs (a fraction shares
    one GPU) and is placed with ``scheduling_strategy`` (default ``"SPREAD"``:
    across the cluster's nodes). Observations must be arrays (``Box`` or
    discrete spaces).

    ## Lost actors

    An actor that dies (its node lost, its worker killed: `agents.cluster.lost_errors`)
    is replaced by a new actor built from the same factory, and its
    environments start a new episode; meta-training goes on. Exceptions
    raised by the environment's own code are not retried: they propagate, as
    from `SubprocVecEnv`.

    On the step at which an actor was lost, each of its environments ``i``
    returns the new episode's first observation with ``dones[i] = True``,
    reward 0 and ``infos[i] = {"terminal_observation": <the last observation
    the agent saw for i>, "TimeLimit.truncated": True, ACTOR_RESTARTED: True}``
    (``reset_infos[i]``: the new episode's). SB3 stays consistent:

    - the action sent to the lost actor never ran; the step is recorded as a
      time-limit truncation at the last real observation, so PPO bootstraps it
      with ``gamma * V(last obs)``: one transition per lost episode whose
      advantage is ``-(1 - gamma) * V(last obs)``, close to "nothing happened";
    - ``Monitor`` wrappers live inside the actors (as in `SubprocVecEnv`), so
      a lost episode never produces an ``"episode"`` info: SB3's episode
      statistics (``rollout/ep_rew_mean``) only count complete episodes.
      (A `VecMonitor` wrapped *outside* this env would record the cut episode
      with its partial return; don't wrap one outside.)
    - `VecNormalize` normalises the ``terminal_observation`` as any other, and
      ``TaskMetricsCallback`` skips the ``ACTOR_RESTARTED`` steps (no
      half episode in the ``hpenv/<task>/`` metrics) and counts them as
      ``hpenv/ray_actor_restarts``;
    - ``_last_episode_starts`` is True for the new episode (recurrent policies
      reset their state).

    An actor lost while being started or reset (before the agent saw its
    episode) is replaced and called again, with the same seed. An actor lost
    in `get_attr`, `set_attr` or `env_method` is replaced and called again;
    its environments start a new episode at the next step, as above. More
    than ``max_restarts`` replacements in total raise `RuntimeError`; an actor
    that cannot start within ``start_timeout`` seconds (no node has the
    resources it asks for) raises `TimeoutError`; the actors already made are
    killed, so none stays queued on the cluster.

    ## Seeding

    As SB3's VecEnvs: ``seed(s)`` makes the next `reset` seed environment
    ``i`` with ``s + i`` (an actor hosting environments ``a..b`` seeds its own
    `VecEnv` with ``s + a``); nothing else is seeded. A replacement's new
    episode is seeded from ``(s, j, restart count)`` (`numpy.random.SeedSequence`),
    or not at all when no seed was given.

    ## Arguments

    - ``env_fns``: one factory per actor (picklable: Ray ships it to the worker).
    - ``num_cpus``, ``num_gpus``: Ray resources of each actor.
    - ``scheduling_strategy``: Ray's placement of the actors.
    - ``max_restarts``: replacements allowed over the env's life.
    - ``start_timeout``: seconds to wait for actors to start (or restart).

    Ray must be connected first (`agents.cluster.ray_session`, or ``ray.init``).
    `close` kills the actors (it does not wait for a step in flight).
    """

    def __init__(
        self,
        env_fns: Sequence[EnvFactory],
        *,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        scheduling_strategy: str = "SPREAD",
        max_restarts: int = 100,
        start_timeout: float = 600.0,
    ) -> None:
        if not env_fns:
            raise ValueError("env_fns is empty: give one factory per actor")
        if num_cpus < 0 or num_gpus < 0:
            raise ValueError(f"resources must be >= 0, got {num_cpus} CPUs, {num_gpus} GPUs")
        if max_restarts < 0 or start_timeout <= 0:
            raise ValueError("max_restarts must be >= 0 and start_timeout > 0")
        if not ray.is_initialized():
            raise RuntimeError(
                "RayVecEnv needs a Ray connection: enter agents.cluster.ray_session(address) "
                "(or call ray.init) first"
            )
        self._fns = list(env_fns)
        self._closed = False
        self.resources = {"num_cpus": num_cpus, "num_gpus": num_gpus}
        self._actor_options: dict[str, Any] = {
            **self.resources,
            "scheduling_strategy": scheduling_strategy,
            "max_restarts": 0,  # replacement is ours: the episode has to restart anyway
        }
        self.max_restarts, self.start_timeout = max_restarts, start_timeout
        #: Actors replaced so far.
        self.restarts = 0
        self._lost = lost_errors()
        self._remote = ray.remote(EnvHost)
        self._actors: list[Any] = [self._spawn(j) for j in range(len(self._fns))]
        self._last_obs: np.ndarray | None = None
        self._needs_episode: set[int] = set()
        self._steps: dict[Any, int] = {}
        self._seed_base: int | None = None
        try:
            specs = self._settle({j: lambda a: a.spaces.remote() for j in range(len(self._fns))})
        except BaseException:  # e.g. no room on the cluster: leave no actor queued behind
            self.close()
            raise
        sizes = [specs[j][0] for j in range(len(self._fns))]
        starts = np.cumsum([0, *sizes])
        self._slices = [slice(int(a), int(b)) for a, b in itertools.pairwise(starts)]
        self._actor_of = [j for j, size in enumerate(sizes) for _ in range(size)]
        super().__init__(int(starts[-1]), specs[0][1], specs[0][2])

    # ------------------------------------------------------------------ VecEnv API

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        seeds = super().seed(seed)
        self._seed_base = seeds[0] if seeds else None
        return seeds

    def reset(self) -> np.ndarray:
        """Reset every actor's environments (with the seeds and options set, then cleared)."""
        calls: dict[int, Call] = {}
        for j, part in enumerate(self._slices):
            calls[j] = _reset_call(self._seeds[part.start], list(self._options[part]))
        results = self._settle(calls)
        obs = self._empty_obs()
        for j, (first, infos) in results.items():
            obs[self._slices[j]] = first
            self.reset_infos[self._slices[j]] = infos
        self._reset_seeds()
        self._reset_options()
        self._needs_episode.clear()
        self._last_obs = obs.copy()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions)
        self._steps = {
            actor.step.remote(actions[self._slices[j]]): j
            for j, actor in enumerate(self._actors)
            if j not in self._needs_episode
        }

    def step_wait(self) -> VecEnvStepReturn:
        if self._last_obs is None:
            raise RuntimeError("call reset() before stepping")
        refs, self._steps = self._steps, {}
        steps = self._settle(refs=refs)  # a lost actor lands in _needs_episode
        obs = self._empty_obs()
        rewards = np.zeros(self.num_envs, dtype=np.float32)
        dones = np.zeros(self.num_envs, dtype=bool)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for j, (part_obs, part_rewards, part_dones, part_infos, resets) in steps.items():
            part = self._slices[j]
            obs[part], rewards[part], dones[part] = part_obs, part_rewards, part_dones
            infos[part] = part_infos
            for k, info in resets.items():
                self.reset_infos[part.start + k] = info
        for j, (first, reset_infos) in self._new_episodes().items():
            part = self._slices[j]
            obs[part], dones[part] = first, True
            for i, reset_info in zip(range(part.start, part.stop), reset_infos, strict=True):
                infos[i] = {
                    "terminal_observation": self._last_obs[i].copy(),
                    "TimeLimit.truncated": True,
                    ACTOR_RESTARTED: True,
                }
                self.reset_infos[i] = reset_info
        self._last_obs = obs.copy()
        return obs, rewards, dones, infos

    def close(self) -> None:
        """Kill every actor (a step in flight is abandoned)."""
        if self._closed:
            return
        self._closed = True
        for actor in self._actors:
            _kill(actor)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return self._on_envs(lambda a, local: a.get_attr.remote(attr_name, local), indices)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._on_envs(lambda a, local: a.set_attr.remote(attr_name, value, local), indices)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        return self._on_envs(
            lambda a, local: a.env_method.remote(method_name, method_args, method_kwargs, local),
            indices,
        )

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper[Any, Any, Any, Any]], indices: VecEnvIndices = None
    ) -> list[bool]:
        return self._on_envs(
            lambda a, local: a.env_is_wrapped.remote(wrapper_class, local), indices
        )

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]

    def node_ids(self) -> list[str]:
        """The Ray node of each actor (in actor order)."""
        results = self._settle({j: lambda a: a.node_id.remote() for j in range(len(self._actors))})
        return [results[j] for j in range(len(self._actors))]

    # ------------------------------------------------------------------ actors

    def _spawn(self, j: int) -> Any:
        return self._remote.options(**self._actor_options).remote(self._fns[j])

    def _settle(
        self, calls: Mapping[int, Call] | None = None, refs: Mapping[Any, int] | None = None
    ) -> dict[int, Any]:
        """Results of remote calls by actor; lost actors are replaced.

        ``calls`` are issued now and, on a replacement, issued again (start-up,
        reset, attribute calls: bounded by ``start_timeout``). ``refs`` are
        steps already in flight: a lost one is not repeated, its actor's
        environments start a new episode instead (`_new_episodes`).
        """
        pending: dict[Any, int] = dict(refs or {})
        calls = dict(calls or {})
        for j, call in calls.items():
            pending[call(self._actors[j])] = j
        timeout = self.start_timeout if calls else None
        results: dict[int, Any] = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=timeout)
            if not ready:
                raise TimeoutError(self._stuck(sorted(set(pending.values()))))
            try:  # the usual case: every result in one call
                values = ray.get(ready)
            except self._lost:
                values = None
            for k, ref in enumerate(ready):
                j = pending.pop(ref)
                if values is not None:
                    results[j] = values[k]
                    continue
                try:
                    results[j] = ray.get(ref)
                except self._lost as exc:
                    self._replace(j, exc)
                    if j in calls:
                        pending[calls[j](self._actors[j])] = j
        return results

    def _replace(self, j: int, exc: BaseException) -> None:
        """Replace lost actor ``j`` (counted, logged); its environments need a new episode."""
        self.restarts += 1
        part = self._slices[j] if hasattr(self, "_slices") else slice(j, j + 1)
        envs = f"{part.start}" if part.stop - part.start == 1 else f"{part.start}-{part.stop - 1}"
        if self.restarts > self.max_restarts:
            raise RuntimeError(
                f"RayVecEnv: {self.restarts} actors lost (max_restarts={self.max_restarts}); "
                f"the last, of environment {envs}: {describe(exc)}"
            )
        print(
            f"RayVecEnv: the actor of environment {envs} was lost ({describe(exc)}); "
            f"replacing it, its episode starts again (restart {self.restarts})",
            file=sys.stderr,
            flush=True,
        )
        _kill(self._actors[j])
        self._actors[j] = self._spawn(j)
        if self._last_obs is not None:
            self._needs_episode.add(j)

    def _new_episodes(self) -> dict[int, tuple[np.ndarray, list[dict[str, Any]]]]:
        """Reset the replaced actors' environments: their first observations and reset infos."""
        calls: dict[int, Call] = {}
        for j in sorted(self._needs_episode):
            options = list(self._options[self._slices[j]])
            calls[j] = _reset_call(self._replacement_seed(j), options)
        results = self._settle(calls) if calls else {}
        self._needs_episode.clear()
        return results

    def _replacement_seed(self, j: int) -> int | None:
        if self._seed_base is None:
            return None
        entropy = [self._seed_base % 2**32, j, self.restarts]
        return int(np.random.SeedSequence(entropy).generate_state(1)[0])

    def _on_envs(self, call: Callable[[Any, list[int]], Any], indices: VecEnvIndices) -> list[Any]:
        """``call(actor, local indices)`` on the actors of ``indices``; results in their order."""
        targets = list(self._get_indices(indices))
        local: dict[int, list[int]] = {}
        for i in targets:
            j = self._actor_of[i]
            local.setdefault(j, []).append(i - self._slices[j].start)
        results = self._settle({j: _on_local(call, ks) for j, ks in local.items()})
        position = {j: iter(results[j] or [None] * len(ks)) for j, ks in local.items()}
        return [next(position[self._actor_of[i]]) for i in targets]

    def _empty_obs(self) -> np.ndarray:
        space = self.observation_space
        return np.zeros((self.num_envs, *(space.shape or ())), dtype=space.dtype)

    def _stuck(self, actors: list[int]) -> str:
        return (
            f"RayVecEnv: actors {actors} did not start within {self.start_timeout:g} s; each asks "
            f"for {self.resources['num_cpus']:g} CPU and {self.resources['num_gpus']:g} GPU, the "
            f"cluster has {ray.cluster_resources()} (lower --ray-cpus-per-env or add nodes)"
        )


def _reset_call(seed: int | None, options: list[dict[str, Any]]) -> Call:
    def call(actor: Any) -> Any:
        return actor.reset.remote(seed, options)

    return call


def _on_local(call: Callable[[Any, list[int]], Any], local: list[int]) -> Call:
    def bound(actor: Any) -> Any:
        return call(actor, local)

    return bound


def _kill(actor: Any) -> None:
    with contextlib.suppress(Exception):  # already dead, or Ray is shutting down
        ray.kill(actor, no_restart=True)


class SharedTaskData:
    """`HPTuneEnv`'s ``data_fn``: each task's data from Ray's object store, fetched once per actor.

    The driver loads a task's data once and puts it in the object store
    (`ray.put`); every actor gets the references (not the data), and the
    first episode of a task on an actor fetches it from the nearest copy (one
    transfer per node) and keeps it on the environment's device. Generated
    tasks (``synthetic``) and tasks without a reference are loaded as usual,
    from ``data_dir``. The result equals ``task.load_data(data_dir=...)``; the
    environment applies its subset as it does to loaded data.

    Args:
        refs: Task name -> `ray.ObjectRef` of its `TaskData`.
        data_dir: Where other tasks are loaded from.
        device: Device the data is kept on (``"auto"``: CUDA if the actor has one).
    """

    def __init__(self, refs: Mapping[str, Any], data_dir: str | None, device: str) -> None:
        self.refs, self.data_dir, self.device = dict(refs), data_dir, device
        self._cache: dict[str, TaskData] = {}

    def __call__(self, task: Task) -> TaskData:
        if task.generate is not None or task.name not in self.refs:
            return task.load_data(data_dir=self.data_dir)
        if task.name not in self._cache:
            data: TaskData = ray.get(self.refs[task.name])
            self._cache[task.name] = data.to(resolve_device(self.device))
        return self._cache[task.name]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cache": {}}  # references travel, fetched data does not
