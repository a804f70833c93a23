"""`PopulationVecEnv`: an SB3 vectorised environment whose N environments are N population members.

Where `SubprocVecEnv` runs N `HPTuneEnv` processes, each training its own
model one interval per step, this trains N models of one architecture as one
batched computation (`hpenv.population.Population`) in the calling process.
Everything an agent sees is computed by the same code as `HPTuneEnv`'s: the
plan (`hpenv.plan.plan_episode`), the starting hyperparameters
(`hpenv.episode.draw_initial_hparams`), the warm-up, rewards, observations and
infos (`hpenv.episode.Episode`, one per member, each with its own
`FeatureTracker` and `make_reward` object), and the action rule
(`hpenv.hyperparams.apply_action`).

Example:
    >>> import torch
    >>> from hpenv.tasks import SyntheticSpec
    >>> torch.set_num_threads(1)
    >>> task = SyntheticSpec(num_samples=100, width=8, depth=1).task()
    >>> venv = PopulationVecEnv(task, num_envs=3, budget=96, decisions=2, device="cpu")
    >>> venv.seed(0)
    [0, 1, 2]
    >>> venv.reset().shape
    (3, 20)
    >>> obs, rewards, dones, infos = venv.step(np.zeros((3, 1), np.float32))
    >>> sorted(infos[0])[:4]
    ['budget', 'diverged', 'grad_norm', 'hparams']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from agents.metatrain.population_tasks import (
    MemberTask,
    PopulationTasks,
    SyntheticPopulation,
    TaskPopulation,
)
from hpenv.env import observation_space
from hpenv.episode import Around, Episode, InitialValue, StepResult
from hpenv.episode_config import EpisodeConfig, EpisodeSettings, FrozenMap
from hpenv.errors import InputError
from hpenv.hyperparams import HParams, action_space, apply_action
from hpenv.observation import FeatureTracker
from hpenv.plan import EpisodePlan
from hpenv.population import SHARED_HPARAMS, Member, Population
from hpenv.rewards import Reward
from hpenv.tasks import SyntheticFamily, Task, TaskData, get_task
from hpenv.training import resolve_device

#: Meta-training's starting range (`agents.metatrain.config.episode_config` by default): runs
#: started up to 100x too low or 30x too high.
META_INITIAL: Mapping[str, InitialValue] = FrozenMap({"lr": Around(100.0, 30.0)})


class PopulationVecEnv(VecEnv, EpisodeSettings):
    """N `HPTuneEnv`-equivalent episodes, one per population member, stepped as one batch.

    ## Description

    Environment ``i`` is member ``i`` of a `Population`: a training run whose
    episode is exactly an `HPTuneEnv` episode (same plan, warm-up, observation,
    reward, info). All members train one interval per `step_wait`, in one
    batched computation. A population shares its architecture, batch size,
    optimizer kind, budget and interval schedule; members differ in data, run
    seed and hyperparameters.

    ## Spaces

    As `HPTuneEnv`: the observation is ``Box((20,), float32)``
    (`hpenv.observation`), the action ``Box(-1, 1, (k,))`` or
    ``MultiDiscrete([3] * k)`` for the ``k`` tuned hyperparameters. The batch
    size is shared by the population and cannot be tuned.

    ## Rewards, Starting State

    As `HPTuneEnv` (`hpenv.rewards`, `hpenv.episode.draw_initial_hparams`): a
    member's episode starts with the untrained model's validation metrics and a
    warm-up interval at its drawn starting hyperparameters.

    ## Episode End and Auto-reset

    Members share one budget and schedule, so they are truncated together.
    When every member has finished, the population is replaced: a new
    architecture and new member tasks are drawn (``tasks.draw``), every member
    starts a new episode, and its first observation is returned (SB3
    convention: ``dones[i]`` True, the final observation in
    ``infos[i]["terminal_observation"]``, ``TimeLimit.truncated`` set on
    truncation, the new episode's reset info in ``reset_infos[i]``).

    A member that ends early (divergence: termination, as in `HPTuneEnv`)
    restarts at once on a fresh task of the same shape (``tasks.redraw``): it
    is re-initialised in place, scored untrained, trains its own warm-up
    interval (a batched step of the restarting members only), and then steps
    with the others. Its episode's plan is `EpisodePlan.rejoin` of the
    population's: the same interval and validation size, a budget of its
    warm-up plus the population's remaining intervals, so it ends with the
    others. Every episode SB3 sees is thus a real, complete episode with its own
    warm-up (restarted ones are shorter), and no member ever idles. If fewer
    than one interval would remain, all members are finished anyway.

    ## Arguments

    - ``tasks``: a `SyntheticFamily` (default: populations of generated tasks,
      `SyntheticPopulation`), a task name or `Task` (members are seeds and, with
      a ``subset`` fidelity, seeded subsets of it: `TaskPopulation`), or any
      `PopulationTasks`.
    - ``num_envs``: members per population.
    - ``config``: the episode's settings, an `hpenv.episode_config.EpisodeConfig`,
      used as given (the same config given to `HPTuneEnv` gives the same
      episodes); or give its fields as keywords (``tuned``, ``budget``,
      ``decisions``, ``initial``...: as `HPTuneEnv`), not both. Built from
      keywords, the config's ``initial`` defaults to meta-training's range,
      `META_INITIAL` (lr in [default / 100, default * 30]), not `HPTuneEnv`'s.
      Members share their batch size, so ``tuned`` and ``initial`` cannot name it.
    - ``device``, ``data_dir``, ``data_fn``: as `HPTuneEnv`.
    - ``stats_every``: as `TrainingRun`.
    - ``render_mode``: None or ``"ansi"`` (``env_method("render")`` gives each
      member's line).

    Seeding: ``seed(s)`` (or the constructor's ``seed``) seeds the population's
    own generator at the next ``reset()``; every draw (tasks, episode seeds,
    starting hyperparameters, run seeds) comes from it. No global RNG.

    ## Info

    Each step's ``infos[i]`` has `HPTuneEnv.step`'s keys (task, hparams,
    samples, budget, train_loss, train_loss_std, grad_norm, update_ratio,
    val_loss, val_accuracy, diverged; wall_time, train_time and eval_time at an
    episode's end, measured on the whole population's calls). ``reset_infos[i]``
    has `HPTuneEnv.reset`'s.
    """

    def __init__(
        self,
        tasks: str | Task | SyntheticFamily | PopulationTasks | None = None,
        num_envs: int = 16,
        *,
        config: EpisodeConfig | None = None,
        device: str = "auto",
        data_dir: str | None = None,
        data_fn: Callable[[Task], TaskData] | None = None,
        stats_every: int = 4,
        seed: int | None = None,
        render_mode: str | None = None,
        **settings: Any,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.config = EpisodeConfig.resolve(
            config, settings, owner="PopulationVecEnv", defaults={"initial": META_INITIAL}
        )
        for name in (*self.tuned, *self.config.initial):
            if name in SHARED_HPARAMS:
                raise ValueError(
                    f"{name} is shared by a population's members (lock-step); it cannot be "
                    "tuned or drawn per member: use HPTuneEnv with SubprocVecEnv for that"
                )
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', not {render_mode!r}")
        self.stats_every = stats_every
        self.device = resolve_device(device)
        self.source = self._source(tasks, data_dir, data_fn)
        self.render_mode = render_mode
        self._views = [MemberView(self, i) for i in range(num_envs)]
        if self.config.layout != 1 or self.config.probe is not None:
            raise InputError(
                "PopulationVecEnv runs observation layout 1 episodes only for now (no probe, no "
                "base schedule, no paired reward): use HPTuneEnv (-v1 ids) for layout 2"
            )
        self._features = [FeatureTracker() for _ in range(num_envs)]
        self._rewards: list[Reward] = [self.config.make_reward() for _ in range(num_envs)]
        self.population: Population | None = None
        self.plan: EpisodePlan | None = None
        self.episodes: list[Episode] = []
        self.member_tasks: list[MemberTask] = []
        #: Per member: the seed of its current episode's draws and of its run.
        self.episode_seeds: list[int] = [0] * num_envs
        self.run_seeds: list[int] = [0] * num_envs
        self._intervals_done = 0
        self._actions: np.ndarray | None = None
        self._rng: np.random.Generator | None = None
        super().__init__(
            num_envs,
            observation_space(),
            action_space(len(self.tuned), self.action_mode),
        )
        if seed is not None:
            self.seed(seed)

    # ------------------------------------------------------------------ VecEnv API

    def reset(self) -> np.ndarray:
        """Draw a new population and start every member's episode (warm-up included)."""
        if self._seeds[0] is not None or self._rng is None:
            self._rng, _ = seeding.np_random(self._seeds[0])
        self._reset_seeds()
        self._reset_options()
        obs, infos = self._start_population()
        self.reset_infos = infos
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        actions = self._actions
        if self.population is None or actions is None:
            raise RuntimeError("call reset() before stepping, and step_async() before step_wait()")
        self._actions = None
        results = self._step_members(actions)
        self._intervals_done += 1
        obs = np.stack([r[0] for r in results])
        rewards = np.array([r[1] for r in results], dtype=np.float32)
        dones = np.array([r[2] or r[3] for r in results], dtype=bool)
        infos = [r[4] for r in results]
        for i in map(int, np.flatnonzero(dones)):
            infos[i]["terminal_observation"] = obs[i].copy()
            infos[i]["TimeLimit.truncated"] = results[i][3] and not results[i][2]
        if dones.all():
            obs, self.reset_infos = self._start_population()
        elif dones.any():
            restarted = [int(i) for i in np.flatnonzero(dones)]
            new_obs, new_infos = self._restart(restarted)
            for k, i in enumerate(restarted):
                obs[i], self.reset_infos[i] = new_obs[k], new_infos[k]
        return obs, rewards, dones, infos

    def _step_members(self, actions: np.ndarray) -> list[StepResult]:
        """Apply every member's action, train the live members one interval, score them."""
        population = self.population
        assert population is not None
        # Every action is checked (apply_action raises on NaN) before any is applied.
        new = [
            apply_action(self.tuned, self.action_mode, actions[i], population.hparams[i])
            for i in range(self.num_envs)
        ]
        results: dict[int, StepResult] = {}
        for i, episode in enumerate(self.episodes):
            if episode.warmup_diverged:  # nothing the agent did: end without a penalty
                results[i] = episode.end_without_training()
            else:
                population.apply_hparams(i, new[i])
        live = [i for i in range(self.num_envs) if i not in results]
        if live:
            samples = {self.episodes[i].next_samples(population.samples_done[i]) for i in live}
            if len(samples) != 1:  # cannot happen: plans are aligned by construction
                raise RuntimeError(f"population members out of step: {sorted(samples)}")
            stats = population.train(samples.pop())
            evaluations = population.evaluate()
            hparams, max_loss = population.hparams, population.max_loss
            for i in live:
                evaluation = None if stats[i].diverged else evaluations[i]
                results[i] = self.episodes[i].step(stats[i], evaluation, hparams[i], max_loss[i])
        return [results[i] for i in range(self.num_envs)]

    def close(self) -> None:
        """Release the population (its tensors)."""
        self.population = None
        self.episodes = []

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Attribute ``attr_name`` of each member's `MemberView`."""
        return [getattr(self._views[i], attr_name) for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set ``attr_name`` on each member's `MemberView`."""
        for i in self._get_indices(indices):
            setattr(self._views[i], attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call ``method_name`` of each member's `MemberView` (e.g. ``render``)."""
        return [
            getattr(self._views[i], method_name)(*method_args, **method_kwargs)
            for i in self._get_indices(indices)
        ]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """Members are not Gymnasium environments, so never wrapped."""
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]

    # ------------------------------------------------------------------ episodes

    def _start_population(self) -> tuple[np.ndarray, list[dict[str, Any]]]:
        assert self._rng is not None
        self.member_tasks = self.source.draw(self._rng, self.num_envs)
        self.plan = self._plan(self.member_tasks[0])
        members = [self._new_member(i, mt) for i, mt in enumerate(self.member_tasks)]
        self.population = Population(
            members, device=self.device, val_size=self.plan.val_size, stats_every=self.stats_every
        )
        self._intervals_done = 1
        indices = list(range(self.num_envs))
        return self._begin(indices, [self.plan] * self.num_envs, members)

    def _restart(self, indices: list[int]) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
        """Restart members ``indices`` on fresh tasks of the same shape (see class docstring)."""
        population, plan = self.population, self.plan
        assert population is not None
        assert plan is not None
        assert self._rng is not None
        joined = plan.rejoin(self._intervals_done)
        members = []
        for i in indices:
            self.member_tasks[i] = self.source.redraw(self._rng, self.member_tasks[i])
            member = self._new_member(i, self.member_tasks[i])
            population.reinit(i, member)
            members.append(member)
        obs, infos = self._begin(indices, [joined] * len(indices), members)
        return list(obs), infos

    def _begin(
        self, indices: list[int], plans: list[EpisodePlan], members: list[Member]
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Score members ``indices`` untrained, train their warm-up, start their episodes."""
        population = self.population
        assert population is not None
        subset = None if len(indices) == self.num_envs else indices
        initial = population.evaluate(members=subset)
        new = [
            Episode(m.task, plan, self._features[i], self._rewards[i], m.resolved_hparams(), first)
            for i, m, plan, first in zip(indices, members, plans, initial, strict=True)
        ]
        if subset is None:
            self.episodes = new
        else:
            for i, episode in zip(indices, new, strict=True):
                self.episodes[i] = episode
        stats = population.train(new[0].next_samples(0), members=subset)
        evaluations = population.evaluate(members=subset)
        results = [
            episode.warmup(s, None if s.diverged else e, m.resolved_hparams())
            for episode, s, e, m in zip(new, stats, evaluations, members, strict=True)
        ]
        return np.stack([obs for obs, _ in results]), [info for _, info in results]

    def _new_member(self, index: int, member_task: MemberTask) -> Member:
        """Member ``index``'s next episode: its draws come from a generator of its own."""
        assert self._rng is not None
        self.episode_seeds[index] = int(self._rng.integers(2**31 - 1))
        rng, _ = seeding.np_random(self.episode_seeds[index])
        # The order of HPTuneEnv.reset: starting hyperparameters, then the run seed.
        task = member_task.task
        hparams = self.config.initial_hparams(task, rng)
        self.run_seeds[index] = int(rng.integers(2**31 - 1))
        return Member(task, seed=self.run_seeds[index], hparams=hparams, data=member_task.data)

    def _plan(self, member_task: MemberTask) -> EpisodePlan:
        return self.config.plan(member_task.task, member_task.data.train_x.shape[0])

    def _source(
        self,
        tasks: str | Task | SyntheticFamily | PopulationTasks | None,
        data_dir: str | None,
        data_fn: Callable[[Task], TaskData] | None,
    ) -> PopulationTasks:
        if tasks is None:
            return SyntheticPopulation()
        if isinstance(tasks, SyntheticFamily):
            return SyntheticPopulation(tasks)
        if isinstance(tasks, str | Task):
            task = get_task(tasks) if isinstance(tasks, str) else tasks
            subset = self.config.task_fidelity(task.name).subset
            return TaskPopulation(task, subset=subset, data_dir=data_dir, data_fn=data_fn)
        if hasattr(tasks, "draw") and hasattr(tasks, "redraw"):
            return tasks
        raise ValueError(
            "tasks must be a SyntheticFamily, a task name, a Task or a PopulationTasks source; "
            f"got {tasks!r}"
        )


class MemberView:
    """What `PopulationVecEnv.get_attr`, ``set_attr`` and ``env_method`` see as environment i.

    Read-only views of member ``index``'s episode (``task``, ``hparams``,
    ``plan``, ``episode``, ``episode_seed``, ``run_seed``) and the vectorised
    env's settings (``render_mode``, spaces, ``config``, ``tuned``,
    ``action_mode``, ``decisions``: what an `HPTuneEnv` answers too);
    ``set_attr`` stores other attributes here.
    """

    def __init__(self, venv: PopulationVecEnv, index: int) -> None:
        self._venv, self.index = venv, index

    @property
    def render_mode(self) -> str | None:
        return self._venv.render_mode

    @property
    def observation_space(self) -> gym.Space[Any]:
        return self._venv.observation_space

    @property
    def action_space(self) -> gym.Space[Any]:
        return self._venv.action_space

    @property
    def config(self) -> EpisodeConfig:
        return self._venv.config

    @property
    def tuned(self) -> tuple[str, ...]:
        return self._venv.tuned

    @property
    def action_mode(self) -> str:
        return self._venv.action_mode

    @property
    def decisions(self) -> int:
        return self._venv.decisions

    @property
    def episode(self) -> Episode:
        if not self._venv.episodes:
            raise RuntimeError("call reset() first")
        return self._venv.episodes[self.index]

    @property
    def task(self) -> Task:
        return self.episode.task

    @property
    def plan(self) -> EpisodePlan:
        return self.episode.plan

    @property
    def hparams(self) -> HParams:
        population = self._venv.population
        if population is None:
            raise RuntimeError("call reset() first")
        return population.hparams[self.index]

    @property
    def episode_seed(self) -> int:
        return self._venv.episode_seeds[self.index]

    @property
    def run_seed(self) -> int:
        return self._venv.run_seeds[self.index]

    def render(self) -> str | None:
        """The member's one-line summary (``render_mode="ansi"``), else None."""
        if self.render_mode != "ansi":
            return None
        return self.episode.render_text(self.tuned)

    def get_wrapper_attr(self, name: str) -> Any:
        return getattr(self, name)
