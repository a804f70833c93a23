"""Drive a full training job of a registered task with a frozen policy.

`drive_task` is the library behind ``scripts/run_policy.py``: a `TrainingRun`
of the task's real budget (or one given), the policy's `HyperController`
attached to its optimizer, a progress bar, TensorBoard logs, a checkpoint at
every decision (atomic) that ``resume`` continues from, and the final metrics
as JSON.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agents.cli import option
from agents.deploy.controller import HyperController
from agents.policy.artifact import FrozenPolicy, load_policy
from agents.policy.pretrained import DEFAULT_POLICY
from agents.stopping import GracefulStop, JobInterrupted
from hpenv.io import atomic_torch_save, atomic_write_json, safe_torch_load
from hpenv.tasks import get_task
from hpenv.training import TrainingRun


@dataclass(frozen=True)
class DriveConfig:
    """One job: which task, which policy, how long, where (every field is a CLI flag)."""

    task: str = option("registered task to train (see hpenv.tasks.list_tasks)")
    out_dir: str | None = option(
        "where logs, checkpoint and result go (default logs/run-<task>-s<seed>-<time>)",
        default=None,
    )
    policy: str = option("policy artifact", default=str(DEFAULT_POLICY))
    model: str | None = option("model variant (default: the task's)", default=None)
    epochs: float | None = option("budget in passes over the train split", default=None)
    lr: float | None = option("starting learning rate (default: the task's)", default=None)
    subset: float | None = option("train on this fraction of the train split", default=None)
    seed: int = option("seed of the run", default=0)
    device: str = option("training device: auto, cpu, cuda, ...", default="auto")
    data_dir: str | None = option("local data directory (default HPENV_DATA_DIR)", default=None)
    resume: bool = option("continue the job in --out-dir (its options are reused)", default=False)

    def __post_init__(self) -> None:
        get_task(self.task)  # an unknown name lists the known ones
        if self.epochs is not None and not self.epochs > 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if self.resume and self.out_dir is None:
            raise ValueError("resume needs out_dir: the job directory to continue")

    def resolved_out_dir(self) -> Path:
        if self.out_dir is not None:
            return Path(self.out_dir)
        return Path("logs") / f"run-{self.task}-s{self.seed}-{time.strftime('%Y%m%d-%H%M%S')}"

    def saved(self) -> dict[str, Any]:
        """The job's options as written to ``config.json`` (``resume`` and ``out_dir`` aside)."""
        return {k: v for k, v in asdict(self).items() if k not in ("resume", "out_dir")}


