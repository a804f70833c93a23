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
- ``policy.pt``: the final frozen policy;
- ``best_policy.pt`` (and ``best_policy.json``, its score and agent step): the
  frozen policy that scored best on the held-out evaluation tasks, only when
  there was a selection (``eval_every > 0`` and some evaluation task has data);
- ``config.json``: the configuration (``--resume`` reads it).

With ``ensemble`` K > 1 (``--ensemble K``; `make train` trains 5) the directory holds
``config.json``, one whole run as above per seed in ``s<seed>/`` (seeds ``seed`` to
``seed + K - 1``, trained one after another, or ``ensemble_jobs`` at once in processes of
their own, each writing its output to ``s<seed>/train.log``), ``policy.pt``: the ensemble of the
members' ``best_policy.pt`` (their ``policy.pt`` without a selection), acting by the
mean of their actions (`agents.policy.FrozenPolicy.ensemble`), and
``ensemble.json``: its members and its held-out score beside theirs. ``--resume``
continues the member that was stopped; finished members are not trained again.

PPO collects whole rollouts of ``n_steps x n_envs`` agent steps, so a run ends
at the first rollout boundary at or past ``total_steps``; when that is not
``total_steps`` itself, the run says so in one line (`rounded_steps`) and
records it in the ``hpenv/config`` text.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.vec_env import VecNormalize

