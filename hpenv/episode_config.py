"""`EpisodeConfig`: every setting of an episode, as one frozen object.

`hpenv.env.HPTuneEnv` and `agents.metatrain.population_vec.PopulationVecEnv`
both take one (``config=``), or build one from the same keywords
(``**settings``, the names of its fields), so an episode means the same thing
whichever of them runs it, and one object carries the settings of one
meta-training run to every environment it starts (subprocesses, a population,
Ray actors). All checks of the settings are here, made once when the object is
built; the environments only read it.

What an environment takes besides its config (the task source, ``device``,
``data_dir``, ``data_fn``, ``render_mode``, seeding) is where and how it runs,
not what an episode is, and stays a constructor argument.

Mappings (``initial``, ``fidelity``) are stored as `FrozenMap`: immutable,
hashable, and picklable (`types.MappingProxyType` is not), so a config crosses
to `SubprocVecEnv` workers and Ray actors as it is.

Example:
    >>> config = EpisodeConfig(budget=600, decisions=3, initial={"lr": 0.01})
    >>> config.initial
    FrozenMap({'lr': 0.01})
    >>> config.replace(decisions=5).decisions
    5
    >>> EpisodeConfig(decisions=0)
    Traceback (most recent call last):
    ...
    ValueError: decisions must be a whole number >= 1, got 0
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from hpenv.base import BaseConfig, BaseSchedule, ProbeStart, ResidualRate
from hpenv.episode import DEFAULT_INITIAL, InitialValue, check_initial, draw_initial_hparams
from hpenv.errors import InputError
from hpenv.hyperparams import (
    ACTION_MODES,
    OPTIMIZERS,
    ActionMode,
    FallHold,
    HParams,
    OptimizerName,
    RiseGuard,
    Tunable,
    check_tuned,
)
from hpenv.plan import (
    DEFAULT_DECISIONS,
    EpisodePlan,
    Fidelity,
    budget_samples,
    check_schedule,
    plan_episode,
    split_budget,
)
from hpenv.probe import ProbeConfig, ProbeResult
from hpenv.rewards import Reward, RewardName, make_reward

if TYPE_CHECKING:
    import numpy as np

    from hpenv.tasks import Task

V = TypeVar("V")


class FrozenMap(Mapping[str, V]):
    """An immutable mapping that hashes and pickles (a config's ``initial`` and ``fidelity``).

    >>> import pickle
    >>> frozen = FrozenMap({"lr": 0.01})
    >>> pickle.loads(pickle.dumps(frozen)) == frozen == {"lr": 0.01}
    True
    """

    def __init__(self, items: Mapping[str, V] | None = None) -> None:
        self._items: dict[str, V] = dict(items or {})

    def __getitem__(self, key: str) -> V:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._items == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"


_NO_FIDELITY: FrozenMap[Fidelity] = FrozenMap()


@dataclass(frozen=True)
class EpisodeConfig:
    """The settings of an episode (see `hpenv.env.HPTuneEnv`'s Arguments for their effect).

    Attributes:
        tuned: Hyperparameters the agent controls, in action order (a single
            name is accepted for a one-element tuple).
        action_mode: ``"continuous"`` or ``"discrete"``.
        budget: Episode budget in training samples; default: the task's.
        budget_epochs: Episode budget in passes over the (subset) training
            split (give this or ``budget``).
        decisions: Decisions per episode; the budget is split into
            ``decisions + 1`` intervals (the warm-up, then one per decision).
        interval: Interval in samples, overriding the split of the budget.
        reward: Reward function (`hpenv.rewards`). A paired one
            (``paired_log_val_loss``) trains a reference run beside the episode's,
            which takes the neutral action: the base schedule with a base, else the
            episode's starting hyperparameters (static).
        divergence_penalty: Extra penalty on divergence; None: the reward's default.
        initial: Hyperparameter -> fixed value, ``(low, high)`` range or
            `hpenv.episode.Around`; default `hpenv.episode.DEFAULT_INITIAL`
            (`PopulationVecEnv` builds its config from settings with
            meta-training's range instead, see there). None means the default.
        optimizer: Replaces the task's optimizer kind (at its usual rate,
            `hpenv.hyperparams.with_optimizer`).
        optimizers: Each episode draws its optimizer from these (uniformly, first of
            its draws) instead; give this or ``optimizer``.
        subset: Train on this fraction of the training split.
        fidelity: Task name -> `Fidelity` (or a mapping of its fields): the run
            size of that task, taking precedence over ``subset``, ``budget``,
            ``budget_epochs`` and ``val_size``. None means no entries.
        val_size: Validation samples scored per decision; default: the task's,
            at most the interval.

        probe: The learning-rate range test before the warm-up (`hpenv.probe`): its
            samples are reserved at the start of the budget, the sweep rolls back.
            None: no probe.
        base: The base schedule read off the probe (`hpenv.base`). Given, the
            episode is of observation layout 2 (layout 1's features and the
            probe's) and the rate action is residual over the base (the neutral
            action follows it); None: layout 1, multiplicative actions.
        rise_guard: Hold the rate's rises until the validation loss improves on the
            loss of the last rise (`hpenv.hyperparams.RiseGuard`); a policy trained
            with it meets it when deployed too.
        fall_hold: Hold the rate's falls below the run's start while the validation loss
            improves by more than this threshold (in ln; `hpenv.hyperparams.FallHold`,
            e.g. `hpenv.hyperparams.FALL_HOLD_THRESHOLD`); a policy trained with it meets
            it when deployed too. None: no hold. Layout 1 only.
        probe_start: A layout-1 episode (no ``base``) with a ``probe`` starts at the
            probe's rate (`hpenv.base.ProbeStart`); None: at its drawn rate (the
            probe, if any, only costs its samples).
        observe_optimizer: The observation also says whether the run's optimizer is
            SGD: layout 3 (layout 1's features and ``optimizer_sgd``,
            `hpenv.observation.OPTIMIZER_FEATURES`); not with a ``base``.
        lr_scale: Each episode draws a hidden rate scale log-uniformly from
            [1 / ``lr_scale``, ``lr_scale``]: its optimizer trains at that multiple of
            the rate the policy sets and observes (`hpenv.training.TrainingRun`'s
            ``lr_scale``), so a task's best rate moves by the inverse factor and the
            absolute rate no longer says where it lies; the policy has to read it off
            the run. 1 (the default): no scale and no draw. Layout 1 and 3 episodes
            without a probe only.

    Raises:
        ValueError: A setting is invalid (`hpenv.errors.InputError` for a name
            or value the caller gave; the message says what to change).
    """

    tuned: tuple[str, ...] = ("lr",)
    action_mode: ActionMode = "continuous"
    budget: int | None = None
    budget_epochs: float | None = None
    decisions: int = DEFAULT_DECISIONS
    interval: int | None = None
    reward: RewardName = "log_val_loss"
    divergence_penalty: float | None = None
    initial: Mapping[str, InitialValue] = FrozenMap(DEFAULT_INITIAL)
    optimizer: OptimizerName | None = None
    optimizers: tuple[OptimizerName, ...] = ()
    subset: float | None = None
    fidelity: Mapping[str, Fidelity] = _NO_FIDELITY
    val_size: int | None = None
    probe: ProbeConfig | None = None
    base: BaseConfig | None = None
    rise_guard: bool = False
    fall_hold: float | None = None
    probe_start: ProbeStart | None = None
    observe_optimizer: bool = False
    lr_scale: float = 1.0

    def __post_init__(self) -> None:
        tuned = (self.tuned,) if isinstance(self.tuned, str) else tuple(self.tuned)
        check_tuned(tuned)
        object.__setattr__(self, "tuned", tuned)
        if self.action_mode not in ACTION_MODES:
            raise InputError(f"action_mode must be one of {ACTION_MODES}, not {self.action_mode!r}")
        _ = self.run_size  # Fidelity checks subset, budget, budget_epochs and val_size
        check_schedule(self.decisions, self.interval)
        if self.budget is not None:  # a fixed budget is checked now; others at reset
            split_budget(self.budget, self.decisions, self.interval)
        self.make_reward()  # checks the name and the penalty
        initial = DEFAULT_INITIAL if self.initial is None else self.initial
        check_initial(initial)
        object.__setattr__(self, "initial", FrozenMap(initial))
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            raise InputError(
                f"optimizer must be one of {OPTIMIZERS} (or None: the task's), "
                f"got {self.optimizer!r}"
            )
        object.__setattr__(self, "optimizers", tuple(self.optimizers))
        unknown = [o for o in self.optimizers if o not in OPTIMIZERS]
        if unknown:
            raise InputError(f"optimizers must name some of {OPTIMIZERS}, got {unknown}")
        if self.optimizers and self.optimizer is not None:
            raise InputError("give optimizer (one for every episode) or optimizers, not both")
        object.__setattr__(self, "fidelity", _fidelity_table(self.fidelity))
        if self.probe is not None and not isinstance(self.probe, ProbeConfig):
            raise InputError(f"probe must be a ProbeConfig (or None), got {self.probe!r}")
        if self.base is not None and not isinstance(self.base, BaseConfig):
            raise InputError(f"base must be a BaseConfig (or None), got {self.base!r}")
        if self.probe_start is not None:
            if not isinstance(self.probe_start, ProbeStart):
                raise InputError(
                    f"probe_start must be a ProbeStart (or None), got {self.probe_start!r}"
                )
            if self.base is not None:
                raise InputError("a layout-2 episode starts at its base: give base or probe_start")
            if self.probe is None:
                raise InputError("a probe start reads the probe: give probe=ProbeConfig() too")
        if self.rise_guard and self.base is not None:
            RiseGuard.check_steer_mode(self.base.steer_mode)
        if self.fall_hold is not None:
            if self.base is not None:
                raise InputError(
                    "the fall hold holds a layout-1 policy's moves of the rate; a layout-2 "
                    "episode steers around a base: give base or fall_hold"
                )
            try:
                object.__setattr__(self, "fall_hold", FallHold(self.fall_hold).threshold)
            except ValueError as exc:
                raise InputError(str(exc)) from None
        if self.observe_optimizer and self.base is not None:
            raise InputError(
                "observe_optimizer makes the observation layout 3 (layout 1's features and the "
                "optimizer's); a base schedule's episode is of layout 2: give base or "
                "observe_optimizer"
            )
        if not (isinstance(self.lr_scale, (int, float)) and 1.0 <= self.lr_scale < math.inf):
            raise InputError(
                f"lr_scale must be a number >= 1 (1: no hidden rate scale), got {self.lr_scale!r}"
            )
        object.__setattr__(self, "lr_scale", float(self.lr_scale))
        if self.lr_scale != 1.0 and self.probe is not None:
            raise InputError(
                "lr_scale hides a scale of the rate from the policy; a probe sweeps the "
                "optimizer's rate itself: give probe or lr_scale, not both"
            )
        if self.base is not None and "lr" not in tuned:
            raise InputError("a base schedule steers the rate: tuned must include 'lr'")

    @property
    def layout(self) -> int:
        """The observation layout of the episode (`hpenv.observation.LAYOUTS`): 2 with a
        base schedule, 3 when it observes the optimizer, else 1."""
        if self.base is not None:
            return 2
        return 3 if self.observe_optimizer else 1

    @classmethod
    def resolve(
        cls,
        config: EpisodeConfig | None,
        settings: Mapping[str, Any],
        *,
        owner: str,
        defaults: Mapping[str, Any] | None = None,
    ) -> EpisodeConfig:
        """An environment's config: ``config`` as given, or one built from ``settings``.

        Args:
            config: The config given to the environment (``config=``), if any.
            settings: The episode keywords given to it (field names).
            owner: The environment's name, for messages.
            defaults: The environment's own defaults of fields that ``settings``
                leave out or give as None (`PopulationVecEnv`'s ``initial``).

        Raises:
            InputError: Both ``config`` and ``settings`` were given, or
                ``config`` is not an `EpisodeConfig`.
            TypeError: ``settings`` holds a name that is not a field.
        """
        if config is not None:
            if settings:
                names = sorted(settings)
                changes = ", ".join(f"{name}=..." for name in names)
                raise InputError(
                    f"{owner}: give config= or episode settings, not both (got config and "
                    f"{', '.join(names)}); put them in the config: config=config.replace({changes})"
                )
            if not isinstance(config, EpisodeConfig):
                raise InputError(
                    f"{owner}: config must be an EpisodeConfig, got {type(config).__name__}; "
                    "build one with EpisodeConfig(...) or give its fields as keywords"
                )
            return config
        unknown = set(settings) - FIELDS
        if unknown:
            raise TypeError(
                f"{owner} got unknown episode settings {sorted(unknown)}; "
                f"known: {', '.join(sorted(FIELDS))}"
            )
        given = {k: v for k, v in settings.items() if v is not None or k not in (defaults or {})}
        return cls(**{**(defaults or {}), **given})

    def replace(self, **changes: Any) -> EpisodeConfig:
        """A copy with ``changes`` (checked like a new config)."""
        return dataclasses.replace(self, **changes)

    @property
    def tunables(self) -> tuple[Tunable, ...]:
        """The `Tunable` of each tuned hyperparameter, in action order."""
        return check_tuned(self.tuned)

    @property
    def run_size(self) -> Fidelity:
        """The run size of every task (``subset``, budget, ``val_size``); see `task_fidelity`."""
        return Fidelity(
            subset=self.subset,
            budget=self.budget,
            budget_epochs=self.budget_epochs,
            val_size=self.val_size,
        )

    def task_fidelity(self, task: str) -> Fidelity:
        """The run size of an episode of task ``task``: its ``fidelity`` entry over `run_size`."""
        return self.fidelity.get(task, Fidelity()).over(self.run_size)

    def plan(self, task: Task, n_train: int, batch_size: int = 0) -> EpisodePlan:
        """The plan of an episode of ``task`` with ``n_train`` training samples (after the
        subset); with a probe, the samples it reserves at ``batch_size`` come first.

        Raises:
            ValueError: The task's budget cannot be split into ``decisions``.
        """
        fidelity = self.task_fidelity(task.name)
        budget = budget_samples(fidelity, n_train, task.budget_epochs)
        probe = 0
        if self.probe is not None:
            probe = self.probe.samples_for(budget, min(batch_size, n_train))
        return plan_episode(
            budget=budget,
            decisions=self.decisions,
            interval=self.interval,
            val_size=fidelity.val_size,
            task_val_size=task.val_size,
            probe=probe,
        )

    def base_schedule(
        self, probe: ProbeResult | None, start: HParams, plan: EpisodePlan
    ) -> BaseSchedule | None:
        """The base of a run of ``plan`` that started at ``start`` (its rate and batch
        size) and whose probe found ``probe`` (None: it had none); None without a base
        (layout 1)."""
        if self.base is None:
            return None
        return self.base.schedule_for(probe, start, plan)

    def residual(self) -> ResidualRate:
        """A run's residual rate action (`hpenv.base.BaseConfig.residual`; layout 1 never
        steps it)."""
        return (self.base or BaseConfig()).residual()

    def max_offset(self, base: BaseSchedule | None) -> float:
        """The residual's range for a run over ``base`` (its `base_schedule`;
        `hpenv.base.BaseConfig.max_offset`): pass it to `ResidualRate.reset`."""
        return (self.base or BaseConfig()).max_offset(base)

    def initial_hparams(
        self,
        task: Task,
        rng: np.random.Generator,
        overrides: Mapping[str, InitialValue] | None = None,
        optimizer: OptimizerName | None = None,
    ) -> HParams:
        """An episode's starting hyperparameters (`hpenv.episode.draw_initial_hparams`).

        ``overrides`` replace entries of ``initial`` for this episode (checked by the caller).
        ``optimizer``: one the caller drew with `draw_optimizer` (a population, whose members
        share it); None: the episode draws its own.
        """
        initial = {**self.initial, **(overrides or {})}
        if optimizer is None:
            optimizer = self.draw_optimizer(rng)
        return draw_initial_hparams(task, rng, initial, self.tunables, optimizer)

    def draw_optimizer(self, rng: np.random.Generator) -> OptimizerName | None:
        """One of ``optimizers``, uniformly from ``rng``; without them ``optimizer`` (None:
        the task's own) and no draw."""
        if not self.optimizers:
            return self.optimizer
        return self.optimizers[int(rng.integers(len(self.optimizers)))]

    def draw_lr_scale(self, rng: np.random.Generator) -> float:
        """An episode's hidden rate scale (see ``lr_scale``): log-uniform in [1 / ``lr_scale``,
        ``lr_scale``] from ``rng``; 1 without one, drawing nothing (so ``rng``'s stream, and
        every episode, stays what it was without the setting)."""
        if self.lr_scale == 1.0:
            return 1.0
        half = math.log(self.lr_scale)
        return math.exp(float(rng.uniform(-half, half)))

    def make_reward(self) -> Reward:
        """A fresh reward function of this episode (one per running episode)."""
        return make_reward(self.reward, self.divergence_penalty)


class EpisodeSettings:
    """What an environment built on an `EpisodeConfig` shows of it as attributes."""

    config: EpisodeConfig

    @property
    def tuned(self) -> tuple[str, ...]:
        """The tuned hyperparameters, in action order (``config.tuned``)."""
        return self.config.tuned

    @property
    def action_mode(self) -> ActionMode:
        """``config.action_mode``."""
        return self.config.action_mode

    @property
    def decisions(self) -> int:
        """Decisions per episode (``config.decisions``)."""
        return self.config.decisions


#: The names of `EpisodeConfig`'s fields: the episode keywords of the environments.
FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(EpisodeConfig))


def _fidelity_table(table: Mapping[str, Any] | None) -> FrozenMap[Fidelity]:
    """``fidelity`` frozen, each entry a `Fidelity` (mappings of its fields are converted)."""
    if table is None:
        return _NO_FIDELITY
    if not isinstance(table, Mapping):
        raise InputError(
            "fidelity must map task names to Fidelity objects (or mappings of their fields), "
            f"e.g. {{'digits': Fidelity(budget_epochs=4)}}; got {table!r}"
        )
    return FrozenMap({name: Fidelity.coerce(value, name) for name, value in table.items()})
