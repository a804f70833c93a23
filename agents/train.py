"""Meta-train one PPO agent across many `HPTuneEnv` tasks, and freeze it.

`meta_train` is the library entry point; ``scripts/train_agent.py`` is its CLI.
A run directory holds:

- TensorBoard events (SB3's metrics, ``hpenv/`` per-task metrics, ``eval/``);
- ``checkpoints/latest.pt``: model (policy, optimizer, step count), observation
  normalisation, RNG states and counters, written atomically at a fixed
  interval, on Ctrl-C and at the end; ``--resume`` continues from it;
- ``best_policy.pt``: the frozen policy that scored best on the held-out
  evaluation tasks so far; ``policy.pt``: the final frozen policy;
- ``config.json``: the configuration.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecFrameStack,
    VecNormalize,
)

from agents.callbacks import ProgressBarCallback, TaskMetricsCallback
from agents.policy import FrozenPolicy, PolicyActor
from agents.rollout import run_episode
from agents.suite import (
    DEFAULT_EVAL_TASKS,
    DEFAULT_TRAIN_TASKS,
    available,
    make_env,
    resolve_tasks,
)
from hpenv.io import atomic_torch_save, atomic_write_json

CHECKPOINT_FORMAT = 1


def _help(text: str, **kwargs: Any) -> Any:
    return field(metadata={"help": text}, **kwargs)


@dataclass(frozen=True)
class MetaTrainConfig:
    """Configuration of one meta-training run (every field is a CLI flag)."""

    train_tasks: tuple[str, ...] = _help(
        "tasks to meta-train on ('synthetic' = a new generated task per episode); "
        "tasks whose data is missing are skipped with a message",
        default=DEFAULT_TRAIN_TASKS,
    )
    eval_tasks: tuple[str, ...] = _help(
        "held-out tasks for periodic evaluation and best-policy selection "
        "('synthetic-heldout' = fixed generated tasks training never sees)",
        default=DEFAULT_EVAL_TASKS,
    )
    total_steps: int = _help("agent steps (decisions) in total", default=8_000)
    n_envs: int = _help(
        "parallel environments (4 on 2 cores: stepping is lock-step, so extra workers "
        "fill the cores while one waits on a slow task)",
        default=4,
    )
    vec_env: Literal["subprocess", "dummy"] = _help(
        "'subprocess' (one process per env, 1 torch thread each) or 'dummy' (in-process)",
        default="subprocess",
    )
    tuned: tuple[str, ...] = _help("hyperparameters the agent controls", default=("lr",))
    action_mode: Literal["continuous", "discrete"] = _help("action space", default="continuous")
    decisions: int = _help("decisions per episode", default=20)
    budget: int | None = _help(
        "episode budget in samples for every task (default: per-task CPU fidelity)", default=None
    )
    reward: str = _help("reward name (see hpenv.rewards)", default="log_val_loss")
    lr_below: float = _help("initial lr drawn down to task default / this", default=100.0)
    lr_above: float = _help("initial lr drawn up to task default * this", default=30.0)
    algorithm: Literal["ppo", "recurrent_ppo"] = _help(
        "'ppo' (MLP policy) or 'recurrent_ppo' (LSTM policy, sb3-contrib, ~10x slower)",
        default="ppo",
    )
    frame_stack: int = _help("stack the last N observations (cheap memory)", default=1)
    n_steps: int = _help("PPO rollout length per env (a few episodes)", default=64)
    batch_size: int = _help("PPO minibatch size", default=64)
    n_epochs: int = _help("PPO epochs per update", default=10)
    learning_rate: float = _help("PPO learning rate", default=3e-4)
    gamma: float = _help("discount factor", default=0.99)
    gae_lambda: float = _help("GAE lambda", default=0.95)
    clip_range: float = _help("PPO clip range", default=0.2)
    ent_coef: float = _help("entropy bonus", default=0.0)
    net_arch: tuple[int, ...] = _help("hidden layers of policy and value nets", default=(64, 64))
    log_std_init: float = _help("initial log std of the Gaussian policy", default=-0.5)
    clip_obs: float = _help("VecNormalize observation clip", default=10.0)
    eval_every: int = _help("agent steps between held-out evaluations (0: never)", default=2_000)
    eval_seeds: tuple[int, ...] = _help("seeds of each held-out evaluation", default=(0, 1))
    checkpoint_every: int = _help("agent steps between checkpoints", default=1_000)
    device: str = _help("device of the agent's networks", default="cpu")
    env_device: str = _help(
        "device the environments train on ('auto' = CUDA if any)", default="cpu"
    )
    data_dir: str | None = _help("local data directory (default HPENV_DATA_DIR)", default=None)
    seed: int = _help("seed of the agent and the environments", default=0)
    out_dir: str | None = _help("run directory (default logs/meta-<time>)", default=None)
    resume: bool = _help("continue the run in out_dir from its latest checkpoint", default=False)

    def __post_init__(self) -> None:
        positive = ("total_steps", "n_envs", "decisions", "n_steps", "batch_size", "n_epochs")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {self.frame_stack}")
        if not self.train_tasks:
            raise ValueError("train_tasks is empty")
        overlap = set(self.train_tasks) & set(self.eval_tasks)
        if overlap:
            raise ValueError(f"eval_tasks must be held out from train_tasks; both list {overlap}")
        if "synthetic" in self.eval_tasks:
            raise ValueError(
                "eval_tasks needs fixed tasks: use 'synthetic-heldout', not 'synthetic'"
            )
        if self.resume and self.out_dir is None:
            raise ValueError("resume needs out_dir: the run directory to continue")
        if self.algorithm == "recurrent_ppo" and self.frame_stack > 1:
            raise ValueError("use frame_stack or recurrent_ppo, not both")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ------------------------------------------------------------------ environments


def _env_kwargs(config: MetaTrainConfig, tasks: list[str]) -> dict[str, Any]:
    return {
        "tasks": tasks,
        "tuned": config.tuned,
        "action_mode": config.action_mode,
        "decisions": config.decisions,
        "budget": config.budget,
        "reward": config.reward,
        "lr_below": config.lr_below,
        "lr_above": config.lr_above,
        "device": config.env_device,
        "data_dir": config.data_dir,
    }


def _worker_env(kwargs: dict[str, Any]) -> Monitor:
    """Runs in each environment process: one torch thread, so workers do not oversubscribe."""
    torch.set_num_threads(1)
    return Monitor(make_env(**kwargs))


def build_vec_env(config: MetaTrainConfig, tasks: list[str]) -> VecEnv:
    """The (unnormalised) vectorised training environments."""
    factory: Callable[[], gym.Env[Any, Any]] = functools.partial(
        _worker_env, _env_kwargs(config, tasks)
    )
    fns = [factory] * config.n_envs
    venv: VecEnv
    if config.vec_env == "subprocess" and config.n_envs > 1:
        venv = SubprocVecEnv(fns, start_method="forkserver")
    else:
        venv = DummyVecEnv(fns)
    if config.frame_stack > 1:
        venv = VecFrameStack(venv, config.frame_stack)
    return venv


# ------------------------------------------------------------------ checkpoints


def save_checkpoint(path: Path, model: Any, venv: VecNormalize, state: dict[str, Any]) -> None:
    """Model, normalisation statistics, RNG states and counters, in one atomic file."""
    rms: Any = venv.obs_rms
    buffer = io.BytesIO()
    model.save(buffer)
    atomic_torch_save(
        {
            "format": CHECKPOINT_FORMAT,
            "model_zip": buffer.getvalue(),
            "obs_rms": {"mean": rms.mean, "var": rms.var, "count": rms.count},
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(),  # noqa: NPY002 (SB3 samples from it)
                "python": random.getstate(),
            },
            "num_timesteps": int(model.num_timesteps),
            **state,
        },
        path,
    )


def load_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume at {path}")
    checkpoint: dict[str, Any] = torch.load(path, weights_only=False)
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: checkpoint format {checkpoint.get('format')} unsupported")
    return checkpoint


class CheckpointCallback(BaseCallback):
    """Checkpoint every ``every`` agent steps (atomic)."""

    def __init__(self, every: int, save: Any) -> None:
        super().__init__()
        self.every = every
        self.save = save
        self._last = 0

    def _on_training_start(self) -> None:
        self._last = self.num_timesteps

    def _on_step(self) -> bool:
        if self.num_timesteps - self._last >= self.every:
            self.save()
            self._last = self.num_timesteps
        return True


class HeldOutEvalCallback(BaseCallback):
    """Evaluate the current policy on held-out tasks; keep the best frozen policy."""

    def __init__(self, every: int, evaluate: Any, on_best: Any, best: float = -math.inf) -> None:
        super().__init__()
        self.every = every
        self.evaluate = evaluate
        self.on_best = on_best
        self.best = best
        self._last = 0

    def _on_training_start(self) -> None:
        self._last = self.num_timesteps

    def _on_step(self) -> bool:
        if self.every and self.num_timesteps - self._last >= self.every:
            self._last = self.num_timesteps
            self.run_now()
        return True

    def run_now(self) -> None:
        scores = self.evaluate()
        for key, value in scores.items():
            self.logger.record(f"eval/{key}", value)
        if scores["mean_return"] > self.best:
            self.best = scores["mean_return"]
            self.on_best()
        self.logger.record("eval/best_mean_return", self.best)


# ---------------------------------------------------------------------- training


def default_out_dir(config: MetaTrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("logs") / f"meta-{config.algorithm}-s{config.seed}-{stamp}"


def _config_markdown(config: MetaTrainConfig, tasks: list[str], skipped: dict[str, str]) -> str:
    lines = ["| option | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in config.to_dict().items()]
    lines.append(f"| tasks used | {', '.join(tasks)} |")
    lines += [f"| skipped {name} | {why} |" for name, why in skipped.items()]
    return "\n".join(lines)


def _make_model(config: MetaTrainConfig, venv: VecEnv) -> Any:
    common: dict[str, Any] = {
        "n_steps": config.n_steps,
        "batch_size": config.batch_size,
        "n_epochs": config.n_epochs,
        "learning_rate": config.learning_rate,
        "gamma": config.gamma,
        "gae_lambda": config.gae_lambda,
        "clip_range": config.clip_range,
        "ent_coef": config.ent_coef,
        "seed": config.seed,
        "device": config.device,
        "verbose": 0,
    }
    policy_kwargs: dict[str, Any] = {"net_arch": list(config.net_arch)}
    if config.action_mode == "continuous":
        policy_kwargs["log_std_init"] = config.log_std_init
    if config.algorithm == "recurrent_ppo":
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO("MlpLstmPolicy", venv, policy_kwargs=policy_kwargs, **common)
    from stable_baselines3 import PPO

    return PPO("MlpPolicy", venv, policy_kwargs=policy_kwargs, **common)


def _load_model(config: MetaTrainConfig, model_zip: bytes, venv: VecEnv) -> Any:
    algo: Any
    if config.algorithm == "recurrent_ppo":
        from sb3_contrib import RecurrentPPO as algo
    else:
        from stable_baselines3 import PPO as algo
    return algo.load(io.BytesIO(model_zip), env=venv, device=config.device)


def meta_train(config: MetaTrainConfig) -> Path:
    """Run (or resume) meta-training; returns the path of the final frozen policy.

    Raises:
        ValueError: No training task has data, or resuming with another config.
        FileNotFoundError: ``resume`` without a checkpoint in ``out_dir``.
    """
    out = Path(config.out_dir) if config.out_dir else default_out_dir(config)
    checkpoint_path = out / "checkpoints" / "latest.pt"
    checkpoint = load_checkpoint(checkpoint_path) if config.resume else None
    if checkpoint is not None:
        saved = json.loads((out / "config.json").read_text())
        changed = {
            k for k, v in config.to_dict().items() if k not in ("resume", "total_steps", "out_dir")
            and json.loads(json.dumps(v)) != saved.get(k)
        }  # fmt: skip
        if changed:
            raise ValueError(f"cannot resume with a changed configuration: {sorted(changed)}")
    elif checkpoint_path.exists():
        raise ValueError(f"{out} already holds a run; pass --resume or choose another --out-dir")
    tasks, skipped = available(config.train_tasks, config.data_dir)
    for name, why in skipped.items():
        print(f"skipping training task {name}: {why}")
    if not tasks:
        raise ValueError("none of the training tasks has data; see the messages above")
    eval_tasks, eval_skipped = available(config.eval_tasks, config.data_dir)
    for name, why in eval_skipped.items():
        print(f"skipping evaluation task {name}: {why}")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(config.to_dict(), out / "config.json")

    venv = VecNormalize(
        build_vec_env(config, tasks),
        norm_obs=True,
        norm_reward=False,
        clip_obs=config.clip_obs,
        gamma=config.gamma,
    )
    state: dict[str, Any] = {"episodes": 0, "best_return": -math.inf}
    if checkpoint is None:
        model = _make_model(config, venv)
        venv.seed(config.seed)
    else:
        model = _load_model(config, checkpoint["model_zip"], venv)
        rms: Any = venv.obs_rms
        rms.mean, rms.var = checkpoint["obs_rms"]["mean"], checkpoint["obs_rms"]["var"]
        rms.count = checkpoint["obs_rms"]["count"]
        torch.set_rng_state(checkpoint["rng"]["torch"])
        np.random.set_state(checkpoint["rng"]["numpy"])  # noqa: NPY002
        random.setstate(checkpoint["rng"]["python"])
        state = {"episodes": checkpoint["episodes"], "best_return": checkpoint["best_return"]}
        # Fresh episodes after a resume: seed the environments from the step count.
        venv.seed(config.seed + int(checkpoint["num_timesteps"]))
    model.set_logger(configure(str(out), ["tensorboard", "csv"]))

    def freeze() -> FrozenPolicy:
        return FrozenPolicy.from_model(
            model,
            venv.obs_rms,
            venv.clip_obs,
            venv.epsilon,
            tuned=config.tuned,
            action_mode=config.action_mode,
            frame_stack=config.frame_stack,
            env_config={
                k: v
                for k, v in _env_kwargs(config, tasks).items()
                if k not in ("tasks", "data_dir")
            },
            tasks=tuple(tasks),
        )

    metrics = TaskMetricsCallback(
        config_text=_config_markdown(config, tasks, skipped), episodes=state["episodes"]
    )
    evaluator = HeldOutEvalCallback(
        config.eval_every if eval_tasks else 0,
        evaluate=lambda: evaluate_policy(freeze(), config, eval_tasks),
        on_best=lambda: freeze().save(out / "best_policy.pt"),
        best=state["best_return"],
    )

    def save() -> None:
        counters = {"episodes": metrics.episodes, "best_return": evaluator.best}
        save_checkpoint(checkpoint_path, model, venv, counters)

    callbacks = CallbackList(
        [
            metrics,
            evaluator,
            CheckpointCallback(config.checkpoint_every, save),
            ProgressBarCallback(config.total_steps, metrics),
        ]
    )
    remaining = config.total_steps - int(model.num_timesteps)
    try:
        if remaining > 0:
            model.learn(
                remaining,
                callback=callbacks,
                reset_num_timesteps=checkpoint is None,
                log_interval=1,
            )
    except KeyboardInterrupt:
        save()
        print(f"\ninterrupted at step {model.num_timesteps}; checkpoint saved in {checkpoint_path}")
        print(f"continue with: python scripts/train_agent.py --out-dir {out} --resume")
        raise
    finally:
        venv.close()
    save()
    if eval_tasks and config.eval_every:
        evaluator.run_now()
        model.logger.dump(model.num_timesteps)
    final = freeze().save(out / "policy.pt")
    if not (out / "best_policy.pt").exists():
        freeze().save(out / "best_policy.pt")
    print(f"frozen policy: {final} (best on held-out tasks: {out / 'best_policy.pt'})")
    print(f"TensorBoard: tensorboard --logdir {out}")
    return final


def evaluate_policy(
    policy: FrozenPolicy, config: MetaTrainConfig, tasks: list[str]
) -> dict[str, float]:
    """Deterministic episodes of ``policy`` on ``tasks`` x ``config.eval_seeds``.

    Initial learning rates are drawn from the seed as in training, so the
    score includes rescuing bad starts.
    """
    env = make_env(**_env_kwargs(config, tasks))
    actor = PolicyActor(policy)
    returns, accuracies = [], []
    for task in resolve_tasks(tasks):
        for seed in config.eval_seeds:
            result = run_episode(
                env, actor, seed, options={"task": task}, test=False, on_reset=actor.reset
            )
            returns.append(result.episode_return)
            accuracies.append(0.0 if result.diverged else result.val_accuracy)
    return {"mean_return": float(np.mean(returns)), "mean_val_accuracy": float(np.mean(accuracies))}
