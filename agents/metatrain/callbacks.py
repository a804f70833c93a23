"""SB3 callbacks of meta-training: per-task metrics, held-out evaluation, checkpoints, progress.

Project metrics are logged under ``hpenv/`` (SB3's own stay under ``train/``,
``rollout/``, ``time/``; held-out evaluation under ``eval/``):

| key | meaning |
|---|---|
| ``hpenv/<task>/final_val_accuracy`` | mean final validation accuracy (0 if diverged) |
| ``hpenv/<task>/final_val_loss`` | mean final validation loss (diverged episodes excluded) |
| ``hpenv/<task>/return`` | mean episode return |
| ``hpenv/<task>/divergence_rate`` | fraction of episodes that diverged |
| ``hpenv/<task>/episode_wall_time`` | mean seconds per episode |
| ``hpenv/episodes`` | episodes finished so far |
| ``hpenv/ray_actor_restarts`` | episodes cut short by a lost Ray actor (``--vec-env ray``) |
| ``hpenv/lr_trajectories`` | figure: learning rate over progress, recent episodes per task |
| ``hpenv/config`` | text: the run's configuration |

The x-axis is the agent step (``num_timesteps``).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, EveryNTimesteps
from stable_baselines3.common.logger import Figure, TensorBoardOutputFormat
from tqdm import tqdm

from agents.metatrain.checkpoints import global_rng_preserved
from agents.stopping import GracefulStop
from agents.warn import warn

#: ``infos[i]`` key of a step at which a Ray actor was replaced (set by
#: `agents.metatrain.ray_vec.RayVecEnv`, which imports Ray; defined here so this module does not).
ACTOR_RESTARTED = "ray_actor_restarted"


def task_family(task: str) -> str:
    """``"synthetic/mlp"`` -> ``"synthetic"``, ``"mnist/cnn"`` -> ``"mnist"``."""
    return task.split("/")[0]


class TaskMetricsCallback(BaseCallback):
    """Per-task episode metrics and learning-rate trajectories to TensorBoard.

    Args:
        figure_every: Draw the trajectory figure every this many finished episodes.
        keep: Trajectories kept per task for the figure.
        config_text: Markdown of the run's configuration, written once.
        episodes: Episodes finished before this run (when resuming).
        restarts: Episodes cut short by lost Ray actors before this run.

    A step whose info has `agents.metatrain.ray_vec.ACTOR_RESTARTED` ends an
    episode that did not finish (its actor was lost): it is counted in
    ``hpenv/ray_actor_restarts`` and left out of every episode metric.
    """

    def __init__(
        self,
        figure_every: int = 50,
        keep: int = 4,
        config_text: str = "",
        episodes: int = 0,
        restarts: int = 0,
    ) -> None:
        super().__init__()
        self.figure_every = figure_every
        self.config_text = config_text
        self.episodes = episodes
        self.restarts = restarts
        self._returns: np.ndarray | None = None
        self._lrs: list[list[tuple[float, float]]] = []
        self._recent: dict[str, deque[list[tuple[float, float]]]] = defaultdict(
            lambda: deque(maxlen=keep)
        )

    def state_dict(self) -> dict[str, Any]:
        """The recent trajectories per task (plain lists), so the figure survives a resume."""
        return {task: [list(map(list, run)) for run in runs] for task, runs in self._recent.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for task, runs in state.items():
            for run in runs:
                self._recent[task].append([(float(p), float(lr)) for p, lr in run])

    def _on_training_start(self) -> None:
        n = self.training_env.num_envs
        self._returns = np.zeros(n)
        self._lrs = [[] for _ in range(n)]
        if self.config_text:
            for fmt in self.logger.output_formats:
                if isinstance(fmt, TensorBoardOutputFormat):
                    fmt.writer.add_text("hpenv/config", self.config_text, self.num_timesteps)
                    fmt.writer.flush()

    def _on_step(self) -> bool:
        assert self._returns is not None
        infos: list[dict[str, Any]] = self.locals["infos"]
        self._returns += np.asarray(self.locals["rewards"], dtype=np.float64)
        for i, (info, done) in enumerate(zip(infos, self.locals["dones"], strict=True)):
            if "hparams" in info:
                self._lrs[i].append((info["samples"] / info["budget"], info["hparams"]["lr"]))
            if not done:
                continue
            if info.get(ACTOR_RESTARTED):  # a half episode: count it, record nothing else
                self._lrs[i], self._returns[i] = [], 0.0
                self.restarts += 1
                self.logger.record("hpenv/ray_actor_restarts", self.restarts)
                continue
            task = task_family(info.get("task", "unknown"))
            prefix = f"hpenv/{task}"
            diverged = bool(info.get("diverged", False))
            self.logger.record_mean(f"{prefix}/return", float(self._returns[i]))
            self.logger.record_mean(f"{prefix}/divergence_rate", float(diverged))
            accuracy = info.get("val_accuracy", math.nan)
            self.logger.record_mean(f"{prefix}/final_val_accuracy", 0.0 if diverged else accuracy)
            if not diverged:
                self.logger.record_mean(f"{prefix}/final_val_loss", info["val_loss"])
            if "wall_time" in info:
                self.logger.record_mean(f"{prefix}/episode_wall_time", info["wall_time"])
            self._recent[task].append(self._lrs[i])
            self._lrs[i], self._returns[i] = [], 0.0
            self.episodes += 1
            self.logger.record("hpenv/episodes", self.episodes)
            if self.figure_every and self.episodes % self.figure_every == 0:
                self._record_figure()
        return True

    def _on_rollout_end(self) -> None:
        if self.restarts:  # from the first lost actor on, in every row
            self.logger.record("hpenv/ray_actor_restarts", self.restarts)

    def _record_figure(self) -> None:
        try:
            from matplotlib.figure import Figure as MplFigure
        except ImportError:  # the `render` extra is not installed: no figure, say so once
            if self.figure_every > 0:
                warn(
                    "matplotlib is not installed (pip install -e '.[render]'): "
                    "no hpenv/lr_trajectories figures",
                )
                self.figure_every = 0
            return

        figure = MplFigure(figsize=(6, 3.5))
        axes = figure.subplots()
        for color, (task, runs) in enumerate(sorted(self._recent.items())):
            for j, run in enumerate(runs):
                if run:
                    x, y = zip(*run, strict=True)
                    label = task if j == 0 else None
                    axes.plot(x, y, color=f"C{color}", alpha=0.7, label=label)
        axes.set_yscale("log")
        axes.set_xlabel("progress")
        axes.set_ylabel("learning rate")
        axes.legend(fontsize="small")
        self.logger.record(
            "hpenv/lr_trajectories",
            Figure(figure, close=True),
            exclude=("stdout", "log", "json", "csv"),
        )


class HeldOutEvaluation(BaseCallback):
    """Score the current policy on held-out tasks when triggered; keep the best.

    Triggered by SB3's ``EveryNTimesteps`` (see `held_out_every`), and once more
    at the end of training (`run_now`). Each evaluation runs on a copy of the global
    random streams (`global_rng_preserved`), so it does not change what the run trains.

    Args:
        evaluate: Returns ``{"mean_return": ..., ...}`` (logged under ``eval/``).
        on_best: Called with the new best ``mean_return`` (saves the best policy).
        best: Best score so far (when resuming).
    """

    def __init__(self, evaluate: Any, on_best: Any, best: float = -math.inf) -> None:
        super().__init__()
        self.evaluate = evaluate
        self.on_best = on_best
        self.best = best

    def _on_step(self) -> bool:
        self.run_now()
        return True

    def run_now(self) -> None:
        # Episodes, and freezing the policy (building a network initialises weights), draw
        # from the global streams: on a copy, the training run's own draws stay its own.
        with global_rng_preserved():
            scores = self.evaluate()
            for key, value in scores.items():
                self.logger.record(f"eval/{key}", value)
            if scores["mean_return"] > self.best:
                self.best = scores["mean_return"]
                self.on_best(self.best)
        self.logger.record("eval/best_mean_return", self.best)


def held_out_every(every: int, evaluation: HeldOutEvaluation, start: int) -> EveryNTimesteps:
    """Run ``evaluation`` every ``every`` agent steps counted from step ``start``."""
    trigger = EveryNTimesteps(n_steps=every, callback=evaluation)
    trigger.last_time_trigger = start  # a resumed run waits a full period too
    return trigger


class RolloutCheckpointCallback(BaseCallback):
    """Checkpoint at rollout boundaries, at least ``every`` agent steps apart (atomic).

    A checkpoint is only ever taken at the start of a rollout (after the
    previous PPO update), so a resumed run collects whole rollouts again and
    ends at the same agent step as an uninterrupted one. The latest boundary's
    state is also kept in memory, for the checkpoint written when a stop is
    requested mid-rollout.
    """

    def __init__(self, every: int, snapshot: Any, save: Any, stop: GracefulStop) -> None:
        super().__init__()
        self.every = every
        self.snapshot = snapshot
        self.save = save
        self.stop = stop
        self.latest: dict[str, Any] | None = None
        self._last = 0

    def _on_training_start(self) -> None:
        self._last = self.num_timesteps

    def _on_rollout_start(self) -> None:
        self.latest = self.snapshot()
        if self.num_timesteps - self._last >= self.every:
            self.save(self.latest)
            self._last = self.num_timesteps

    def _on_step(self) -> bool:
        return not self.stop.requested


class MetaTrainProgressBar(BaseCallback):
    """tqdm bar over agent steps, with episodes and elapsed time."""

    def __init__(self, total: int, metrics: TaskMetricsCallback | None = None) -> None:
        super().__init__()
        self.total = total
        self.metrics = metrics
        self._bar: tqdm[Any] | None = None
        self._start = 0.0

    def _on_training_start(self) -> None:
        self._start = time.perf_counter()
        self._bar = tqdm(
            total=self.total, initial=self.num_timesteps, unit="step", desc="meta-train"
        )

    def _on_step(self) -> bool:
        assert self._bar is not None
        self._bar.update(self.training_env.num_envs)
        if self.metrics is not None and self.n_calls % 10 == 0:
            self._bar.set_postfix(episodes=self.metrics.episodes)
        return True

    def _on_training_end(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _innermost(venv: Any) -> Any:
    """The vectorised env under SB3's wrappers (``VecNormalize`` keeps no reset infos)."""
    while hasattr(venv, "venv"):
        venv = venv.venv
    return venv


