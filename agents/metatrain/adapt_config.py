"""`AdaptConfig`: the options of a few-shot adaptation run, and the settings derived from them.

`adaptation_task` is the task its episodes train (the task with a validation
split held back from its training split, so that they never see the task's own
validation and test splits); `adaptation_fidelity` sizes one episode (the
task's CPU fidelity on a fraction of its data); `session_config` is the
`MetaTrainConfig` that rebuilds the parent policy's model and environments for
`agents.metatrain.adapt`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agents.cli import check_threads, option, threads_option
from agents.metatrain.config import MetaTrainConfig
from agents.policy.artifact import PolicyMetadata, probe_start_text
from agents.policy.hub import DEFAULT_POLICY_NAME
from hpenv.base import BaseConfig, ProbeStart
from hpenv.errors import InputError
from hpenv.plan import Fidelity, fidelity_for
from hpenv.probe import ProbeConfig
from hpenv.tasks import SyntheticFamily, Task, TaskData, get_task, list_tasks

#: How the observation normalisation is treated while adapting.
Normalisation = Literal["frozen", "update"]
#: Seed of the rows held back from the training split as the episodes' validation split.
HOLDOUT_SEED = 27_182


@dataclass(frozen=True)
class AdaptConfig:
    """One adaptation run (every field is a CLI flag of ``scripts/adapt_policy.py``)."""

    task: str = option("task to adapt to", choices=list_tasks())
    episodes: int = option("adaptation episodes (rounded up to whole PPO rollouts)", default=30)
    policy: str = option(
        "policy to adapt: an artifact file, a hub-layout folder, a shipped name or a Hub repo id",
        default=DEFAULT_POLICY_NAME,
    )
    out_dir: str | None = option(
        "run directory (default logs/adapt-<task>-k<episodes>-s<seed>-<time>)", default=None
    )
    normalisation: Normalisation = option(
        "observation normalisation: 'frozen' (the parent's statistics, never updated) or "
        "'update' (the parent's statistics updated slowly, see --norm-prior-count)",
        default="frozen",
    )
    norm_prior_count: float = option(
        "with --normalisation update: the parent's statistics count as this many observations",
        default=10_000.0,
    )
    subset_factor: float = option(
        "episodes train on this fraction of the task's CPU-fidelity subset (hpenv/plan.py)",
        default=0.5,
    )
    holdout: float = option(
        "fraction of the task's training split held back as the episodes' validation split "
        "(their reward); the task's own validation and test splits are never used",
        default=0.2,
    )
    snapshots: tuple[int, ...] = option(
        "also save the policy once this many episodes have trained (increasing, each below "
        "--episodes), in <out-dir>/k<K>/policy.pt: one run of 100 episodes gives 10 and 30 too",
        default=(),
    )
    epochs: float | None = option(
        "episode budget in passes over that subset (default: the fidelity's)", default=None
    )
    n_envs: int = option("parallel environments", default=2)
    vec_env: Literal["subprocess", "dummy"] = option(
        "'subprocess' (one process per env) or 'dummy' (in-process)", default="subprocess"
    )
    n_steps: int | None = option(
        "PPO rollout length per env (default: the policy's decisions, one episode)", default=None
    )
    batch_size: int = option("PPO minibatch size", default=20)
    n_epochs: int = option("PPO epochs per update", default=5)
    learning_rate: float = option(
        "PPO learning rate (fine-tuning: below meta-training's)", default=1e-4
    )
    clip_range: float = option("PPO clip range (small steps away from the parent)", default=0.1)
    ent_coef: float = option("entropy bonus", default=0.0)
    device: str = option("device of the agent's networks", default="cpu")
    env_device: str = option("device the environments train on", default="cpu")
    threads: int = threads_option()
    data_dir: str | None = option("local data directory (default HPENV_DATA_DIR)", default=None)
    seed: int = option("seed of the agent and the environments", default=0)

    def __post_init__(self) -> None:
        check_threads(self.threads)
        if not self.task:
            raise ValueError("--task is required")
        get_task(self.task)  # an unknown name lists the known ones
        for name in ("episodes", "n_envs", "batch_size", "n_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_steps is not None and self.n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {self.n_steps}")
        if not 0 < self.subset_factor <= 1:
            raise ValueError(f"subset_factor must be in (0, 1], got {self.subset_factor}")
        if not 0 < self.holdout <= 0.5:
            raise ValueError(f"holdout must be in (0, 0.5], got {self.holdout}")
        counts = list(self.snapshots)
        if counts != sorted(set(counts)) or any(not 1 <= k < self.episodes for k in counts):
            raise ValueError(
                f"snapshots must be increasing episode counts in [1, episodes={self.episodes}), "
                f"got {counts}"
            )
        if self.epochs is not None and not (math.isfinite(self.epochs) and self.epochs > 0):
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if not self.norm_prior_count > 0:
            raise ValueError(f"norm_prior_count must be > 0, got {self.norm_prior_count}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")

    def resolved_out_dir(self) -> Path:
        if self.out_dir is not None:
            return Path(self.out_dir)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return Path("logs") / f"adapt-{self.task}-k{self.episodes}-s{self.seed}-{stamp}"


def adaptation_task(config: AdaptConfig) -> Task:
    """``config.task`` whose validation split is held back from its training split.

    Episodes are rewarded on ``config.holdout`` of the training rows
    (`hpenv.tasks.TaskData.hold_out`, after the task's own transform) and train
    on the rest, so an adapted policy never saw the validation and test splits
    the harness scores it on. (A noisy-label task's held-back labels are noisy.)
    """
    task = get_task(config.task)
    holding_out = functools.partial(_held_out, task.transform, config.holdout)
    return dataclasses.replace(task, transform=holding_out)


def _held_out(
    transform: Callable[[TaskData], TaskData] | None, fraction: float, data: TaskData
) -> TaskData:
    return (data if transform is None else transform(data)).hold_out(fraction, HOLDOUT_SEED)


def adaptation_fidelity(config: AdaptConfig) -> Fidelity:
    """One adaptation episode's size: the task's CPU fidelity on ``subset_factor`` of its data
    (of the training rows `adaptation_task` leaves after the hold-out)."""
    base = fidelity_for(config.task)
    subset = (base.subset if base.subset is not None else 1.0) * config.subset_factor
    if config.epochs is not None:
        return Fidelity(subset=subset, budget_epochs=config.epochs, val_size=base.val_size)
    if base.budget is not None:  # a budget in samples shrinks with the data
        budget = max(2, round(base.budget * config.subset_factor))
        return Fidelity(subset=subset, budget=budget, val_size=base.val_size)
    epochs = (
        base.budget_epochs
        if base.budget_epochs is not None
        else get_task(config.task).budget_epochs
    )
    return Fidelity(subset=subset, budget_epochs=epochs, val_size=base.val_size)


def session_config(config: AdaptConfig, meta: PolicyMetadata, clip_obs: float) -> MetaTrainConfig:
    """The meta-training configuration that rebuilds the parent's model and environments.

    Raises:
        InputError: The parent's network cannot be rebuilt by `make_model`.
    """
    kwargs = meta.policy_kwargs
    arch = kwargs.get("net_arch", [64, 64])
    if not (isinstance(arch, list | tuple) and all(isinstance(n, int) for n in arch)):
        raise InputError(f"cannot adapt a policy with net_arch {arch!r} (a list of layer sizes)")
    if kwargs.get("activation_fn", "Tanh") != "Tanh":
        raise InputError(
            f"cannot adapt a policy with activation {kwargs['activation_fn']}: "
            "meta-training's model (agents.metatrain.model) uses Tanh"
        )
    env = meta.env_config
    steps_per_rollout = config.n_envs * (config.n_steps or meta.decisions)
    rollouts = -(-config.episodes * meta.decisions // steps_per_rollout)
    return MetaTrainConfig(
        train_tasks=(config.task,),
        eval_tasks=(),
        total_steps=rollouts * steps_per_rollout,
        n_envs=config.n_envs,
        vec_env=config.vec_env,
        tuned=meta.tuned,
        action_mode=meta.action_mode,
        decisions=meta.decisions,
        reward=env.get("reward", "log_val_loss"),
        # the parent's return (a policy written before they were recorded had the defaults)
        gamma=float(env.get("gamma", MetaTrainConfig.gamma)),
        budget_end=env.get("budget_end", MetaTrainConfig.budget_end),
        synthetic_optimizers=tuple(env.get("synthetic_optimizers", ("adam",))),
        synthetic_conv=float(env.get("synthetic_conv", 0.0)),
        synthetic_text=float(env.get("synthetic_text", 0.0)),
        synthetic_steps=tuple(int(s) for s in env.get("synthetic_steps", SyntheticFamily.steps)),
        lr_below=float(env.get("lr_below", 100.0)),
        lr_above=float(env.get("lr_above", 30.0)),
        layout=int(env.get("layout", 1)),  # a layout-2 policy adapts on layout-2 episodes
        probe_min_steps=int(env.get("probe", {}).get("min_steps", ProbeConfig.min_steps)),
        base_short_rule=env.get("base", {}).get("short_rule"),
        base_short_steps=int(env.get("base", {}).get("short_steps", BaseConfig.short_steps)),
        steer_range=float(env.get("base", {}).get("steer_range", BaseConfig.steer_range)),
        unprobed_steer_range=env.get("base", {}).get("unprobed_steer_range"),
        steer_mode=env.get("base", {}).get("steer_mode", BaseConfig.steer_mode),
        optimizers=tuple(env.get("optimizers", ())),
        rise_guard=bool(env.get("rise_guard", False)),
        fall_hold=env.get("fall_hold") is not None,
        # lr_scale is not carried: adaptation trains on the user's task at its own scale
        probe_start=probe_start_text(
            None if "probe_start" not in env else ProbeStart.from_dict(env["probe_start"])
        ),
        algorithm=meta.algorithm,
        frame_stack=meta.frame_stack,
        n_steps=config.n_steps or meta.decisions,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        learning_rate=config.learning_rate,
        clip_range=config.clip_range,
        ent_coef=config.ent_coef,
        net_arch=tuple(arch),
        log_std_init=float(kwargs.get("log_std_init", -0.5)),
        clip_obs=clip_obs,
        eval_every=0,
        device=config.device,
        env_device=config.env_device,
        data_dir=config.data_dir,
        seed=config.seed,
    )
