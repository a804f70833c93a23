"""Meta-train one PPO agent across many `HPTuneEnv` tasks, and freeze it.

`meta_train` is the library entry point; ``scripts/train_agent.py`` is its CLI.
A run directory holds:

- TensorBoard events (SB3's metrics, ``hpenv/`` per-task metrics, ``eval/``) and
  ``progress.csv`` (one row per PPO update; a resume appends, see `agents.run_log`);
- ``checkpoints/latest.pt``: policy and optimizer state, step counters,
  observation normalisation and RNG states, as tensors and plain values
  (loadable without unpickling objects), written atomically at the start of
  the run, at rollout boundaries at least ``checkpoint_every`` steps apart,
  when stopped by SIGINT/SIGTERM and at the end; ``--resume`` continues from it;
- ``best_policy.pt`` (and ``best_policy.json``, its score): the frozen policy
  that scored best on the held-out evaluation tasks so far; ``policy.pt``: the
  final frozen policy;
- ``config.json``: the configuration (``--resume`` reads it).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecFrameStack,
    VecNormalize,
)

from agents.callbacks import (
    HeldOutEvalCallback,
    MetaTrainProgressBar,
    RolloutCheckpointCallback,
    TaskMetricsCallback,
)
from agents.cli import option
from agents.policy import FrozenPolicy, PolicyActor
from agents.rollout import run_episode
from agents.run_log import make_logger
from agents.stopping import GracefulStop, JobInterrupted, ignore_stop_signals
from agents.suite import (
    DEFAULT_EVAL_TASKS,
    DEFAULT_TRAIN_TASKS,
    available,
    make_env,
    resolve_tasks,
)
from hpenv.io import atomic_torch_save, atomic_write_json, safe_torch_load

CHECKPOINT_FORMAT = 2


@dataclass(frozen=True)
class MetaTrainConfig:
    """Configuration of one meta-training run (every field is a CLI flag)."""

    train_tasks: tuple[str, ...] = option(
        "tasks to meta-train on ('synthetic' = a new generated task per episode); "
        "tasks whose data is missing are skipped with a message",
        default=DEFAULT_TRAIN_TASKS,
    )
    eval_tasks: tuple[str, ...] = option(
        "held-out tasks for periodic evaluation and best-policy selection "
        "('synthetic-heldout' = fixed generated tasks training never sees)",
        default=DEFAULT_EVAL_TASKS,
    )
    total_steps: int = option("agent steps (decisions) in total", default=8_000)
    n_envs: int = option(
        "parallel environments (4 on 2 cores: stepping is lock-step, so extra workers "
        "fill the cores while one waits on a slow task)",
        default=4,
    )
    vec_env: Literal["subprocess", "dummy"] = option(
        "'subprocess' (one process per env, 1 torch thread each) or 'dummy' (in-process)",
        default="subprocess",
    )
    tuned: tuple[str, ...] = option("hyperparameters the agent controls", default=("lr",))
    action_mode: Literal["continuous", "discrete"] = option("action space", default="continuous")
    decisions: int = option("decisions per episode", default=20)
    budget: int | None = option(
        "episode budget in samples for every task (default: per-task CPU fidelity)", default=None
    )
    reward: str = option("reward name (see hpenv.rewards)", default="log_val_loss")
    lr_below: float = option("initial lr drawn down to task default / this", default=100.0)
    lr_above: float = option("initial lr drawn up to task default * this", default=30.0)
    algorithm: Literal["ppo", "recurrent_ppo"] = option(
        "'ppo' (MLP policy) or 'recurrent_ppo' (LSTM policy, sb3-contrib, ~10x slower)",
        default="ppo",
    )
    frame_stack: int = option("stack the last N observations (cheap memory)", default=1)
    n_steps: int = option("PPO rollout length per env (a few episodes)", default=64)
    batch_size: int = option("PPO minibatch size", default=64)
    n_epochs: int = option("PPO epochs per update", default=10)
    learning_rate: float = option("PPO learning rate", default=3e-4)
    gamma: float = option("discount factor", default=0.99)
    gae_lambda: float = option("GAE lambda", default=0.95)
    clip_range: float = option("PPO clip range", default=0.2)
    ent_coef: float = option("entropy bonus", default=0.0)
    net_arch: tuple[int, ...] = option("hidden layers of policy and value nets", default=(64, 64))
    log_std_init: float = option("initial log std of the Gaussian policy", default=-0.5)
    clip_obs: float = option("VecNormalize observation clip", default=10.0)
    eval_every: int = option("agent steps between held-out evaluations (0: never)", default=2_000)
    eval_seeds: tuple[int, ...] = option("seeds of each held-out evaluation", default=(0, 1))
    checkpoint_every: int = option("agent steps between checkpoints", default=1_000)
    device: str = option("device of the agent's networks", default="cpu")
    env_device: str = option(
        "device the environments train on ('auto' = CUDA if any)", default="cpu"
    )
    data_dir: str | None = option("local data directory (default HPENV_DATA_DIR)", default=None)
    seed: int = option("seed of the agent and the environments", default=0)
    out_dir: str | None = option("run directory (default logs/meta-<time>)", default=None)
    resume: bool = option("continue the run in out_dir from its latest checkpoint", default=False)

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
    """Runs in each environment process: one torch thread, so workers do not oversubscribe.

    Workers leave SIGINT and SIGTERM to the main process, which stops them cleanly.
    """
    torch.set_num_threads(1)
    ignore_stop_signals()
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


def checkpoint_state(model: Any, venv: VecNormalize, counters: dict[str, Any]) -> dict[str, Any]:
    """Everything a resume needs, as tensors and plain values only (no pickled objects).

    The SB3 model is stored as its policy's and optimizer's state dicts and
    counters (not SB3's zip, whose ``data`` part is unpickled on load): resuming
    rebuilds the model from the configuration and loads them.
    """
    rms: Any = venv.obs_rms
    numpy_state: Any = np.random.get_state(legacy=False)  # noqa: NPY002 (SB3 samples from it)
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()
    return {
        "format": CHECKPOINT_FORMAT,
        "policy": {k: v.detach().cpu().clone() for k, v in model.policy.state_dict().items()},
        "optimizer": copy.deepcopy(model.policy.optimizer.state_dict()),
        "num_timesteps": int(model.num_timesteps),
        "n_updates": int(model._n_updates),
        "episode_num": int(model._episode_num),
        "ep_info_buffer": [
            {k: float(v) for k, v in info.items()} for info in (model.ep_info_buffer or ())
        ],
        "obs_rms": {
            "mean": torch.as_tensor(rms.mean).clone(),
            "var": torch.as_tensor(rms.var).clone(),
            "count": float(rms.count),
        },
        "rng": {
            "torch": torch.get_rng_state(),
            "numpy": numpy_state,
            "python": random.getstate(),
        },
        **counters,
    }


def restore_checkpoint(checkpoint: dict[str, Any], model: Any, venv: VecNormalize) -> None:
    """Load `checkpoint_state` into a model freshly built from the run's configuration."""
    model.policy.load_state_dict(checkpoint["policy"])
    model.policy.optimizer.load_state_dict(checkpoint["optimizer"])
    model.num_timesteps = checkpoint["num_timesteps"]
    model._n_updates = checkpoint["n_updates"]
    model._episode_num = checkpoint["episode_num"]
    model.ep_info_buffer = deque(checkpoint["ep_info_buffer"], maxlen=model._stats_window_size)
    model.ep_success_buffer = deque(maxlen=model._stats_window_size)
    rms: Any = venv.obs_rms
    rms.mean = checkpoint["obs_rms"]["mean"].numpy().astype(np.float64)
    rms.var = checkpoint["obs_rms"]["var"].numpy().astype(np.float64)
    rms.count = checkpoint["obs_rms"]["count"]
    torch.set_rng_state(checkpoint["rng"]["torch"])
    numpy_state = copy.deepcopy(checkpoint["rng"]["numpy"])
    numpy_state["state"]["key"] = np.asarray(numpy_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(numpy_state)  # noqa: NPY002
    python_state = checkpoint["rng"]["python"]
    random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a `checkpoint_state` atomically."""
    atomic_torch_save(state, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint (tensors and plain values only: a crafted file cannot run code)."""
    checkpoint = safe_torch_load(path, "meta-training checkpoint")
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        found = checkpoint.get("format") if isinstance(checkpoint, dict) else None
        raise ValueError(
            f"{path}: checkpoint format {found} is not the format {CHECKPOINT_FORMAT} this "
            "hpenv writes; resume it with the hpenv version that wrote it, or start a new run"
        )
    return checkpoint


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


def check_resumable(config: MetaTrainConfig, saved: dict[str, Any]) -> None:
    """Refuse to resume with options that differ from the run's (``total_steps`` may grow).

    Raises:
        ValueError: Naming every differing option with the run's and the given value.
    """
    exempt = ("resume", "total_steps", "out_dir")
    given = json.loads(json.dumps(config.to_dict()))
    changed = [
        f"--{k.replace('_', '-')}: the run has {saved.get(k)!r}, this command gives {v!r}"
        for k, v in given.items()
        if k not in exempt and v != saved.get(k)
    ]
    if changed:
        raise ValueError(
            "cannot resume with a changed configuration (drop these options, or start a new "
            "run): " + "; ".join(changed)
        )


def resume_config(out_dir: str | Path, overrides: dict[str, Any]) -> MetaTrainConfig:
    """The configuration of the run in ``out_dir``, with ``overrides`` (given flags) checked.

    Options not given come from the run's ``config.json``; a given option must
    equal the run's, except ``total_steps`` (extend the run explicitly).
    """
    path = Path(out_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"--resume: {path} not found; is {out_dir} a meta-training run?")
    saved = json.loads(path.read_text())
    config = config_from_dict({**saved, **overrides, "out_dir": str(out_dir), "resume": True})
    check_resumable(config, saved)
    return config


def config_from_dict(values: dict[str, Any]) -> MetaTrainConfig:
    """A `MetaTrainConfig` from JSON values (lists become tuples); unknown keys refused."""
    fields = {f.name: f for f in dataclasses.fields(MetaTrainConfig)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"unknown meta-training options {sorted(unknown)}")
    converted: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in values.items()
    }
    return MetaTrainConfig(**converted)


def _resume_hint(out: Path, checkpoint: Path, step: int, total: int) -> str:
    return (
        f"interrupted; checkpoint at agent step {step} of {total}: {checkpoint}; continue with: "
        f"python scripts/train_agent.py --out-dir {out} --resume"
    )


def _terminate_workers(venv: VecEnv) -> None:
    """Close without waiting on workers that may be mid-step (after a hard interrupt)."""
    inner: Any = venv
    while hasattr(inner, "venv"):
        inner = inner.venv
    for process in getattr(inner, "processes", ()):
        process.kill()  # workers ignore SIGTERM (see ignore_stop_signals)
        process.join(timeout=5)
    if hasattr(inner, "closed"):
        inner.closed = True


def meta_train(config: MetaTrainConfig) -> Path:
    """Run (or resume) meta-training; returns the path of the final frozen policy.

    SIGINT (Ctrl-C) and SIGTERM stop the run at the next agent step: the
    checkpoint of the latest rollout boundary is written, workers are closed,
    and `JobInterrupted` is raised, its message saying where the checkpoint is
    and how to continue. A second signal aborts at once (the latest periodic
    checkpoint stays).

    Raises:
        ValueError: No training task has data, or resuming with another config.
        FileNotFoundError: ``resume`` without a checkpoint in ``out_dir``.
        JobInterrupted: Stopped by a signal (see above).
    """
    out = Path(config.out_dir) if config.out_dir else default_out_dir(config)
    checkpoint_path = out / "checkpoints" / "latest.pt"
    checkpoint = load_checkpoint(checkpoint_path) if config.resume else None
    if checkpoint is not None:
        check_resumable(config, json.loads((out / "config.json").read_text()))
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

    with GracefulStop() as stop:
        venv = VecNormalize(
            build_vec_env(config, tasks),
            norm_obs=True,
            norm_reward=False,
            clip_obs=config.clip_obs,
            gamma=config.gamma,
        )
        try:
            return _train(config, out, checkpoint, venv, tasks, skipped, eval_tasks, stop)
        except JobInterrupted:
            raise  # stopped cleanly at a step boundary: the workers close normally
        except KeyboardInterrupt:
            _terminate_workers(venv)
            step = (
                load_checkpoint(checkpoint_path)["num_timesteps"]
                if checkpoint_path.is_file()
                else 0
            )
            raise JobInterrupted(
                _resume_hint(out, checkpoint_path, step, config.total_steps)
            ) from None
        finally:
            venv.close()


def _train(
    config: MetaTrainConfig,
    out: Path,
    checkpoint: dict[str, Any] | None,
    venv: VecNormalize,
    tasks: list[str],
    skipped: dict[str, str],
    eval_tasks: list[str],
    stop: GracefulStop,
) -> Path:
    checkpoint_path = out / "checkpoints" / "latest.pt"
    model = _make_model(config, venv)
    state: dict[str, Any] = {"episodes": 0, "best_return": -math.inf}
    if checkpoint is None:
        venv.seed(config.seed)
    else:
        restore_checkpoint(checkpoint, model, venv)
        state = {"episodes": checkpoint["episodes"], "best_return": checkpoint["best_return"]}
        best_file = out / "best_policy.json"
        if best_file.is_file():  # a best policy written after the checkpoint stays the best
            state["best_return"] = max(
                state["best_return"], json.loads(best_file.read_text())["mean_return"]
            )
        # Fresh episodes after a resume: seed the environments from the step count.
        venv.seed(config.seed + int(checkpoint["num_timesteps"]))
    model.set_logger(
        make_logger(out, None if checkpoint is None else int(checkpoint["num_timesteps"]))
    )

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

    def on_best(score: float) -> None:
        freeze().save(out / "best_policy.pt")
        record = {"mean_return": score, "agent_steps": int(model.num_timesteps)}
        atomic_write_json(record, out / "best_policy.json")

    metrics = TaskMetricsCallback(
        config_text=_config_markdown(config, tasks, skipped), episodes=state["episodes"]
    )
    evaluator = HeldOutEvalCallback(
        config.eval_every if eval_tasks else 0,
        evaluate=lambda: evaluate_policy(freeze(), config, eval_tasks),
        on_best=on_best,
        best=state["best_return"],
    )

    def snapshot() -> dict[str, Any]:
        counters = {"episodes": metrics.episodes, "best_return": evaluator.best}
        return checkpoint_state(model, venv, counters)

    def save(blob: dict[str, Any]) -> None:
        save_checkpoint(checkpoint_path, blob)

    checkpoints = RolloutCheckpointCallback(config.checkpoint_every, snapshot, save, stop)
    if checkpoint is None:
        save(snapshot())  # a run can be resumed from its first step on
    callbacks = CallbackList(
        [metrics, evaluator, checkpoints, MetaTrainProgressBar(config.total_steps, metrics)]
    )
    remaining = config.total_steps - int(model.num_timesteps)
    if remaining <= 0:
        print(f"the run is complete ({model.num_timesteps} agent steps); --total-steps extends it")
        return out / "policy.pt"
    model.learn(
        remaining, callback=callbacks, reset_num_timesteps=checkpoint is None, log_interval=1
    )
    if stop.requested:
        latest = checkpoints.latest or snapshot()
        save(latest)
        raise JobInterrupted(
            _resume_hint(out, checkpoint_path, latest["num_timesteps"], config.total_steps)
        )
    save(snapshot())
    if eval_tasks and config.eval_every:
        evaluator.run_now()  # the final held-out score: its own row, at the last step
        model.logger.record("time/total_timesteps", model.num_timesteps)
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
