"""Few-shot adaptation: continue PPO from a frozen policy on cheap episodes of one new task.

`adapt_policy` is the library behind ``scripts/adapt_policy.py``. It rebuilds the
PPO model of the policy's own meta-training configuration (`make_model`, the
same network, action mode, frame stack and environment settings: decisions,
reward, starting learning-rate range, and the return: discount and budget's
end), loads the frozen weights (policy and value networks), and trains on
``episodes`` episodes of ``task`` only, in `HPTuneEnv` workers
(`build_vec_env`), with the policy's **own observation normalisation**: frozen
by default (``normalisation="frozen"``: the statistics are applied, never
updated), or slowly updated (``"update"``: the parent's statistics count as
``norm_prior_count`` observations, so new ones move them little).

Episodes are cheap by default: the task's CPU fidelity (`hpenv.plan.FIDELITY`)
on half of its training subset (``subset_factor``) for the same number of
epochs. They never touch the task's validation and test splits (what the
harness scores on): ``holdout`` of the training rows is held back as their
validation split, which their reward is computed on (`adaptation_task`), and
each training run's seed is drawn from 2^31 values by the environment's
seeded stream, so the harness's cell seeds (0, 1, ...) are practically never
met. The run directory holds:

- ``policy.pt``: the adapted artifact. Its metadata adds the task to ``tasks``
  (so the evaluation harness refuses it there without ``--include-training-tasks``),
  adds the steps to ``agent_steps``, keeps the parent's deployment settings (``deploy``:
  the rise guard, restart and fall hold of ``hpenv-lr-v2.1``, say), and records ``parent``
  (where the policy came from, a summary of its metadata, and its own lineage) and
  ``adaptation`` (the
  task, episodes, agent steps, training samples, the samples of one harness run
  of the task and their ratio, seconds and every setting);
- ``adaptation.json``: the same record, plus the episode returns;
- ``k<K>/policy.pt`` and ``k<K>/adaptation.json`` for each of ``snapshots``:
  the policy once K episodes had trained, recorded the same way;
- TensorBoard events and ``progress.csv`` (SB3's metrics and ``hpenv/<task>/...``).

The compute is counted exactly (`EpisodeLedger`): every training sample of every
adaptation episode, and the wall-clock seconds of the whole run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.vec_env import VecNormalize

from agents.evaluation.methods.core import RunSpec
from agents.metatrain.adapt_config import (
    AdaptConfig,
    adaptation_fidelity,
    adaptation_task,
    session_config,
)
from agents.metatrain.callbacks import (
    EpisodeLedger,
    MetaTrainProgressBar,
    StopWhenRequested,
    TaskMetricsCallback,
)
from agents.metatrain.config import MetaTrainConfig
from agents.metatrain.model import make_model
from agents.metatrain.run_log import make_logger
from agents.metatrain.suite import available
from agents.metatrain.vec_env import build_vec_env, terminate_workers
from agents.policy.artifact import FrozenPolicy, PolicyMetadata
from agents.policy.hub import load_pretrained, resolve_policy_file
from agents.stopping import GracefulStop, JobInterrupted
from hpenv.errors import InputError
from hpenv.io import atomic_write_json
from hpenv.plan import Fidelity

__all__ = [
    "AdaptConfig",
    "Snapshots",
    "adapt_policy",
    "adaptation_fidelity",
    "adaptation_task",
    "harness_run_samples",
    "parent_summary",
]


def parent_summary(source: str, file: str, meta: PolicyMetadata) -> dict[str, Any]:
    """What an adapted policy records about the policy it came from (lineage included)."""
    return {
        "source": source,
        "file": file,
        "tuned": list(meta.tuned),
        "tasks": list(meta.tasks),
        "agent_steps": meta.agent_steps,
        "created": meta.created,
        "hpenv": meta.versions.get("hpenv", ""),
        "notes": meta.notes,
        "parent": dict(meta.parent),
    }


def adapt_policy(config: AdaptConfig, policy: FrozenPolicy | None = None) -> Path:
    """Adapt a frozen policy to ``config.task``; returns the adapted artifact's path.

    SIGINT and SIGTERM stop at the next agent step: the final policy is not
    saved (an adaptation run is short; run it again; snapshots already written
    stay) and `JobInterrupted` says so.

    Args:
        config: The run.
        policy: A loaded parent policy; default: load ``config.policy``.

    Raises:
        PolicyNotFoundError: ``config.policy`` names no policy (the message says what was tried).
        PolicyLoadError: The policy file is unreadable (`IncompatiblePolicyError`:
            written for another hpenv).
        InputError: The run directory already holds an adapted policy, the task
            has no data, or the parent's network cannot be rebuilt. Nothing is written.
        JobInterrupted: Stopped by a signal.
    """
    out = config.resolved_out_dir()
    if (out / "policy.pt").exists():
        raise InputError(f"{out} already holds an adapted policy; choose another --out-dir")
    file = str(resolve_policy_file(config.policy)) if policy is None else "(loaded in memory)"
    parent = (policy if policy is not None else load_pretrained(file)).single("adaptation")
    _, missing = available([config.task], config.data_dir)
    if missing:
        raise InputError(f"cannot adapt to {config.task}: {missing[config.task]}")
    session = session_config(config, parent.metadata, parent.clip_obs)
    fidelity = adaptation_fidelity(config)
    run_samples = harness_run_samples(config.task, config.data_dir)
    out.mkdir(parents=True, exist_ok=True)
    with GracefulStop() as stop:
        envs = build_vec_env(session, [adaptation_task(config)], {config.task: fidelity})
        venv = _normalised(config, parent, envs)
        try:
            model = make_model(session, venv)
            model.policy.load_state_dict(parent.policy.state_dict())
            model.set_logger(make_logger(out))
            venv.seed(config.seed)
            ledger = EpisodeLedger()
            start = time.perf_counter()

            def save(episodes: int, directory: Path) -> tuple[Path, dict[str, Any]]:
                record = _adaptation_record(
                    config, episodes, int(model.num_timesteps), session, fidelity, ledger,
                    time.perf_counter() - start, run_samples,
                )  # fmt: skip
                adapted = _adapted(model, venv, parent, config, record, file)
                path = adapted.save(_mkdir(directory) / "policy.pt")
                returns = {"episode_returns": ledger.returns}
                atomic_write_json({**record, **returns}, directory / "adaptation.json")
                return path, record

            snapshots = Snapshots(ledger, config.snapshots, lambda k: save(k, out / f"k{k}"))
            callbacks = CallbackList(
                [
                    TaskMetricsCallback(config_text=_settings_markdown(config, fidelity)),
                    ledger,
                    snapshots,
                    StopWhenRequested(stop),
                    MetaTrainProgressBar(session.total_steps),
                ]
            )
            model.learn(session.total_steps, callback=callbacks, log_interval=1)
        except KeyboardInterrupt:  # a second signal: workers may be mid-step
            terminate_workers(venv)
            raise JobInterrupted(f"interrupted; no adapted policy saved in {out}") from None
        finally:
            venv.close()
    if stop.requested:
        raise JobInterrupted(
            f"interrupted; no adapted policy saved in {out} (run the adaptation again)"
        )
    snapshots.save_pending()  # counts reached only in the last rollout: the final policy
    path, record = save(config.episodes, out)
    print(
        f"adapted policy: {path} ({ledger.episodes} episodes of {config.task}, "
        f"{record['agent_steps']} agent steps, {record['training_samples']} training samples "
        f"= {record['harness_runs']:.1f} harness runs, {record['seconds']:.0f} s)"
    )
    return path


class Snapshots(BaseCallback):
    """Saves the policy once ``counts`` episodes have trained (at the next rollout's start,
    so after the PPO update on them), as a separate run of that many episodes would end."""

    def __init__(
        self, ledger: EpisodeLedger, counts: Sequence[int], save: Callable[[int], object]
    ) -> None:
        super().__init__()
        self.ledger = ledger
        self.pending = sorted(counts)
        self.save = save

    def _on_rollout_start(self) -> None:
        while self.pending and self.ledger.episodes >= self.pending[0]:
            self.save(self.pending.pop(0))

    def _on_step(self) -> bool:
        return True

    def save_pending(self) -> None:
        """Save the counts still pending (reached in the last rollout) from the final model."""
        while self.pending:
            self.save(self.pending.pop(0))


def harness_run_samples(task: str, data_dir: str | None) -> int:
    """Training samples of one evaluation-harness run of ``task`` (its default fidelity):
    the unit the adaptation's compute is stated in next to a grid's."""
    spec = RunSpec(task, 0, data_dir=data_dir)
    return spec.budget(spec.load_data())


def _adapted(
    model: Any,
    venv: VecNormalize,
    parent: FrozenPolicy,
    config: AdaptConfig,
    record: dict[str, Any],
    file: str,
) -> FrozenPolicy:
    """The adapted artifact: the model now, with the parent's settings (its deployment
    settings too) and the run's lineage."""
    adapted = FrozenPolicy.from_model(
        model,
        venv.obs_rms,
        venv.clip_obs,
        venv.epsilon,
        tuned=parent.metadata.tuned,
        action_mode=parent.metadata.action_mode,
        frame_stack=parent.metadata.frame_stack,
        env_config=parent.metadata.env_config,
        notes=f"adapted to {config.task} from {config.policy} ({record['episodes']} episodes)",
    )
    adapted.metadata = dataclasses.replace(
        adapted.metadata,
        tasks=tuple(dict.fromkeys((*parent.metadata.tasks, config.task))),
        agent_steps=parent.metadata.agent_steps + int(model.num_timesteps),
        parent=parent_summary(config.policy, file, parent.metadata),
        adaptation=record,
        deploy=dict(parent.metadata.deploy),
    )
    return adapted


