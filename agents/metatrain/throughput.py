"""Meta-training throughput: agent steps per second of a configuration, as `meta_train` runs it.

`agent_rate` builds the training environments exactly as `agents.metatrain.loop.meta_train`
does (`build_vec_env`, `VecNormalize`, `make_model` from a `MetaTrainConfig`) and
times PPO's ``learn``: rollouts and updates together, the quantity a user waits
for. Start-up (worker processes, the first population, Ray actors) is left out:
the rate counts the agent steps between the end of the first rollout and the
end of the last one, over the time between them.

Used by ``scripts/benchmark_metatrain.py`` (the options on the default suite)
and ``scripts/gpu_check.py``. `member_step_rates` times the population engine
against the same runs trained one after another (``scripts/benchmark_population.py``,
``scripts/gpu_check.py``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback

from agents.metatrain.config import MetaTrainConfig
from agents.metatrain.loop import training_env, training_tasks
from agents.metatrain.model import make_model
from agents.metatrain.vec_env import vec_env_runtime
from hpenv.population import Population
from hpenv.training import TrainingRun


@dataclass(frozen=True)
class Rate:
    """A measured throughput.

    Attributes:
        steps: Agent steps timed (after the first rollout).
        seconds: Wall time of those steps (rollouts and PPO updates).
        rollout: Agent steps per rollout (``n_envs * n_steps``).
    """

    steps: int
    seconds: float
    rollout: int

    @property
    def per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else float("nan")


class _RolloutClock(BaseCallback):
    """Records (agent steps, time) at the end of every rollout; stops learning once
    ``seconds`` have passed since the first mark (None: never)."""

    def __init__(self, seconds: float | None) -> None:
        super().__init__()
        self.seconds = seconds
        self.marks: list[tuple[int, float]] = []

    def _on_step(self) -> bool:
        if self.seconds is None or len(self.marks) < 2:
            return True
        return self.marks[-1][1] - self.marks[0][1] < self.seconds

    def _on_rollout_end(self) -> None:
        self.marks.append((self.num_timesteps, time.perf_counter()))


def agent_rate(config: MetaTrainConfig, rollouts: int = 4, seconds: float | None = None) -> Rate:
    """Agent steps/s of ``config``'s meta-training over ``rollouts`` timed rollouts.

    Trains ``rollouts + 1`` rollouts (the first one untimed) of ``config``'s suite
    (tasks without data, and for a population the models it cannot batch, are
    left out as `meta_train` leaves them out), or fewer when ``seconds`` have
    passed since the first rollout (at least one is timed). Nothing is written.

    Raises:
        ValueError: ``rollouts`` < 1, or no training task has data.
    """
    if rollouts < 1:
        raise ValueError(f"rollouts must be >= 1, got {rollouts}")
    tasks, _ = training_tasks(config)
    rollout = config.n_envs * config.n_steps
    config = dataclasses.replace(config, total_steps=rollout * (rollouts + 1))
    with vec_env_runtime(config):
        venv = training_env(config, tasks)
        try:
            model: Any = make_model(config, venv)
            clock = _RolloutClock(seconds)
            model.learn(config.total_steps, callback=clock)
        finally:
            venv.close()
    (first_steps, first_time), (last_steps, last_time) = clock.marks[0], clock.marks[-1]
    return Rate(last_steps - first_steps, last_time - first_time, rollout)


def member_step_rates(
    population: Population, runs: list[TrainingRun], batch: int, steps: int
) -> tuple[float, float]:
    """Member-steps/s of ``population`` (one batched step for all members) and of ``runs``
    (the same members as `TrainingRun`s, one after another): ``steps`` optimizer steps of
    ``batch`` samples each, after two warm-up steps (kernels, allocator); on CUDA the clock
    waits for the device."""
    device = population.device
    population.train(batch * 2)
    _sync(device)
    start = time.perf_counter()
    population.train(batch * steps)
    _sync(device)
    batched = len(runs) * steps / (time.perf_counter() - start)
    for run in runs:
        run.train(batch * 2)
    _sync(device)
    start = time.perf_counter()
    for run in runs:
        run.train(batch * steps)
    _sync(device)
    return batched, len(runs) * steps / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
