"""`HPTuneEnv`: one training run of one task as a Gymnasium episode."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from hpenv.hyperparams import (
    ACTION_MODES,
    TUNABLES,
    ActionMode,
    HParams,
    OptimizerName,
    action_space,
    apply_action,
    tunable,
)
from hpenv.observation import OBS_HIGH, OBS_LOW, FeatureTracker, IntervalMetrics
from hpenv.plan import Fidelity, budget_samples, plan_episode, split_budget
from hpenv.rewards import OOM_PENALTY, RewardName, make_reward
from hpenv.tasks import SyntheticFamily, Task, TaskData, get_task
from hpenv.training import EvalStats, IntervalStats, TrainingRun, resolve_device

TaskArg = str | Task | SyntheticFamily | Sequence[str | Task | SyntheticFamily]


@dataclass(frozen=True)
class Around:
    """Initial range relative to the task's default: [default / below, default * above].

    Values are drawn uniformly on the hyperparameter's scale (log-uniform for lr).
    """

    below: float = 10.0
    above: float = 10.0

    def __post_init__(self) -> None:
        if self.below < 1 or self.above < 1:
            raise ValueError(f"Around factors must be >= 1, got {self}")


InitialValue = float | tuple[float, float] | Around
DEFAULT_INITIAL: Mapping[str, InitialValue] = {"lr": Around(10.0, 10.0)}


class HPTuneEnv(gym.Env[np.ndarray, np.ndarray]):
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
    count from the end of the warm-up.

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

    env = gym.make("HPTune-MNIST-v0", tuned=("lr", "batch_size"), budget=20_000,
                   decisions=10, subset=0.2, device="cpu")
    ```

    - ``task``: task name, `Task`, `SyntheticFamily` (a new sampled task each
      episode), or a sequence of these (one drawn uniformly per episode).
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
      task default). Default ``{"lr": Around(10, 10)}``.
    - ``optimizer``: override the task's optimizer (``sgd``, ``adam``, ``adamw``).
    - ``subset``: train on this fraction of the training split.
    - ``fidelity``: task name -> `Fidelity` (subset and budget for that task
      only), for multi-task episodes of different costs.
    - ``val_size``: validation samples scored per decision (default: the task's,
      at most the interval); a fixed subset.
    - ``device``: ``"auto"``, ``"cpu"``, ``"cuda"``...; ``data_dir``: local data directory.
    - ``data_fn``: callable ``Task -> TaskData`` replacing data loading (tests).
    - ``render_mode``: ``"ansi"`` or ``"rgb_array"``.

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
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}  # noqa: RUF012

    def __init__(
        self,
        task: TaskArg = "digits",
        *,
        tuned: Sequence[str] = ("lr",),
        action_mode: ActionMode = "continuous",
        budget: int | None = None,
        budget_epochs: float | None = None,
        decisions: int = 20,
        interval: int | None = None,
        reward: RewardName = "log_val_loss",
        divergence_penalty: float | None = None,
        initial: Mapping[str, InitialValue] | None = None,
        optimizer: OptimizerName | None = None,
        subset: float | None = None,
        fidelity: Mapping[str, Fidelity] | None = None,
        val_size: int | None = None,
        device: str = "auto",
        data_dir: str | None = None,
        data_fn: Callable[[Task], TaskData] | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.tuned = (tuned,) if isinstance(tuned, str) else tuple(tuned)
        if not self.tuned:
            raise ValueError("tuned must name at least one hyperparameter")
        if len(set(self.tuned)) != len(self.tuned):
            raise ValueError(f"tuned lists a hyperparameter twice: {self.tuned}")
        self._tunables = [tunable(name) for name in self.tuned]
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, not {action_mode!r}")
        self.action_mode = action_mode
        # Environment-wide run size; a task's entry in ``fidelity`` takes precedence.
        self._fidelity = Fidelity(
            subset=subset, budget=budget, budget_epochs=budget_epochs, val_size=val_size
        )
        if budget is not None:  # a fixed budget is checked now; others at reset
            split_budget(budget, decisions, interval)
        else:
            split_budget(max(decisions + 1, 2), decisions, interval)  # validates the numbers
        self.decisions, self.interval = decisions, interval
        self._reward = make_reward(reward, divergence_penalty)
        self.initial = dict(DEFAULT_INITIAL if initial is None else initial)
        _check_initial(self.initial)
        if optimizer is not None:
            HParams(optimizer=optimizer)  # validates the name
        self.optimizer = optimizer
        self.fidelity = {
            name: Fidelity.coerce(value, name) for name, value in (fidelity or {}).items()
        }
        self.device = resolve_device(device)
        self.data_dir = data_dir
        self._data_fn = data_fn
        self._draw_task = _task_sampler(task)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}")
        self.render_mode = render_mode

        self.observation_space = spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32)
        self.action_space: spaces.Space[np.ndarray] = action_space(len(self.tuned), action_mode)

        self._data_cache: dict[str, TaskData] = {}
        self._features = FeatureTracker()
        self.run: TrainingRun | None = None
        self._done = True

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
        _check_initial(overrides)
        hparams = self._initial_hparams(task, rng, overrides)
        fidelity = self.fidelity.get(task.name, Fidelity()).over(self._fidelity)
        data = self._data(task, fidelity.subset)
        plan = plan_episode(
            budget=budget_samples(fidelity, data.train_x.shape[0], task.budget_epochs),
            decisions=self.decisions,
            interval=self.interval,
            val_size=fidelity.val_size,
            task_val_size=task.val_size,
        )
        budget, interval, val_size = plan.budget, plan.interval, plan.val_size
        self.run = TrainingRun(
            task,
            hparams=hparams,
            seed=int(rng.integers(2**31 - 1)),
            device=self.device,
            data=data,
            val_size=val_size,
        )
        self.plan = plan
        self.task, self.episode_budget, self.episode_interval = task, budget, interval
        self._timer = {"start": time.perf_counter(), "train": 0.0, "eval": 0.0}
        initial = self._evaluate()
        self._features.reset(initial.loss, initial.accuracy, hparams)
        self._history: list[dict[str, Any]] = [
            {"progress": 0.0, "train_loss": math.nan, "val_loss": initial.loss,
             "val_accuracy": initial.accuracy, "hparams": hparams.to_dict()}
        ]  # fmt: skip
        # Warm-up: the first interval trains at the initial hyperparameters, so the
        # first decision sees how training goes instead of acting blind.
        stats, evaluation, info = self._train_interval()
        self._warmup_diverged = info["diverged"]
        if self._warmup_diverged:
            obs = self._features.mark_diverged()
            self._reward.reset(initial.loss, initial.accuracy)
        else:
            assert evaluation is not None
            obs = self._observe(stats, evaluation)
            self._reward.reset(evaluation.loss, evaluation.accuracy)
        info["initial_val_loss"], info["initial_val_accuracy"] = initial.loss, initial.accuracy
        self._last_reward = 0.0
        self._done = False
        return obs, info

    def step(
        self, action: np.ndarray
    ) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._done or self.run is None:
            raise RuntimeError("the episode is over (or never started): call reset() first")
        run = self.run
        new_hparams = self._apply_action(action, run.hparams)
        if self._warmup_diverged:  # nothing the agent did: end without a penalty
            self._done = True
            info = {**self._history_info(), "diverged": True, **self._timings()}
            return self._features.mark_diverged(), 0.0, True, False, info
        run.apply_hparams(new_hparams)
        stats, evaluation, info = self._train_interval()
        diverged = info["diverged"]
        truncated = not diverged and run.samples_done >= self.episode_budget
        if diverged:
            obs = self._features.mark_diverged()
            reward = self._reward.diverged(worst_loss=run.max_loss)
        else:
            assert evaluation is not None
            obs = self._observe(stats, evaluation)
            reward = self._reward.step(evaluation.loss, evaluation.accuracy, last=truncated)
        if stats.oom:  # the batch size the agent chose did not fit: reverted, and penalised
            reward -= OOM_PENALTY
        self._done = diverged or truncated
        if self._done:
            info.update(self._timings())
        self._last_reward = reward
        return obs, float(reward), diverged, truncated, info

    def _train_interval(self) -> tuple[IntervalStats, EvalStats | None, dict[str, Any]]:
        """Train one interval with the current hyperparameters, evaluate, record."""
        run = self.run
        assert run is not None
        samples = min(self.episode_interval, self.episode_budget - run.samples_done)
        stats = run.train(samples)
        self._timer["train"] += stats.wall_time
        evaluation = None if stats.diverged else self._evaluate()
        diverged = evaluation is None or not math.isfinite(evaluation.loss)
        self._history.append(
            {"progress": run.samples_done / self.episode_budget, "train_loss": stats.loss_mean,
             "val_loss": evaluation.loss if evaluation else math.nan,
             "val_accuracy": evaluation.accuracy if evaluation else math.nan,
             "hparams": run.hparams.to_dict()}
        )  # fmt: skip
        info = {
            **self._history_info(),
            "train_loss": stats.loss_mean,
            "train_loss_std": stats.loss_std,
            "grad_norm": stats.grad_norm,
            "update_ratio": stats.update_ratio,
            "diverged": diverged,
            "oom": stats.oom,
        }
        return stats, evaluation, info

    def _history_info(self) -> dict[str, Any]:
        assert self.run is not None
        last = self._history[-1]
        return {
            "task": f"{self.task.name}/{self.task.model}",
            "hparams": self.run.hparams.to_dict(),
            "samples": self.run.samples_done,
            "budget": self.episode_budget,
            "val_loss": last["val_loss"],
            "val_accuracy": last["val_accuracy"],
        }

    def _observe(self, stats: IntervalStats, evaluation: EvalStats) -> np.ndarray:
        assert self.run is not None
        progress = self.run.samples_done / self.episode_budget
        return self._features.update(
            IntervalMetrics.from_stats(progress, stats, evaluation, self.run.hparams)
        )

    def _timings(self) -> dict[str, float]:
        return {
            "wall_time": time.perf_counter() - self._timer["start"],
            "train_time": self._timer["train"],
            "eval_time": self._timer["eval"],
        }

    # --------------------------------------------------------------- rendering

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode= to make()")
            return None
        if not hasattr(self, "_history"):
            raise RuntimeError("call reset() before render()")
        if self.render_mode == "ansi":
            return self._render_text()
        from hpenv.render import render_episode

        return render_episode(
            self._history, self.tuned, title=f"{self.task.name}/{self.task.model}"
        )

    def _render_text(self) -> str:
        last = self._history[-1]
        hp = last["hparams"]
        tuned = " ".join(f"{n}={hp[n]:.3g}" for n in self.tuned)
        return (
            f"{self.task.name}/{self.task.model} {100 * last['progress']:5.1f}% {tuned} "
            f"train={last['train_loss']:.4f} val={last['val_loss']:.4f} "
            f"acc={last['val_accuracy']:.4f} reward={self._last_reward:+.4f}"
        )

    # ---------------------------------------------------------------- internals

    def _apply_action(self, action: np.ndarray, hparams: HParams) -> HParams:
        return apply_action(self.tuned, self.action_mode, action, hparams)

    def _initial_hparams(
        self, task: Task, rng: np.random.Generator, overrides: Mapping[str, InitialValue]
    ) -> HParams:
        hparams = task.defaults
        if self.optimizer is not None:
            hparams = hparams.replace(optimizer=self.optimizer)
        values: dict[str, Any] = {}
        for name, spec in {**self.initial, **overrides}.items():
            t = tunable(name)
            if isinstance(spec, Around):
                default = getattr(hparams, name)
                values[name] = t.sample(rng, default / spec.below, default * spec.above)
            elif isinstance(spec, tuple):
                values[name] = t.sample(rng, *spec)
            else:
                values[name] = t.cast(spec)
        for t in self._tunables:  # tuned values start inside their range
            values[t.name] = t.cast(t.clip(values.get(t.name, getattr(hparams, t.name))))
        return hparams.replace(**values)

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

    def _evaluate(self) -> EvalStats:
        assert self.run is not None
        evaluation = self.run.evaluate()
        self._timer["eval"] += evaluation.wall_time
        return evaluation


def _check_initial(initial: Mapping[str, InitialValue]) -> None:
    """Known names; fixed values and ranges inside the hyperparameter's range (no silent clip)."""
    for name, spec in initial.items():
        t = tunable(name)
        if isinstance(spec, Around):
            continue  # relative to the task default: the drawn value is clipped to the range
        values = spec if isinstance(spec, tuple) else (spec,)
        for value in values:
            if not t.low <= float(value) <= t.high:
                raise ValueError(
                    f"initial {name}={value!r} is outside its range [{t.low:g}, {t.high:g}]; "
                    "give a value inside it"
                )


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


__all__ = ["TUNABLES", "Around", "Fidelity", "HPTuneEnv"]  # Fidelity: see hpenv.plan
