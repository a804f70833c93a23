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

import math
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
from hpenv.base import apply_residual, rate_after_probe
from hpenv.env import observation_space
from hpenv.episode import Around, Episode, InitialValue, StepResult
from hpenv.episode_config import EpisodeConfig, EpisodeSettings, FrozenMap
from hpenv.errors import InputError
from hpenv.hyperparams import HParams, OptimizerName, action_space, apply_action
from hpenv.observation import FeatureTracker
from hpenv.plan import EpisodePlan
from hpenv.population import SHARED_HPARAMS, Member, Population
from hpenv.probe import ProbeResult, probe_population
from hpenv.rewards import PAIRED_REWARDS, Reward
from hpenv.tasks import SyntheticFamily, Task, TaskData, get_task
from hpenv.training import resolve_device

#: Meta-training's starting range (`agents.metatrain.config.episode_config` by default): runs
#: started up to 100x too low or 30x too high.
META_INITIAL: Mapping[str, InitialValue] = FrozenMap({"lr": Around(100.0, 30.0)})
#: With a paired reward: members per hidden reference member, unless given (a population of
#: N + N/4 members).
DEFAULT_GROUP_SIZE = 4


class PopulationVecEnv(VecEnv, EpisodeSettings):
    """N `HPTuneEnv`-equivalent episodes, one per population member, stepped as one batch.

    ## Description

    Environment ``i`` is member ``i`` of a `Population`: a training run whose
    episode is exactly an `HPTuneEnv` episode (same plan, probe, base, warm-up,
    observation, reward, info). All members train one interval per
    `step_wait`, in one batched computation. A population shares its
    architecture, batch size, optimizer kind, budget and interval schedule;
    members differ in data, run seed and hyperparameters.

    ## Spaces

    As `HPTuneEnv` with the same config: the observation is of layout
    ``config.layout`` (`hpenv.observation`): ``Box((20,), float32)``, or
    ``Box((33,), float32)`` with a base schedule (``config.base``, layout 2: the
    `-v1` ids' episodes), or ``Box((21,), float32)`` when it observes the optimizer
    (``config.observe_optimizer``, layout 3); the action ``Box(-1, 1, (k,))`` or
    ``MultiDiscrete([3] * k)`` for the ``k`` tuned hyperparameters, the rate's
    residual over the base in layout 2 (`hpenv.base`: each member has its own
    `ResidualRate`, reset per episode). The batch size is shared by the
    population and cannot be tuned.

    ## Rewards, Starting State

    As `HPTuneEnv` (`hpenv.rewards`, `hpenv.episode.draw_initial_hparams`): a
    member's episode starts with the untrained model's validation metrics,
    then (with ``config.probe``) the probe, run for every starting member at
    once (`hpenv.probe.probe_population`), the base read off each member's own
    probe (``config.base``; the rate set to it), and a warm-up interval.

    Paired rewards (``paired_log_val_loss``) need the base schedule's run beside
    each episode: **reference members**. The N environments come in groups of
    ``group_size`` (k) consecutive members that share their task, data, episode
    seed, run seed and starting hyperparameters; each group has one hidden
    reference member (a population member that is not an environment) with
    the same task, seed and hyperparameters. Group members and their
    reference are started in the same batched calls (evaluation, probe,
    warm-up), so they are in exactly the same state when the first action is
    taken (tested bitwise: they share initial weights, data order and probe);
    each step the reference trains the same interval at the group's base rate,
    ``base.lr(progress)`` (the neutral action), and each member's reward is its
    margin over it (``info["reference_val_loss"]``; NaN once the reference
    diverged). Members of a group differ only by what the policy does, so a
    neutral member's rewards are exactly 0.

    Cost: a population of N + N/k members (the first N are the environments)
    when it starts. A member restarted mid-population (see below) is on a new
    task and seed, so it cannot share its group's reference: it starts a group
    of one with a reference of its own, started with it, in the slot of a
    reference no running episode uses any more (the whole group restarted) or,
    if none is free, in a slot added to the population (`Population.add`).
    So each restart can add one member until the population ends (at most N
    references in all); the next population starts at N + N/k again.

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
    is re-initialised in place, scored untrained, probes (if the config has a
    probe), trains its own warm-up interval (batched steps of the restarting
    members and their references only), and then steps with the others. Its
    episode's plan is `EpisodePlan.rejoin` of the population's: the same
    interval, validation size and probe reservation, a budget of the probe,
    its warm-up plus the population's remaining intervals, so it ends with the
    others. Every episode SB3 sees is thus a real, complete episode with its own
    warm-up (restarted ones are shorter), and no member ever idles. If fewer
    than one interval would remain, all members are finished anyway.

    ## Arguments

    - ``tasks``: a `SyntheticFamily` (default: populations of generated tasks,
      `SyntheticPopulation`), a task name or `Task` (members are seeds and, with
      a ``subset`` fidelity, seeded subsets of it: `TaskPopulation`), or any
      `PopulationTasks`.
    - ``num_envs``: members per population (environments).
    - ``config``: the episode's settings, an `hpenv.episode_config.EpisodeConfig`,
      used as given (the same config given to `HPTuneEnv` gives the same
      episodes); or give its fields as keywords (``tuned``, ``budget``,
      ``decisions``, ``initial``, ``probe``, ``base``...: as `HPTuneEnv`), not
      both. Built from keywords, the config's ``initial`` defaults to
      meta-training's range, `META_INITIAL` (lr in [default / 100, default *
      30]), not `HPTuneEnv`'s. Members share their batch size, so ``tuned`` and
      ``initial`` cannot name it.
    - ``group_size``: with a paired reward, members per reference member
      (``num_envs`` must be a multiple of it; default `DEFAULT_GROUP_SIZE`; 1:
      every member its own reference, a population of 2N). Other rewards have
      no reference members: every member is drawn on its own and this is
      unused.
    - ``device``, ``data_dir``, ``data_fn``: as `HPTuneEnv`.
    - ``stats_every``: as `TrainingRun`.
    - ``render_mode``: None or ``"ansi"`` (``env_method("render")`` gives each
      member's line).

    Seeding: ``seed(s)`` (or the constructor's ``seed``) seeds the population's
    own generator at the next ``reset()``; every draw (tasks, episode seeds,
    starting hyperparameters, run seeds) comes from it, one draw per group with
    a paired reward. No global RNG. With ``config.optimizers`` the population
    draws one optimizer for all its members (they share it), then the members
    draw the rest as `HPTuneEnv` does.

    ## Info

    Each step's ``infos[i]`` has `HPTuneEnv.step`'s keys (task, hparams,
    samples, budget, train_loss, train_loss_std, grad_norm, update_ratio,
    val_loss, val_accuracy, diverged, oom; reference_val_loss with a paired
    reward; wall_time, train_time and eval_time at an episode's end, measured
    on the whole population's calls). ``reset_infos[i]`` has
    `HPTuneEnv.reset`'s (with a base ``base_lr``, with a probe ``probe``).
    """

    def __init__(
        self,
        tasks: str | Task | SyntheticFamily | PopulationTasks | None = None,
        num_envs: int = 16,
        *,
        config: EpisodeConfig | None = None,
        group_size: int = DEFAULT_GROUP_SIZE,
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
        if self.config.lr_scale != 1.0:
            raise InputError(
                "PopulationVecEnv does not draw a hidden rate scale (lr_scale): its members "
                "train in one stacked optimizer; use HPTuneEnv (--vec-env subprocess or dummy)"
            )
        for name in (*self.tuned, *self.config.initial):
            if name in SHARED_HPARAMS:
                raise ValueError(
                    f"{name} is shared by a population's members (lock-step); it cannot be "
                    "tuned or drawn per member: use HPTuneEnv with SubprocVecEnv for that"
                )
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', not {render_mode!r}")
        #: Whether members are paired with reference members (a paired reward).
        self.paired = self.config.reward in PAIRED_REWARDS
        if group_size < 1 or (self.paired and num_envs % group_size):
            raise InputError(
                f"group_size must be >= 1 and divide num_envs ({num_envs}) with the "
                f"{self.config.reward!r} reward, got {group_size}; e.g. group_size=1"
            )
        self.group_size = group_size
        self.stats_every = stats_every
        self.device = resolve_device(device)
        self.source = self._source(tasks, data_dir, data_fn)
        self.render_mode = render_mode
        self._views = [MemberView(self, i) for i in range(num_envs)]
        self._features = [FeatureTracker(self.config.layout) for _ in range(num_envs)]
        self._rewards: list[Reward] = [self.config.make_reward() for _ in range(num_envs)]
        self._residuals = [self.config.residual() for _ in range(num_envs)]
        self.population: Population | None = None
        self.plan: EpisodePlan | None = None
        self.episodes: list[Episode] = []
        self.member_tasks: list[MemberTask] = []
        #: Per member: the seed of its current episode's draws and of its run.
        self.episode_seeds: list[int] = [0] * num_envs
        self.run_seeds: list[int] = [0] * num_envs
        #: Per member: the population index of its reference member (paired rewards only).
        self.references: list[int] = []
        #: Per population index: the run seed of what it trains (members, then references).
        self.slot_seeds: list[int] = []
        #: Reference member -> an episode of its group, whose base it follows.
        self._followed: dict[int, Episode] = {}
        self._intervals_done = 0
        self._actions: np.ndarray | None = None
        self._rng: np.random.Generator | None = None
        self._optimizer: OptimizerName | None = None
        super().__init__(
            num_envs,
            observation_space(self.config.layout),
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
        """Apply every member's action, train the live members (and their references) one
        interval, score them."""
        population = self.population
        assert population is not None
        new = self._new_hparams(actions, population.hparams)
        results: dict[int, StepResult] = {}
        for i, episode in enumerate(self.episodes):
            if episode.warmup_diverged:  # nothing the agent did: end without a penalty
                results[i] = episode.end_without_training()
            else:
                population.apply_hparams(i, new[i])
        live = [i for i in range(self.num_envs) if i not in results]
        if not live:
            return [results[i] for i in range(self.num_envs)]
        done = population.samples_done
        # References take the neutral action over the same interval: they follow their
        # group's base (layout 2) or keep the group's start (layout 1: static).
        references = sorted({self.references[i] for i in live}) if self.paired else []
        references = [r for r in references if not population.diverged[r]]
        for r in references:
            base_lr = self._followed[r].base_lr(done[r])
            if base_lr is not None:
                population.set_hparams(r, lr=base_lr)
        samples = {self.episodes[i].next_samples(done[i]) for i in live}
        samples |= {self._followed[r].next_samples(done[r]) for r in references}
        if len(samples) != 1:  # cannot happen: plans are aligned by construction
            raise RuntimeError(f"population members out of step: {sorted(samples)}")
        stats = population.train(samples.pop())
        evaluations = population.evaluate()
        hparams, max_loss = population.hparams, population.max_loss
        for i in live:
            evaluation = None if stats[i].diverged else evaluations[i]
            reference = None
            if self.paired:
                r = self.references[i]
                reference = math.nan if stats[r].diverged else evaluations[r].loss
            results[i] = self.episodes[i].step(
                stats[i], evaluation, hparams[i], max_loss[i], reference
            )
            if reference is not None:
                results[i][4]["reference_val_loss"] = reference
        return [results[i] for i in range(self.num_envs)]

    def _new_hparams(self, actions: np.ndarray, hparams: list[HParams]) -> list[HParams]:
        """Every member's hyperparameters after its action (`HPTuneEnv`'s rule: with a base,
        the rate is residual over it). All are checked (NaN raises) before any is used: on
        an error no member's residual offset has moved."""
        offsets = [residual.offset for residual in self._residuals]
        new = []
        assert self.population is not None
        done = self.population.samples_done
        try:
            for i in range(self.num_envs):
                base_lr = self.episodes[i].base_lr(done[i])
                action = self.episodes[i].guard_action(self.tuned, self.action_mode, actions[i])
                if base_lr is None:
                    new.append(apply_action(self.tuned, self.action_mode, action, hparams[i]))
                    continue
                residual = self._residuals[i]
                hp = apply_residual(
                    self.tuned, self.action_mode, action, hparams[i], residual, base_lr
                )
                new.append(hp)
        except ValueError:
            for residual, offset in zip(self._residuals, offsets, strict=True):
                residual.offset = offset
            raise
        return new

    def close(self) -> None:
        """Release the population (its tensors)."""
        self.population = None
        self.episodes = []
        self._followed = {}

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
        """A new population: a task and a draw per group (k members with a paired reward,
        else one), members 0..N-1, then one reference per group."""
        assert self._rng is not None
        n = self.num_envs
        k = self.group_size if self.paired else 1
        # Members share their optimizer: the population draws it (config.optimizers) once.
        self._optimizer = self.config.draw_optimizer(self._rng)
        drawn = self.source.draw(self._rng, n // k)
        groups = [self._draw_member(member_task) for member_task in drawn]
        self.member_tasks = [drawn[i // k] for i in range(n)]
        self.episode_seeds = [groups[i // k][0] for i in range(n)]
        members = [groups[i // k][1] for i in range(n)]
        self.run_seeds = [member.seed for member in members]
        references = [member for _, member in groups] if self.paired else []
        self.references = [n + i // k for i in range(n)] if self.paired else []
        self.slot_seeds = [member.seed for member in (*members, *references)]
        self.plan = self._plan(drawn[0], members[0].resolved_hparams().batch_size)
        self.population = Population(
            [*members, *references],
            device=self.device,
            val_size=self.plan.val_size,
            stats_every=self.stats_every,
        )
        self._followed = {}
        self._intervals_done = 1
        return self._begin(list(range(n)), self.plan)

    def _restart(self, indices: list[int]) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
        """Restart members ``indices`` on fresh tasks of the same shape, each (with a paired
        reward) with a reference of its own (see the class docstring)."""
        population, plan = self.population, self.plan
        assert population is not None
        assert plan is not None
        assert self._rng is not None
        joined = plan.rejoin(self._intervals_done)
        free = self._free_references(indices)
        for i in indices:
            self.member_tasks[i] = self.source.redraw(self._rng, self.member_tasks[i])
            self.episode_seeds[i], member = self._draw_member(self.member_tasks[i])
            self.run_seeds[i] = self.slot_seeds[i] = member.seed
            population.reinit(i, member)
            if not self.paired:
                continue
            if free:
                self.references[i] = slot = free.pop(0)
                population.reinit(slot, member)
                self.slot_seeds[slot] = member.seed
            else:
                self.references[i] = population.add(member)
                self.slot_seeds.append(member.seed)
        for slot in free:  # idle until a later restart needs it
            population.pause(slot)
            self._followed.pop(slot, None)
        obs, infos = self._begin(indices, joined)
        return list(obs), infos

    def _free_references(self, restarting: list[int]) -> list[int]:
        """Reference members that no member still running uses (lowest first)."""
        if not self.paired or self.population is None:
            return []
        used = {r for i, r in enumerate(self.references) if i not in restarting}
        return [r for r in range(self.num_envs, self.population.size) if r not in used]

    def _begin(
        self, indices: list[int], plan: EpisodePlan
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Start members ``indices`` (and their references) on ``plan``: score them
        untrained, probe, set each one's base, train their warm-up, start their episodes."""
        population = self.population
        assert population is not None
        references = sorted({self.references[i] for i in indices}) if self.paired else []
        slots = [*indices, *references]
        subset = None if slots == list(range(population.size)) else slots
        initial = population.evaluate(members=subset)
        probes = self._probe(subset, len(slots), plan)
        new = []
        for i, untrained, probe in zip(indices, initial, probes, strict=False):
            start = population.hparams[i]
            base = self.config.base_schedule(probe, start, plan)
            lr = rate_after_probe(probe, start.lr, base, self.config.probe_start)
            if lr is not None:
                population.set_hparams(i, lr=lr)
            new.append(
                Episode(population.task(i), plan, self._features[i], self._rewards[i],
                        population.hparams[i], untrained, probe, base,
                        rise_guard=self.config.rise_guard, fall_hold=self.config.fall_hold)
            )  # fmt: skip
            self._residuals[i].reset(self.config.max_offset(base))
        if indices == list(range(self.num_envs)):
            self.episodes = new
        else:
            for i, episode in zip(indices, new, strict=True):
                self.episodes[i] = episode
        for i in reversed(indices if self.paired else []):  # the group's first member leads
            self._followed[self.references[i]] = self.episodes[i]
            population.apply_hparams(self.references[i], population.hparams[i])
        first = indices[0]
        samples = self.episodes[first].next_samples(population.samples_done[first])
        stats = population.train(samples, members=subset)[: len(indices)]
        evaluations = population.evaluate(members=subset)[: len(indices)]
        results = [
            self.episodes[i].warmup(s, None if s.diverged else e, population.hparams[i])
            for i, s, e in zip(indices, stats, evaluations, strict=True)
        ]
        return np.stack([obs for obs, _ in results]), [info for _, info in results]

    def _probe(
        self, subset: list[int] | None, count: int, plan: EpisodePlan
    ) -> list[ProbeResult | None]:
        """The probes of ``subset`` (all members if None), or ``count`` Nones without one."""
        population = self.population
        assert population is not None
        if self.config.probe is None or not plan.probe:
            return [None] * count
        steps = plan.probe // population.batch_size_for_step()
        return list(probe_population(population, self.config.probe, steps, members=subset))

    def _draw_member(self, member_task: MemberTask) -> tuple[int, Member]:
        """A new episode's seed and run: its draws come from a generator of its own."""
        assert self._rng is not None
        episode_seed = int(self._rng.integers(2**31 - 1))
        rng, _ = seeding.np_random(episode_seed)
        # The order of HPTuneEnv.reset: starting hyperparameters, then the run seed.
        task = member_task.task
        hparams = self.config.initial_hparams(task, rng, optimizer=self._optimizer)
        seed = int(rng.integers(2**31 - 1))
        return episode_seed, Member(task, seed=seed, hparams=hparams, data=member_task.data)

    def _plan(self, member_task: MemberTask, batch_size: int) -> EpisodePlan:
        n_train = member_task.data.train_x.shape[0]
        return self.config.plan(member_task.task, n_train, batch_size)

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
    ``plan``, ``episode``, ``episode_seed``, ``run_seed``, ``reference``) and the vectorised
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

    @property
    def reference(self) -> int | None:
        """The population index of the member's reference member (None: no paired reward)."""
        return self._venv.references[self.index] if self._venv.paired else None

    def render(self) -> str | None:
        """The member's one-line summary (``render_mode="ansi"``), else None."""
        if self.render_mode != "ansi":
            return None
        return self.episode.render_text(self.tuned)

    def get_wrapper_attr(self, name: str) -> Any:
        return getattr(self, name)