class EpisodeLedger(BaseCallback):
    """Counts what training cost and earned: episodes, training samples, episode returns.

    ``samples`` is exact: every training sample any environment trained, the
    warm-up intervals of episodes still running at the end included (read from
    the environments' ``info["samples"]``, cumulative within an episode, and
    from the reset infos of the episodes that begin).
    """

    def __init__(self) -> None:
        super().__init__()
        self.episodes = 0
        self.returns: list[float] = []
        self._finished_samples = 0
        self._current: list[int] = []
        self._running: np.ndarray | None = None

    @property
    def samples(self) -> int:
        """Training samples of all episodes so far, finished or not."""
        return self._finished_samples + sum(self._current)

    def _on_training_start(self) -> None:
        resets = getattr(_innermost(self.training_env), "reset_infos", None) or []
        n = self.training_env.num_envs
        self._current = [
            int((resets[i] if i < len(resets) else {}).get("samples", 0)) for i in range(n)
        ]
        self._running = np.zeros(n)

    def _on_step(self) -> bool:
        assert self._running is not None
        infos: list[dict[str, Any]] = self.locals["infos"]
        self._running += np.asarray(self.locals["rewards"], dtype=np.float64)
        resets = getattr(_innermost(self.training_env), "reset_infos", None) or []
        for i, (info, done) in enumerate(zip(infos, self.locals["dones"], strict=True)):
            if not done:
                self._current[i] = int(info.get("samples", self._current[i]))
                continue
            self._finished_samples += int(info.get("samples", self._current[i]))
            self._current[i] = int((resets[i] if i < len(resets) else {}).get("samples", 0))
            self.returns.append(float(self._running[i]))
            self._running[i] = 0.0
            self.episodes += 1
        return True


class StopWhenRequested(BaseCallback):
    """Ends ``learn`` at the next agent step once a `GracefulStop` has caught a signal."""

    def __init__(self, stop: GracefulStop) -> None:
        super().__init__()
        self.stop = stop

    def _on_step(self) -> bool:
        return not self.stop.requested
