"""Meta-train one PPO agent across many `HPTuneEnv` tasks, and freeze it.

`meta_train` is the library entry point; ``scripts/train_agent.py`` is its CLI.
A run directory holds:

- TensorBoard events (SB3's metrics, ``hpenv/`` per-task metrics, ``eval/``) and
  ``progress.csv`` (one row per PPO update; a resume appends, see `agents.metatrain.run_log`);
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

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.vec_env import VecNormalize

from agents.metatrain.callbacks import (
    HeldOutEvalCallback,
    MetaTrainProgressBar,
    RolloutCheckpointCallback,
    TaskMetricsCallback,
)
from agents.metatrain.checkpoints import (
    checkpoint_state,
    load_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from agents.metatrain.config import MetaTrainConfig, check_resumable, default_out_dir
from agents.metatrain.model import make_model
from agents.metatrain.rollout import run_episode
from agents.metatrain.run_log import make_logger
from agents.metatrain.suite import available, make_env, resolve_tasks
from agents.metatrain.vec_env import build_vec_env, env_kwargs, terminate_workers
from agents.policy.artifact import FrozenPolicy, PolicyActor
from agents.stopping import GracefulStop, JobInterrupted
from hpenv.io import atomic_write_json


def _config_markdown(config: MetaTrainConfig, tasks: list[str], skipped: dict[str, str]) -> str:
    lines = ["| option | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in config.to_dict().items()]
    lines.append(f"| tasks used | {', '.join(tasks)} |")
    lines += [f"| skipped {name} | {why} |" for name, why in skipped.items()]
    return "\n".join(lines)


def _resume_hint(out: Path, checkpoint: Path, step: int, total: int) -> str:
    return (
        f"interrupted; checkpoint at agent step {step} of {total}: {checkpoint}; continue with: "
        f"python scripts/train_agent.py --out-dir {out} --resume"
    )


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
            terminate_workers(venv)
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
    model = make_model(config, venv)
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
                k: v for k, v in env_kwargs(config, tasks).items() if k not in ("tasks", "data_dir")
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
    env = make_env(**env_kwargs(config, tasks))
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
