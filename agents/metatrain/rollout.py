"""Run one episode of an `HPTuneEnv` with any controller and summarise it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpenv.env import HPTuneEnv

Act = Callable[[np.ndarray], np.ndarray]


@dataclass
class EpisodeResult:
    """Outcome of one episode.

    Attributes:
        task: ``"<task>/<model>"``.
        seed: The reset seed.
        episode_return: Sum of rewards.
        val_loss / val_accuracy: Final validation metrics (NaN if diverged).
        best_val_accuracy: Best validation accuracy seen at any decision.
        test_accuracy: Final test accuracy where the task has a test split.
        diverged: Whether the run diverged.
        samples: Training samples used.
        wall_time: Seconds in training and evaluation plus environment overhead.
        lr: Learning rate at each decision (the trajectory), from the initial one.
        progress: Progress at each entry of ``lr``.
    """

    task: str
    seed: int
    episode_return: float
    val_loss: float
    val_accuracy: float
    best_val_accuracy: float
    test_accuracy: float
    diverged: bool
    samples: int
    wall_time: float
    lr: list[float] = field(default_factory=list)
    progress: list[float] = field(default_factory=list)
    accuracy_curve: list[float] = field(default_factory=list)

    def as_row(self) -> dict[str, Any]:
        row = {k: v for k, v in self.__dict__.items() if not isinstance(v, list)}
        row["mean_log10_lr"] = float(np.mean(np.log10(self.lr))) if self.lr else math.nan
        return row


def run_episode(
    env: HPTuneEnv,
    act: Act,
    seed: int,
    options: dict[str, Any] | None = None,
    test: bool = True,
    on_reset: Callable[[], None] | None = None,
) -> EpisodeResult:
    """Play one episode; ``act`` maps an observation to an action.

    Args:
        env: The environment (unwrapped).
        act: Observation -> action.
        seed: Reset seed.
        options: Reset options (task, model, hparams).
        test: Score the test split at the end when the task has one.
        on_reset: Called after reset, before the first action (to reset
            controller state such as an LSTM's).
    """
    obs, info = env.reset(seed=seed, options=options)
    if on_reset is not None:
        on_reset()
    lrs, progress, accuracy = [info["hparams"]["lr"]], [0.0], [info["val_accuracy"]]
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(act(obs))
        total += float(reward)
        done = terminated or truncated
        lrs.append(info["hparams"]["lr"])
        progress.append(info["samples"] / info["budget"])
        accuracy.append(info["val_accuracy"])
    run = env.run
    assert run is not None
    test_accuracy = math.nan
    if test and run.data.test_x is not None and not info["diverged"]:
        test_accuracy = run.evaluate("test").accuracy
    finite = [a for a in accuracy if math.isfinite(a)]
    return EpisodeResult(
        task=info["task"],
        seed=seed,
        episode_return=total,
        val_loss=info["val_loss"],
        val_accuracy=info["val_accuracy"],
        best_val_accuracy=max(finite) if finite else math.nan,
        test_accuracy=test_accuracy,
        diverged=bool(info["diverged"]),
        samples=int(info["samples"]),
        wall_time=float(info["wall_time"]),
        lr=lrs,
        progress=progress,
        accuracy_curve=accuracy,
    )


def keep_action(env: HPTuneEnv) -> Act:
    """The controller that never changes anything (static hyperparameters)."""
    keep = np.ones(len(env.tuned)) if env.action_mode == "discrete" else np.zeros(len(env.tuned))
    return lambda obs: keep.astype(env.action_space.dtype)