def _mkdir(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _normalised(config: AdaptConfig, parent: FrozenPolicy, venv: Any) -> VecNormalize:
    """``venv`` normalised with the parent's statistics (frozen, or updated from a prior count)."""
    normalised = VecNormalize(
        venv,
        training=config.normalisation == "update",
        norm_obs=True,
        norm_reward=False,
        clip_obs=parent.clip_obs,
        epsilon=parent.epsilon,
    )
    rms: Any = normalised.obs_rms
    rms.mean = parent.obs_mean.copy()
    rms.var = parent.obs_var.copy()
    rms.count = config.norm_prior_count
    return normalised


def _adaptation_record(
    config: AdaptConfig,
    episodes_requested: int,
    agent_steps: int,
    session: MetaTrainConfig,
    fidelity: Fidelity,
    ledger: EpisodeLedger,
    seconds: float,
    run_samples: int,
) -> dict[str, Any]:
    returns = ledger.returns
    tenth = max(1, len(returns) // 10)
    return {
        "task": config.task,
        "episodes_requested": episodes_requested,
        "episodes": ledger.episodes,
        "agent_steps": agent_steps,
        "training_samples": ledger.samples,
        "harness_run_samples": run_samples,
        "harness_runs": round(ledger.samples / run_samples, 3) if run_samples else None,
        "seconds": round(seconds, 3),
        "fidelity": {k: v for k, v in dataclasses.asdict(fidelity).items() if v is not None},
        "holdout": config.holdout,
        "normalisation": config.normalisation,
        "norm_prior_count": config.norm_prior_count if config.normalisation == "update" else None,
        "ppo": {
            "n_envs": session.n_envs,
            "n_steps": session.n_steps,
            "batch_size": session.batch_size,
            "n_epochs": session.n_epochs,
            "learning_rate": session.learning_rate,
            "clip_range": session.clip_range,
            "ent_coef": session.ent_coef,
        },
        "seed": config.seed,
        "mean_return_first_tenth": _mean(returns[:tenth]),
        "mean_return_last_tenth": _mean(returns[-tenth:]),
    }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _settings_markdown(config: AdaptConfig, fidelity: Fidelity) -> str:
    lines = ["| option | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in dataclasses.asdict(config).items()]
    lines.append(f"| episode fidelity | {fidelity} |")
    return "\n".join(lines)