def resume_drive_config(out_dir: str | Path, overrides: dict[str, Any]) -> DriveConfig:
    """The configuration of the job in ``out_dir``; ``overrides`` (given flags) must match it.

    Raises:
        FileNotFoundError: ``out_dir`` holds no job.
        ValueError: A given option differs from the job's (naming it and both values).
    """
    path = Path(out_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no job to continue in {out_dir} ({path} not found)")
    saved = json.loads(path.read_text())
    changed = [
        f"--{k.replace('_', '-')}: the job has {saved.get(k)!r}, this command gives {v!r}"
        for k, v in overrides.items()
        if k not in ("resume", "out_dir") and v != saved.get(k)
    ]
    if changed:
        raise ValueError("cannot resume with different options: " + "; ".join(changed))
    return DriveConfig(**saved, out_dir=str(out_dir), resume=True)


def drive_task(config: DriveConfig, policy: FrozenPolicy | None = None) -> dict[str, Any]:
    """Train ``config.task`` with a policy setting the hyperparameters; returns the result.

    SIGINT and SIGTERM stop the job after the current interval, whose
    checkpoint is written: `JobInterrupted` is raised with the line saying how
    to continue.

    Args:
        config: The job.
        policy: A loaded policy; default: load ``config.policy``.

    Raises:
        FileNotFoundError: ``resume`` without a checkpoint.
        ValueError: A new job in a directory that holds one, or resuming with other options.
        JobInterrupted: Stopped by a signal (see above).
    """
    out = config.resolved_out_dir()
    checkpoint_path = out / "checkpoint.pt"
    if config.resume and not checkpoint_path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {checkpoint_path}")
    if not config.resume and checkpoint_path.exists():
        raise ValueError(f"{out} already holds a job; pass --resume or choose another --out-dir")
    checkpoint = safe_torch_load(checkpoint_path, "job checkpoint") if config.resume else None
    if checkpoint is not None and checkpoint["config"] != config.saved():
        raise ValueError("--resume with different options than the checkpointed job")
    policy = policy if policy is not None else load_policy(config.policy)
    task = get_task(config.task, model=config.model)
    hparams = task.defaults if config.lr is None else task.defaults.replace(lr=config.lr)
    run = TrainingRun(
        task,
        hparams=hparams,
        seed=config.seed,
        device=config.device,
        data_dir=config.data_dir,
        subset=config.subset,
    )
    epochs = task.budget_epochs if config.epochs is None else config.epochs
    batch = run.hparams.batch_size
    total_steps = max(2, math.ceil(epochs * run.data.train_x.shape[0] / batch))
    budget = total_steps * batch

    def evaluate() -> tuple[float, float]:
        result = run.evaluate()
        return result.loss, result.accuracy

    if checkpoint is not None:
        run.load_state_dict(checkpoint["run"])
    controller = HyperController(
        policy,
        run.optimizer,
        total_steps=total_steps,
        evaluate=None if checkpoint else evaluate,
        batch_size=batch,
        dropout=run.hparams.dropout,
        log_dir=out,
    )
    if checkpoint is not None:
        controller.load_state_dict(checkpoint["controller"])
        controller.evaluate = evaluate
    run.loss_hooks.append(controller.report_loss)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(config.saved(), out / "config.json")
    start = time.perf_counter() - (checkpoint["elapsed"] if checkpoint else 0.0)

    def save() -> None:
        atomic_torch_save(
            {
                "config": config.saved(),
                "run": run.state_dict(),
                "controller": controller.state_dict(),
                "elapsed": time.perf_counter() - start,
            },
            checkpoint_path,
        )

    def interrupted() -> JobInterrupted:
        done = safe_torch_load(checkpoint_path, "job checkpoint")["run"]["samples_done"]
        return JobInterrupted(
            f"interrupted; checkpoint at sample {done} of {budget}: {checkpoint_path}; continue "
            f"with: python scripts/run_policy.py --out-dir {out} --resume"
        )

    print(
        f"{task.name}/{task.model} on {run.device}: {budget} samples ({epochs:g} epochs), "
        f"{controller.decisions} decisions by {config.policy}; logs in {out}"
    )
    if checkpoint is None:
        save()
    with (
        GracefulStop("stopping after the current interval (signal again to abort)") as stop,
        tqdm(total=budget, initial=run.samples_done, unit="sample", unit_scale=True) as bar,
    ):
        try:
            while run.samples_done < budget and not run.diverged:
                # One decision interval per call: decisions fire inside, so checkpoints
                # always fall on interval boundaries.
                steps = min(controller.interval, total_steps - run.steps_done)
                stats = run.train(steps * batch)
                bar.update(stats.samples)
                bar.set_postfix(lr=f"{controller.hparams.lr:.2e}", loss=f"{stats.loss_mean:.3f}")
                save()
                if stop.requested:
                    raise interrupted()
        except JobInterrupted:
            raise
        except KeyboardInterrupt:  # a second signal: the last interval's checkpoint stays
            raise interrupted() from None
    final = run.evaluate()
    result: dict[str, Any] = {
        "task": f"{task.name}/{task.model}",
        "policy": config.policy,
        "diverged": run.diverged,
        "val_loss": final.loss,
        "val_accuracy": final.accuracy,
        "test_accuracy": run.evaluate("test").accuracy if run.data.test_x is not None else None,
        "samples": run.samples_done,
        "wall_time": time.perf_counter() - start,
        "trajectory": controller.history,
    }
    controller.detach()
    atomic_write_json(result, out / "result.json")
    summary = {k: v for k, v in result.items() if k != "trajectory"}
    print(json.dumps(summary, indent=2))
    return result