from agents.metatrain.callbacks import (
    HeldOutEvaluation,
    MetaTrainProgressBar,
    RolloutCheckpointCallback,
    TaskMetricsCallback,
    held_out_every,
)
from agents.metatrain.checkpoints import (
    checkpoint_state,
    load_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from agents.metatrain.config import (
    MetaTrainConfig,
    check_resumable,
    default_out_dir,
    env_metadata,
    read_run_config,
)
from agents.metatrain.members import member_line, train_at_once
from agents.metatrain.model import make_model
from agents.metatrain.rollout import run_episode
from agents.metatrain.run_log import make_logger
from agents.metatrain.suite import available, make_env, resolve_tasks
from agents.metatrain.vec_env import (
    batchable,
    build_vec_env,
    env_kwargs,
    terminate_workers,
    vec_env_runtime,
)
from agents.policy.artifact import (
    FrozenPolicy,
    PolicyActor,
    load_policy,
)
from agents.stopping import GracefulStop, JobInterrupted
from hpenv.errors import InputError
from hpenv.io import atomic_write_json, read_json_object


def rounded_steps(total_steps: int, done: int, rollout: int) -> int:
    """The agent step a run ends at: the first whole rollout at or past ``total_steps``.

    Args:
        total_steps: The steps asked for.
        done: Steps already trained (a resumed run's; a multiple of ``rollout``).
        rollout: Agent steps per PPO rollout (``n_steps x n_envs``).

    >>> rounded_steps(1_024, 0, 64 * 64)
    4096
    >>> rounded_steps(8_000, 4_096, 256)
    8192
    """
    remaining = max(total_steps - done, 0)
    return done + -(-remaining // rollout) * rollout


def _rounding_note(config: MetaTrainConfig, planned: int, n_envs: int) -> str:
    rollout = config.n_steps * n_envs
    return (
        f"agent steps: {planned:,} instead of --total-steps {config.total_steps:,}: PPO "
        f"collects whole rollouts of n_steps x n_envs = {config.n_steps} x {n_envs} = "
        f"{rollout:,} steps (a smaller --n-steps rounds less)"
    )


def _config_markdown(
    config: MetaTrainConfig, tasks: list[str], skipped: dict[str, str], planned: int
) -> str:
    lines = ["| option | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in config.to_dict().items()]
    lines.append(f"| agent steps (whole rollouts) | {planned} |")
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
        InputError: ``out_dir`` already holds a run (without ``resume``), its
            checkpoint or ``config.json`` is unreadable, resuming with another
            config, or no training task has data. Nothing is written.
        FileNotFoundError: ``resume`` without a checkpoint in ``out_dir``.
        JobInterrupted: Stopped by a signal (see above).
    """
    if config.ensemble > 1:
        return _meta_train_ensemble(config)
    out = Path(config.out_dir) if config.out_dir else default_out_dir(config)
    checkpoint_path = checkpoint_file(out)
    checkpoint = load_checkpoint(checkpoint_path) if config.resume else None
    if checkpoint is not None:
        check_resumable(config, read_run_config(out))
    elif checkpoint_path.exists():
        raise InputError(f"{out} already holds a run; pass --resume or choose another --out-dir")
    tasks, skipped = training_tasks(config)
    for name, why in skipped.items():
        print(f"skipping training task {name}: {why}")
    eval_tasks, eval_skipped = available(config.eval_tasks, config.data_dir)
    for name, why in eval_skipped.items():
        print(f"skipping evaluation task {name}: {why}")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(config.to_dict(), out / "config.json")

    # Ray (--vec-env ray) is connected outside GracefulStop: ray.init sets a SIGTERM handler.
    with vec_env_runtime(config), GracefulStop() as stop:
        venv = training_env(config, tasks)
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


def checkpoint_file(out: str | Path) -> Path:
    """The latest checkpoint of the run in ``out`` (``--resume`` continues from it)."""
    return Path(out) / "checkpoints" / "latest.pt"


def run_started(out: str | Path) -> bool:
    """Whether ``out`` holds a meta-training run that ``--resume`` continues: a checkpoint of
    its own, or of a member of an ensemble run (``s<seed>/``)."""
    folder = Path(out)
    return checkpoint_file(folder).is_file() or any(
        checkpoint_file(member).is_file() for member in folder.glob("s*/")
    )


def ensemble_members(config: MetaTrainConfig, out: Path) -> list[MetaTrainConfig]:
    """The member runs of an ensemble run in ``out``: seeds ``seed`` .. ``seed + ensemble - 1``,
    each a one-seed run of the same options in ``out/s<seed>``, resumed when it has a
    checkpoint."""
    members = []
    for seed in range(config.seed, config.seed + config.ensemble):
        folder = out / f"s{seed}"
        members.append(
            dataclasses.replace(
                config,
                seed=seed,
                ensemble=1,
                ensemble_jobs=1,
                out_dir=str(folder),
                resume=checkpoint_file(folder).is_file(),
            )
        )
    return members


def best_selection(out: str | Path) -> dict[str, Any] | None:
    """A run's held-out selection record, ``best_policy.json`` (``mean_return`` and
    ``agent_steps`` of its ``best_policy.pt``), or None when it wrote none.

    Raises:
        InputError: The record is unreadable (names the file).
    """
    record = Path(out) / "best_policy.json"
    return read_json_object(record, "held-out selection record") if record.is_file() else None


def member_policy(out: str | Path) -> Path:
    """A finished run's policy for an ensemble: ``best_policy.pt`` when held-out
    evaluation selected one, else ``policy.pt``."""
    best = Path(out) / "best_policy.pt"
    return best if best.is_file() else Path(out) / "policy.pt"


def _meta_train_ensemble(config: MetaTrainConfig) -> Path:
    """`meta_train` with ``ensemble`` > 1: the members one after another (or
    ``ensemble_jobs`` at once: `agents.metatrain.members`), then their ensemble as
    ``policy.pt`` (see the module docstring)."""
    out = Path(config.out_dir) if config.out_dir else default_out_dir(config)
    if config.resume:
        check_resumable(config, read_run_config(out))
    elif run_started(out) or (out / "policy.pt").is_file():
        raise InputError(f"{out} already holds a run; pass --resume or choose another --out-dir")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(config.to_dict(), out / "config.json")
    members = ensemble_members(config, out)
    hint = f"python scripts/train_agent.py --out-dir {out} --resume"
    if config.ensemble_jobs > 1:
        hint += f" --ensemble-jobs {config.ensemble_jobs}"
        train_at_once(members, config.ensemble_jobs, hint)
    else:
        _train_one_after_another(members, hint)
    files = [member_policy(m.out_dir or "") for m in members]
    ensemble = FrozenPolicy.ensemble(
        [load_policy(f) for f in files], sources=[str(f.relative_to(out)) for f in files]
    )
    final = ensemble.save(out / "policy.pt")
    record = _ensemble_record(ensemble, config, members, files)
    atomic_write_json(record, out / "ensemble.json")
    print(f"frozen policy: {final} (the ensemble of {', '.join(map(str, files))})")
    if "mean_return" in record:
        chosen = ", ".join(
            "n/a" if m["selected_return"] is None else f"{m['selected_return']:.3f}"
            for m in record["members"]
        )
        print(
            f"the ensemble's held-out mean return: {record['mean_return']:.3f} (the members' "
            f"at their selection, an optimistic figure: {chosen})"
        )
    print(f"TensorBoard: tensorboard --logdir {out}")
    return final


def _train_one_after_another(members: list[MetaTrainConfig], hint: str) -> None:
    """The members of an ensemble run, one after another in this process."""
    with GracefulStop() as stop:  # between members (each member handles its own signals)
        for k, member in enumerate(members, 1):
            if stop.requested:
                raise JobInterrupted(f"interrupted before member {k}; continue with: {hint}")
            print(member_line(k, len(members), member))
            try:
                meta_train(member)
            except JobInterrupted:
                raise JobInterrupted(
                    f"interrupted; member {k} of {len(members)} (seed {member.seed}) has its "
                    f"checkpoint in {member.out_dir}; continue the ensemble run with: {hint}"
                ) from None


def _ensemble_record(
    ensemble: FrozenPolicy, config: MetaTrainConfig, members: list[MetaTrainConfig],
    files: list[Path],
) -> dict[str, Any]:  # fmt: skip
    """``ensemble.json``: the members (seed, policy file, held-out score when selected) and,
    with held-out evaluation on, the ensemble's own score on the same tasks and seeds."""
    rows = []
    for member, file in zip(members, files, strict=True):
        chosen = best_selection(member.out_dir or "") if file.name == "best_policy.pt" else None
        selected = None if chosen is None else float(chosen["mean_return"])
        rows.append({"seed": member.seed, "policy": str(file), "selected_return": selected})
    record: dict[str, Any] = {"size": ensemble.size, "members": rows}
    eval_tasks, _ = available(config.eval_tasks, config.data_dir)
    if eval_tasks and config.eval_every:
        record.update(evaluate_policy(ensemble, config, eval_tasks))
    return record


def training_tasks(config: MetaTrainConfig) -> tuple[list[str], dict[str, str]]:
    """The suite tasks a run trains on, and why each other one is left out (no data; for a
    population, a model it cannot batch).

    Raises:
        InputError: No task is left.
    """
    tasks, skipped = available(config.train_tasks, config.data_dir)
    if config.vec_env == "population" or config.ray_members_per_actor > 1:
        tasks, unbatchable = batchable(tasks)
        skipped.update(unbatchable)
    if not tasks:
        raise InputError(
            "none of the training tasks has data: "
            + "; ".join(f"{name}: {why}" for name, why in skipped.items())
        )
    return tasks, skipped


def training_env(config: MetaTrainConfig, tasks: list[str]) -> VecNormalize:
    """The run's vectorised environments, observations normalised as the policy will see
    them (the statistics are frozen into the artifact). Build it inside `vec_env_runtime`."""
    return VecNormalize(
        build_vec_env(config, tasks),
        norm_obs=True,
        norm_reward=False,
        clip_obs=config.clip_obs,
        gamma=config.gamma,
    )


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
    session = _Session(config, out, venv, tasks, eval_tasks, stop)
    done = 0 if checkpoint is None else int(checkpoint["num_timesteps"])
    session.planned = rounded_steps(config.total_steps, done, config.n_steps * venv.num_envs)
    session.start(checkpoint, _config_markdown(config, tasks, skipped, session.planned))
    remaining = config.total_steps - session.steps
    if remaining <= 0:
        print(f"the run is complete ({session.steps} agent steps); --total-steps extends it")
        return out / "policy.pt"
    if session.planned != config.total_steps:
        print(_rounding_note(config, session.planned, venv.num_envs))
    session.model.learn(
        remaining,
        callback=session.callbacks(),
        reset_num_timesteps=checkpoint is None,
        log_interval=1,
    )
    return session.finish()


class _Session:
    """One process's part of a meta-training run: model, callbacks, checkpoints, freezing."""

    def __init__(
        self,
        config: MetaTrainConfig,
        out: Path,
        venv: VecNormalize,
        tasks: list[str],
        eval_tasks: list[str],
        stop: GracefulStop,
    ) -> None:
        self.config, self.out, self.venv = config, out, venv
        self.tasks, self.eval_tasks, self.stop = tasks, eval_tasks, stop
        self.checkpoint_path = checkpoint_file(out)
        self.model = make_model(config, venv)
        self.planned = config.total_steps  # where the run ends: whole rollouts (`rounded_steps`)

    @property
    def steps(self) -> int:
        return int(self.model.num_timesteps)

    def start(self, checkpoint: dict[str, Any] | None, config_text: str) -> None:
        """Restore a checkpoint (or seed a fresh run), set up logging and the callbacks."""
        episodes, best, restarts = 0, -math.inf, 0
        if checkpoint is None:
            self.venv.seed(self.config.seed)
        else:
            restore_checkpoint(checkpoint, self.model, self.venv)
            episodes, best = checkpoint["episodes"], checkpoint["best_return"]
            restarts = int(checkpoint.get("ray_actor_restarts", 0))
            selected = best_selection(self.out)
            if selected is not None:  # a best policy written after the checkpoint stays best
                best = max(best, float(selected["mean_return"]))
            # Fresh episodes after a resume: seed the environments from the step count.
            self.venv.seed(self.config.seed + self.steps)
        self.model.set_logger(make_logger(self.out, None if checkpoint is None else self.steps))
        self.metrics = TaskMetricsCallback(
            config_text=config_text, episodes=episodes, restarts=restarts
        )
        if checkpoint is not None:
            self.metrics.load_state_dict(checkpoint.get("trajectories", {}))
        self.evaluation = HeldOutEvaluation(
            evaluate=lambda: evaluate_policy(self.freeze(), self.config, self.eval_tasks),
            on_best=self.on_best,
            best=best,
        )
        self.checkpoints = RolloutCheckpointCallback(
            self.config.checkpoint_every, self.snapshot, self.save, self.stop
        )
        if checkpoint is None:
            self.save(self.snapshot())  # a run can be resumed from its first step on

    def callbacks(self) -> CallbackList:
        callbacks: list[BaseCallback] = [self.metrics, self.checkpoints]
        if self.eval_tasks and self.config.eval_every:
            callbacks.append(held_out_every(self.config.eval_every, self.evaluation, self.steps))
        callbacks.append(MetaTrainProgressBar(self.planned, self.metrics))
        return CallbackList(callbacks)

    def freeze(self) -> FrozenPolicy:
        """The current policy with its normalisation statistics, as an artifact."""
        return FrozenPolicy.from_model(
            self.model,
            self.venv.obs_rms,
            self.venv.clip_obs,
            self.venv.epsilon,
            tuned=self.config.tuned,
            action_mode=self.config.action_mode,
            frame_stack=self.config.frame_stack,
            env_config=env_metadata(self.config),
            tasks=tuple(self.tasks),
            obs_version=self.config.layout,
        )

    def deployed(self) -> FrozenPolicy:
        """`freeze`, with the deployment settings chosen for it (``deploy_rise_guard``,
        ``deploy_probe_start``, ``deploy_restart``, ``deploy_fall_hold``): what the run writes
        as ``policy.pt`` and ``best_policy.pt``."""
        return self.freeze().with_deploy_flags(
            self.config.deploy_rise_guard,
            self.config.deploy_probe_start,
            restart=self.config.deploy_restart,
            fall_hold=self.config.deploy_fall_hold,
        )

    def on_best(self, score: float) -> None:
        self.deployed().save(self.out / "best_policy.pt")
        record = {"mean_return": score, "agent_steps": self.steps}
        atomic_write_json(record, self.out / "best_policy.json")

    def snapshot(self) -> dict[str, Any]:
        counters = {
            "episodes": self.metrics.episodes,
            "ray_actor_restarts": self.metrics.restarts,
            "best_return": self.evaluation.best,
            "trajectories": self.metrics.state_dict(),
        }
        return checkpoint_state(self.model, self.venv, counters)

    def save(self, blob: dict[str, Any]) -> None:
        save_checkpoint(self.checkpoint_path, blob)

    def finish(self) -> Path:
        """After `learn`: the stop checkpoint and `JobInterrupted`, or the final artifacts."""
        if self.stop.requested:
            latest = self.checkpoints.latest or self.snapshot()
            self.save(latest)
            raise JobInterrupted(
                _resume_hint(
                    self.out, self.checkpoint_path, latest["num_timesteps"], self.config.total_steps
                )
            )
        self.save(self.snapshot())
        if self.eval_tasks and self.config.eval_every:
            self.evaluation.init_callback(self.model)
            self.evaluation.run_now()  # the final held-out score: its own row, at the last step
            self.model.logger.record("time/total_timesteps", self.steps)
            self.model.logger.dump(self.steps)
        final = self.deployed().save(self.out / "policy.pt")
        print(f"frozen policy: {final} ({self._selection()})")
        print(f"TensorBoard: tensorboard --logdir {self.out}")
        return final

    def _selection(self) -> str:
        """What ``best_policy.pt`` is, or why there is none."""
        record = best_selection(self.out)
        if record is not None and (self.out / "best_policy.pt").is_file():
            return (
                f"best on held-out tasks: {self.out / 'best_policy.pt'}, mean return "
                f"{record['mean_return']:.3f} at agent step {record['agent_steps']:,}"
            )
        if not self.config.eval_every:
            why = "--eval-every 0"
        elif not self.eval_tasks:
            why = "no held-out evaluation task has data"
        else:
            why = "no held-out evaluation scored"
        return f"no best policy: no held-out selection ({why})"


def evaluate_policy(
    policy: FrozenPolicy, config: MetaTrainConfig, tasks: list[str]
) -> dict[str, float]:
    """Deterministic episodes of ``policy`` on ``tasks`` x ``config.eval_seeds``.

    Initial learning rates (and a hidden rate scale, ``config.lr_scale``) are drawn from
    the seed as in training, so the score includes rescuing bad starts. The episodes hold
    the rate's rises, and a layout-1 policy's probe and start at the probe's rate, as the
    policy's drivers would (`PolicyMetadata.rise_guard` and ``probe_start``: its training
    settings unless it was given others for deployment, as an ensemble may be); they hold
    its falls as the run's training did (``config.fall_hold``), whatever its deployment says.
    """
    kwargs = env_kwargs(config, tasks)
    meta, episode = policy.metadata, kwargs["episode"]
    if episode.base is None:  # layout 1
        episode = episode.replace(probe=meta.probe_config(), probe_start=meta.probe_start)
    kwargs["episode"] = episode.replace(rise_guard=meta.rise_guard)
    env = make_env(**kwargs)
    actor = PolicyActor(policy)
    returns, accuracies = [], []
    for task in resolve_tasks(tasks, config.synthetic_family()):
        for seed in config.eval_seeds:
            result = run_episode(
                env, actor, seed, options={"task": task}, test=False, on_reset=actor.reset
            )
            returns.append(result.extra["episode_return"])
            accuracies.append(0.0 if result.diverged else result.val_accuracy)
    return {"mean_return": float(np.mean(returns)), "mean_val_accuracy": float(np.mean(accuracies))}
