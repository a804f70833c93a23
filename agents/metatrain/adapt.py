"""Few-shot adaptation: continue PPO from a frozen policy on cheap episodes of one new task.

`adapt_policy` is the library behind ``scripts/adapt_policy.py``. It rebuilds the
PPO model of the policy's own meta-training configuration (`make_model`, the
same network, action mode, frame stack and environment settings: decisions,
reward, starting learning-rate range), loads the frozen weights (policy and
value networks), and trains on ``episodes`` episodes of ``task`` only, in
`HPTuneEnv` workers (`build_vec_env`), with the policy's **own observation
normalisation**: frozen by default (``normalisation="frozen"``: the statistics
are applied, never updated), or slowly updated (``"update"``: the parent's
statistics count as ``norm_prior_count`` observations, so new ones move them
little).

Episodes are cheap by default: the task's CPU fidelity (`hpenv.plan.FIDELITY`)
on half of its training subset (``subset_factor``) for the same number of
epochs, so each costs half a harness run. The run directory holds:

- ``policy.pt``: the adapted artifact. Its metadata adds the task to ``tasks``
  (so the evaluation harness refuses it there without ``--include-training-tasks``),
  adds the steps to ``agent_steps``, and records ``parent`` (where the policy came
  from, a summary of its metadata, and its own lineage) and ``adaptation`` (the
  task, episodes, agent steps, training samples, seconds and every setting);
- ``adaptation.json``: the same record, plus the episode returns;
- TensorBoard events and ``progress.csv`` (SB3's metrics and ``hpenv/<task>/...``).

The compute is counted exactly (`EpisodeLedger`): every training sample of every
adaptation episode, and the wall-clock seconds of the whole run.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.vec_env import VecNormalize

from agents.metatrain.adapt_config import AdaptConfig, adaptation_fidelity, session_config
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
from hpenv.io import atomic_write_json
from hpenv.plan import Fidelity

__all__ = ["AdaptConfig", "adapt_policy", "adaptation_fidelity", "parent_summary"]


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

    SIGINT and SIGTERM stop at the next agent step: nothing is saved (an
    adaptation run is short; run it again) and `JobInterrupted` says so.

    Args:
        config: The run.
        policy: A loaded parent policy; default: load ``config.policy``.

    Raises:
        ValueError: The run directory already holds an adapted policy, the task
            has no data, or the parent's network cannot be rebuilt.
        JobInterrupted: Stopped by a signal.
    """
    out = config.resolved_out_dir()
    if (out / "policy.pt").exists():
        raise ValueError(f"{out} already holds an adapted policy; choose another --out-dir")
    file = str(resolve_policy_file(config.policy)) if policy is None else "(loaded in memory)"
    parent = policy if policy is not None else load_pretrained(file)
    _, missing = available([config.task], config.data_dir)
    if missing:
        raise ValueError(f"cannot adapt to {config.task}: {missing[config.task]}")
    session = session_config(config, parent.metadata, parent.clip_obs)
    fidelity = adaptation_fidelity(config)
    out.mkdir(parents=True, exist_ok=True)
    with GracefulStop() as stop:
        venv = _normalised(
            config, parent, build_vec_env(session, [config.task], {config.task: fidelity})
        )
        try:
            model = make_model(session, venv)
            model.policy.load_state_dict(parent.policy.state_dict())
            model.set_logger(make_logger(out))
            venv.seed(config.seed)
            ledger = EpisodeLedger()
            callbacks = CallbackList(
                [
                    TaskMetricsCallback(config_text=_settings_markdown(config, fidelity)),
                    ledger,
                    StopWhenRequested(stop),
                    MetaTrainProgressBar(session.total_steps),
                ]
            )
            start = time.perf_counter()
            model.learn(session.total_steps, callback=callbacks, log_interval=1)
            seconds = time.perf_counter() - start
        except KeyboardInterrupt:  # a second signal: workers may be mid-step
            terminate_workers(venv)
            raise JobInterrupted(f"interrupted; nothing saved in {out}") from None
        finally:
            venv.close()
    if stop.requested:
        raise JobInterrupted(f"interrupted; nothing saved in {out} (run the adaptation again)")
    record = _adaptation_record(config, session, fidelity, ledger, seconds)
    adapted = FrozenPolicy.from_model(
        model,
        venv.obs_rms,
        venv.clip_obs,
        venv.epsilon,
        tuned=parent.metadata.tuned,
        action_mode=parent.metadata.action_mode,
        frame_stack=parent.metadata.frame_stack,
        env_config=parent.metadata.env_config,
        notes=f"adapted to {config.task} from {config.policy} ({ledger.episodes} episodes)",
    )
    tasks = tuple(dict.fromkeys((*parent.metadata.tasks, config.task)))
    adapted.metadata = dataclasses.replace(
        adapted.metadata,
        tasks=tasks,
        agent_steps=parent.metadata.agent_steps + int(model.num_timesteps),
        parent=parent_summary(config.policy, file, parent.metadata),
        adaptation=record,
    )
    path = adapted.save(out / "policy.pt")
    atomic_write_json({**record, "episode_returns": ledger.returns}, out / "adaptation.json")
    print(
        f"adapted policy: {path} ({ledger.episodes} episodes of {config.task}, "
        f"{record['agent_steps']} agent steps, {record['training_samples']} training samples, "
        f"{seconds:.0f} s)"
    )
    return path


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
    session: MetaTrainConfig,
    fidelity: Fidelity,
    ledger: EpisodeLedger,
    seconds: float,
) -> dict[str, Any]:
    returns = ledger.returns
    tenth = max(1, len(returns) // 10)
    return {
        "task": config.task,
        "episodes_requested": config.episodes,
        "episodes": ledger.episodes,
        "agent_steps": session.total_steps,
        "training_samples": ledger.samples,
        "seconds": round(seconds, 3),
        "fidelity": {k: v for k, v in dataclasses.asdict(fidelity).items() if v is not None},
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
