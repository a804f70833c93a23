"""`HPTuneEnv`: one training run of one task as a Gymnasium episode."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from hpenv.base import BaseSchedule, apply_residual, probe_and_base
from hpenv.episode import DEFAULT_INITIAL, Around, Episode, InitialValue, check_initial
from hpenv.episode_config import EpisodeConfig, EpisodeSettings
from hpenv.hyperparams import TUNABLES, HParams, action_space, apply_action
from hpenv.observation import OBS_VERSION, FeatureTracker, layout_bounds
from hpenv.plan import EpisodePlan, Fidelity
from hpenv.probe import ProbeResult
from hpenv.rewards import PAIRED_REWARDS
from hpenv.tasks import SyntheticFamily, Task, TaskData, get_task
from hpenv.training import TrainingRun, resolve_device

TaskArg = str | Task | SyntheticFamily | Sequence[str | Task | SyntheticFamily]


class HPTuneEnv(gym.Env[np.ndarray, np.ndarray], EpisodeSettings):
    """Tune a neural network's hyperparameters while it trains.

    ## Description

    An episode is one training run of one task (a dataset and a model, see
    `hpenv.tasks`). At each decision the agent adjusts the tuned
    hyperparameters; the run then trains for one interval of training samples
    and is scored on a fixed validation subset. The episode ends when the
    sample budget is spent (truncation) or the run diverges (termination).

    ## Action Space

    ``continuous`` (default): ``Box(-1, 1, (k,), float32)``, one entry per tuned
    hyperparameter in the order given by ``tuned``. Entry ``a`` moves the value by
    ``a`` times its maximum step on its own scale, then clips it to its range:

    | hyperparameter | range | scale | max change per decision |
    |---|---|---|---|
    | lr | [1e-6, 1] | log | x3 or /3 |
    | momentum (beta1) | [0, 0.999] | -ln(1 - m) | (1 - m) x2 or /2 |
    | weight_decay | [1e-6, 0.1] | log | x3 or /3 |
    | batch_size | [8, 1024] | powers of two | one doubling or halving (\\|a\\| >= 0.5) |
    | dropout | [0, 0.8] | linear | +-0.1 |

    ``discrete``: ``MultiDiscrete([3] * k)``: 0 decrease, 1 keep, 2 increase, each
    by the maximum change. NaN actions raise ``ValueError``; continuous values
    outside [-1, 1] are clipped.

    With ``rise_guard=True`` a rise of the rate is held (turned into ``keep``)
    until the validation loss has improved on the loss of the last rise
    (`hpenv.hyperparams.RiseGuard`). With ``fall_hold=t`` a fall of the rate below
    the run's start is held while the validation loss is a new best by more than
    ``t`` (`hpenv.hyperparams.FallHold`; layout 1).

    ## Observation Space

    ``Box(low, high, (20,), float32)``, the same for every task and every choice
    of tuned hyperparameters; layout version `hpenv.observation.OBS_VERSION`:

    | idx | feature | min | max |
    |---|---|---|---|
    | 0 | progress through the budget | 0 | 1 |
    | 1 | ln(train loss / initial val loss) | -10 | 5 |
    | 2 | ln(val loss / initial val loss) | -10 | 5 |
    | 3 | ln(train loss / previous train loss) | -3 | 3 |
    | 4 | ln(val loss / previous val loss) | -3 | 3 |
    | 5 | val accuracy | 0 | 1 |
    | 6 | change of val accuracy | -1 | 1 |
    | 7 | ln(val loss / train loss) (generalisation gap) | -5 | 5 |
    | 8 | ln(grad norm / first grad norm) | -10 | 10 |
    | 9 | log10(update-to-weight ratio) + 3 | -5 | 4 |
    | 10 | std / mean of batch losses | 0 | 5 |
    | 11 | progress since the best val loss | 0 | 1 |
    | 12 | ln(val loss / best val loss) | 0 | 5 |
    | 13 | divergence flag | 0 | 1 |
    | 14-18 | lr, momentum, weight decay, batch size, dropout: position in range | 0 | 1 |
    | 19 | ln(lr / initial lr) / ln(lr range) | -1 | 1 |

    With a base schedule (``base=``; the ``-v1`` ids) the observation is layout
    2, ``Box(low, high, (33,), float32)``: the 20 features above, then 13 read
    off the probe (`hpenv.observation.PROBE_FEATURES`):

    | idx | feature | min | max |
    |---|---|---|---|
    | 20 | the probe found a minimum | 0 | 1 |
    | 21-26 | ln(smoothed probe loss / its start) at rates 1e-5 ... 1 | -5 | 2 |
    | 27 | ln(lowest smoothed loss / start) | -5 | 0 |
    | 28-30 | log10(lr / the probe's lowest-loss, divergence, steepest rate) / 6 | -1 | 1 |
    | 31 | ln(lr / base rate) / ln(1000) | -1 | 1 |
    | 32 | base rate / its anchor (where in its decay) | 0 | 1 |

    With ``observe_optimizer=True`` (no base; no id of its own) the observation is
    layout 3, ``Box(low, high, (21,), float32)``: the 20 features of layout 1, then
    index 20, 1 when the run's optimizer is SGD and 0 for Adam or AdamW
    (`hpenv.observation.OPTIMIZER_FEATURES`), for policies meta-trained over the
    user's optimizer (``optimizers=``).

    ## Rewards

    Selected by ``reward`` (see `hpenv.rewards`). Default ``log_val_loss``: the
    decrease of the log validation loss since the previous decision, so the
    return is ln(initial / final val loss), comparable across tasks. Also
    ``val_accuracy`` (accuracy gain) and ``final_accuracy`` (sparse). An
    interval that ran out of device memory costs `hpenv.rewards.OOM_PENALTY`
    more. On divergence the step's reward is negative: for ``log_val_loss`` the log loss
    is taken to rise to the divergence threshold, minus a penalty of 1.0, so
    diverging never pays.

    ## Starting State

    A freshly initialised model. Initial hyperparameters are the task's
    defaults, except those in ``initial``: by default the learning rate is drawn
    log-uniformly from [default / 10, default * 10], so the agent must learn to
    correct a bad start. ``reset`` then trains a first (warm-up) interval at the
    initial hyperparameters, so that the first observation already shows how
    training goes: the agent never acts blind. The budget is split into
    ``decisions + 1`` intervals: the warm-up, then one per decision. Rewards
    count from the end of the warm-up. With ``probe`` and ``probe_start`` (layout 1)
    the run probes before the warm-up and starts at the probe's reading instead
    (`hpenv.base.ProbeStart`; the observation and actions stay layout 1's).

    ## Episode End

    - Termination: the loss or weights become non-finite, or the training loss
      exceeds 100x the loss of a uniform guess (divergence). If the run already
      diverged in the warm-up, the first step ends the episode with reward 0
      (the agent had no say).
    - Truncation: the budget of training samples is spent (changing the batch
      size cannot buy more training: the budget counts samples).

    ## Arguments

    ```python
    import gymnasium as gym
    import hpenv
    from hpenv.env import EpisodeConfig

    env = gym.make("HPTune-MNIST-v0", tuned=("lr", "batch_size"), budget=20_000,
                   decisions=10, subset=0.2, device="cpu")
    # the same episode settings as one object (shared by several environments):
    config = EpisodeConfig(tuned=("lr", "batch_size"), budget=20_000, decisions=10, subset=0.2)
    env = gym.make("HPTune-MNIST-v0", config=config, device="cpu")
    ```

    - ``task``: task name, `Task`, `SyntheticFamily` (a new sampled task each
      episode), or a sequence of these (one drawn uniformly per episode).
    - ``config``: the episode's settings, an `EpisodeConfig`
      (`hpenv.episode_config`); or give its fields as keywords (below), not both.
      The same config given to `agents.metatrain.population_vec.PopulationVecEnv`
      gives the same episodes.
    - ``device``: ``"auto"``, ``"cpu"``, ``"cuda"``...; ``data_dir``: local data directory.
    - ``data_fn``: callable ``Task -> TaskData`` replacing data loading (tests).
    - ``render_mode``: ``"ansi"`` or ``"rgb_array"``.

    Episode settings (`EpisodeConfig`'s fields; the attributes ``config``,
    ``tuned``, ``action_mode`` and ``decisions`` read them back):

    - ``tuned``: hyperparameters the agent controls (default ``("lr",)``).
    - ``action_mode``: ``"continuous"`` or ``"discrete"``.
    - ``budget`` / ``budget_epochs``: episode budget in training samples or in
      passes over the (subset) training split; default: the task's budget.
    - ``decisions`` / ``interval``: number of decisions per episode (default 20;
      the budget is split into ``decisions + 1`` intervals), or the interval in
      samples (overrides ``decisions``).
    - ``reward``, ``divergence_penalty``: see Rewards.
    - ``initial``: hyperparameter -> fixed value, ``(low, high)`` range (drawn
      on the hyperparameter's scale), or `Around` (range relative to the
      task default). Default ``{"lr": Around(10, 10)}`` (`DEFAULT_INITIAL`).
    - ``optimizer``: override the task's optimizer (``sgd``, ``adam``, ``adamw``).
    - ``subset``: train on this fraction of the training split.
    - ``fidelity``: task name -> `Fidelity` (subset and budget for that task
      only), for multi-task episodes of different costs.
    - ``val_size``: validation samples scored per decision (default: the task's,
      at most the interval); a fixed subset.
    - ``lr_scale``: each episode's optimizer trains at a hidden multiple of the
      rate the agent sets and sees, drawn log-uniformly in [1 / ``lr_scale``,
      ``lr_scale``] (default 1: none), so that the absolute rate does not say
      where the task's best rate lies; ``reset``'s info gives it as ``lr_scale``.

    ``reset(options=...)`` accepts ``task`` (name or `Task`), ``model`` (model
    variant) and ``hparams`` (mapping of initial values) for one episode.

    ## Info

    Returned by ``step`` and ``reset`` (``reset``'s describe the warm-up interval,
    plus ``initial_val_loss`` and ``initial_val_accuracy`` of the untrained model):

    - ``task``: ``"<task>/<model>"``.
    - ``hparams``: current hyperparameters (dict of `HParams` fields).
    - ``samples``: training samples used so far; ``budget``: the episode's budget.
    - ``train_loss``, ``train_loss_std``, ``grad_norm``, ``update_ratio``: the
      interval's training statistics (see `hpenv.training.IntervalStats`).
    - ``val_loss``, ``val_accuracy``: validation metrics after the interval.
    - ``diverged``: whether the run diverged.
    - ``oom``: the interval ran out of device memory; the batch size was reverted
      to the last one that fitted (``hparams`` shows it) and the step's reward
      is lowered by `hpenv.rewards.OOM_PENALTY`.
    - ``wall_time``, ``train_time``, ``eval_time``: seconds spent in the whole
      episode, in training, in evaluation. Only in the info of the episode's
      last step, so that same-seed steps return identical info.

    ## Version History

    - v0: initial version (observation layout 1). Later fixes kept the id because
      they only replace crashes: a validation loss of exactly 0 gives a finite
      reward (losses floored at `hpenv.rewards.LOSS_FLOOR`), and an interval
      that runs out of device memory reverts the batch size with a penalty
      (``info["oom"]``) instead of raising.
    - v1: observation layout 2. A learning-rate probe (`hpenv.probe`) before the
      warm-up, its samples reserved at the start of the budget and its sweep
      rolled back; the rate action is residual over the base schedule read off
      the probe (`hpenv.base`: the neutral action follows it; the run's start
      no longer matters); the reward is ``paired_log_val_loss``, the margin over
      the base schedule's run on the same seed, initialisation and data order,
      which the environment trains beside the episode's (``info`` adds
      ``reference_val_loss``; ``reset``'s info ``base_lr`` and ``probe``).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}  # noqa: RUF012

    def __init__(
        self,
        task: TaskArg = "digits",
        *,
        config: EpisodeConfig | None = None,
        device: str = "auto",
        data_dir: str | None = None,
        data_fn: Callable[[Task], TaskData] | None = None,
        render_mode: str | None = None,
        **settings: Any,
    ) -> None:
        self.config = EpisodeConfig.resolve(config, settings, owner="HPTuneEnv")
        self._reward = self.config.make_reward()
        self.device = resolve_device(device)
        self.data_dir = data_dir
        self._data_fn = data_fn
        self._draw_task = _task_sampler(task)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}")
        self.render_mode = render_mode

        self.observation_space = observation_space(self.config.layout)
        self.action_space: spaces.Space[np.ndarray] = action_space(
            len(self.tuned), self.action_mode
        )

        self._data_cache: dict[str, TaskData] = {}
        self._features = FeatureTracker(self.config.layout)
        self._residual = self.config.residual()
        #: The base schedule's run beside the episode's, for a paired reward (else None).
        self.reference: TrainingRun | None = None
        self.run: TrainingRun | None = None
        self.episode: Episode | None = None

    # ---------------------------------------------------------------- episode

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"task", "model", "hparams"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; use task, model, hparams")
        rng = self.np_random
        task = _task_sampler(options["task"])(rng) if "task" in options else self._draw_task(rng)
        if "model" in options:
            task = task.with_model(options["model"])
        overrides = options.get("hparams", {})
        check_initial(overrides, "options['hparams']")
        hparams = self.config.initial_hparams(task, rng, overrides)
        lr_scale = self.config.draw_lr_scale(rng)
        data = self._data(task, self.config.task_fidelity(task.name).subset)
        plan = self.config.plan(task, data.train_x.shape[0], hparams.batch_size)
        budget, interval, val_size = plan.budget, plan.interval, plan.val_size
        self.run = run = TrainingRun(
            task,
            hparams=hparams,
            seed=int(rng.integers(2**31 - 1)),
            device=self.device,
            data=data,
            val_size=val_size,
            lr_scale=lr_scale,
        )
        self.plan = plan
        self.task, self.episode_budget, self.episode_interval = task, budget, interval
        initial = run.evaluate()
        probe, base = self._probe_and_base(run, plan, hparams)
        self._residual.reset(self.config.max_offset(base))
        self.episode = Episode(
            task,
            plan,
            self._features,
            self._reward,
            run.hparams,
            initial,
            probe,
            base,
            rise_guard=self.config.rise_guard,
            fall_hold=self.config.fall_hold,
        )
        # Warm-up: the first interval trains at the initial hyperparameters (with a
        # base: the base's), so the first decision sees how training goes.
        stats = run.train(self.episode.next_samples(run.samples_done))
        evaluation = None if stats.diverged else run.evaluate()
        self.reference = None
        if self.config.reward in PAIRED_REWARDS and not stats.diverged:
            self.reference = _twin(run, plan.val_size)  # the base's run from here: same state
        observation, info = self.episode.warmup(stats, evaluation, run.hparams)
        if run.lr_scale != 1.0:
            info["lr_scale"] = run.lr_scale
        return observation, info

    def _probe_and_base(
        self, run: TrainingRun, plan: EpisodePlan, hparams: HParams
    ) -> tuple[ProbeResult | None, BaseSchedule | None]:
        """The run's probe (if the plan reserves one) and base (layout 2); the rate after."""
        config = self.config
        return probe_and_base(run, plan, hparams, config.probe, config.base, config.probe_start)

    def step(
        self, action: np.ndarray
    ) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        if self.run is None or self.episode is None or self.episode.done:
            raise RuntimeError("the episode is over (or never started): call reset() first")
        run, episode = self.run, self.episode
        new_hparams = self._apply_action(action, run.hparams)
        if episode.warmup_diverged:  # nothing the agent did: end without a penalty
            return episode.end_without_training()
        samples = episode.next_samples(run.samples_done)
        base_lr = episode.base_lr(run.samples_done)
        run.apply_hparams(new_hparams)
        stats = run.train(samples)
        evaluation = None if stats.diverged else run.evaluate()
        reference = None
        if self.reference is not None:  # the neutral action's run, same interval
            if base_lr is not None:  # layout 2 follows the base; layout 1 keeps its start
                self.reference.set_hparams(lr=base_lr)
            ref_stats = self.reference.train(samples)
            reference = math.nan if ref_stats.diverged else self.reference.evaluate().loss
        result = episode.step(stats, evaluation, run.hparams, run.max_loss, reference)
        if reference is not None:
            result[4]["reference_val_loss"] = reference
        return result

    # --------------------------------------------------------------- rendering

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode= to make()")
            return None
        if self.episode is None:
            raise RuntimeError("call reset() before render()")
        if self.render_mode == "ansi":
            return self.episode.render_text(self.tuned)
        from hpenv.render import render_episode

        return render_episode(
            self.episode.history, self.tuned, title=f"{self.task.name}/{self.task.model}"
        )

    # ---------------------------------------------------------------- internals

    def _apply_action(self, action: np.ndarray, hparams: HParams) -> HParams:
        episode = self.episode
        if episode is not None:
            action = episode.guard_action(self.tuned, self.action_mode, action)
        if episode is None or episode.base is None or self.run is None:
            return apply_action(self.tuned, self.action_mode, action, hparams)
        base_lr = episode.base_lr(self.run.samples_done)
        assert base_lr is not None
        return apply_residual(
            self.tuned, self.action_mode, action, hparams, self._residual, base_lr
        )

    def _data(self, task: Task, subset: float | None) -> TaskData:
        if self._data_fn is not None:
            return self._data_fn(task).subset(subset).to(self.device)
        if task.generate is not None:  # generated tasks differ per spec: no cache
            return task.load_data(subset=subset).to(self.device)
        key = f"{task.name}:{subset}"
        if key not in self._data_cache:
            data = task.load_data(data_dir=self.data_dir, subset=subset)
            self._data_cache[key] = data.to(self.device)
        return self._data_cache[key]


def observation_space(layout: int = OBS_VERSION) -> spaces.Box:
    """The observation space of every task, of observation ``layout`` (1 or 2)."""
    low, high = layout_bounds(layout)
    return spaces.Box(low, high, dtype=np.float32)


def _twin(run: TrainingRun, val_size: int) -> TrainingRun:
    """A second run in ``run``'s exact state (weights, optimizer, data order, counters)."""
    twin = TrainingRun(
        run.task, hparams=run.hparams, seed=0, device=run.device, data=run.data,
        val_size=val_size, lr_scale=run.lr_scale,
    )  # fmt: skip
    twin.load_state_dict(run.state_dict())
    return twin


def _task_sampler(task: TaskArg) -> Callable[[np.random.Generator], Task]:
    """A function drawing one episode's task from ``np_random``."""
    if isinstance(task, str):
        resolved = get_task(task)
        return lambda rng: resolved
    if isinstance(task, Task):
        return lambda rng: task
    if isinstance(task, SyntheticFamily):
        return lambda rng: task.sample(rng).task()
    if isinstance(task, Sequence) and len(task) > 0:
        choices = [_task_sampler(item) for item in task]
        return lambda rng: choices[int(rng.integers(len(choices)))](rng)
    raise ValueError(
        "task must be a task name, a Task, a SyntheticFamily or a non-empty list of them; "
        f"got {task!r}"
    )


# Around, DEFAULT_INITIAL, InitialValue: see hpenv.episode; EpisodeConfig: hpenv.episode_config;
# Fidelity: hpenv.plan
__all__ = [
    "DEFAULT_INITIAL",
    "TUNABLES",
    "Around",
    "EpisodeConfig",
    "Fidelity",
    "HPTuneEnv",
    "InitialValue",
]
