"""One episode of an `HPTuneEnv` driven by a policy, as the harness's result record.

Meta-training scores its held-out tasks with it. The outcome is a
`agents.evaluation.methods.core.MethodResult` (the one result record of the
project), with the episode's return in ``extra["episode_return"]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from agents.evaluation.methods.core import MethodResult
from hpenv.env import HPTuneEnv

Act = Callable[[np.ndarray], np.ndarray]


def _point(info: dict[str, Any]) -> dict[str, float]:
    """A trajectory entry (the fields of `agents.evaluation.methods.core.trajectory_point`)."""
    hp = info["hparams"]
    return {
        "progress": info["samples"] / info["budget"],
        "samples": info["samples"],
        "lr": hp["lr"],
        "momentum": hp["momentum"],
        "weight_decay": hp["weight_decay"],
        "batch_size": hp["batch_size"],
        "val_loss": info["val_loss"],
        "val_accuracy": info["val_accuracy"],
    }


def run_episode(
    env: HPTuneEnv,
    act: Act,
    seed: int,
    options: dict[str, Any] | None = None,
    test: bool = True,
    on_reset: Callable[[], None] | None = None,
    method: str = "policy",
) -> MethodResult:
    """Play one episode; ``act`` maps an observation to an action.

    Args:
        env: The environment (unwrapped).
        act: Observation -> action.
        seed: Reset seed.
        options: Reset options (task, model, hparams).
        test: Score the test split at the end when the task has one.
        on_reset: Called after reset, before the first action (to reset
            controller state such as an LSTM's).
        method: Name for the record.

    Returns:
        The record; its trajectory starts at the untrained model (progress 0)
        and has one entry per interval; ``extra["episode_return"]`` is the sum
        of rewards.
    """
    obs, info = env.reset(seed=seed, options=options)
    if on_reset is not None:
        on_reset()
    first = {**info, "samples": 0, "val_loss": info["initial_val_loss"]}
    first["val_accuracy"] = info["initial_val_accuracy"]
    trajectory = [_point(first), _point(info)]
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(act(obs))
        total += float(reward)
        done = terminated or truncated
        trajectory.append(_point(info))
    run = env.run
    assert run is not None
    test_accuracy = math.nan
    if test and run.data.test_x is not None and not info["diverged"]:
        test_accuracy = run.evaluate("test").accuracy
    finite = [p["val_accuracy"] for p in trajectory if math.isfinite(p["val_accuracy"])]
    default_lr = env.task.defaults.lr
    return MethodResult(
        method=method,
        task=info["task"],
        seed=seed,
        start_lr_factor=trajectory[0]["lr"] / default_lr if default_lr > 0 else math.nan,
        val_loss=info["val_loss"],
        val_accuracy=info["val_accuracy"],
        test_accuracy=test_accuracy,
        best_val_accuracy=max(finite) if finite else math.nan,
        samples=int(info["samples"]),
        compute_samples=int(info["samples"]),
        wall_time=float(info["wall_time"]),
        diverged=bool(info["diverged"]),
        trajectory=trajectory,
        extra={"episode_return": total},
    )
