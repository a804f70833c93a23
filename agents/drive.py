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

import torch
from tqdm import tqdm

from agents.controller import HyperController
from agents.policy import FrozenPolicy
from hpenv.io import atomic_torch_save, atomic_write_json
from hpenv.tasks import get_task
from hpenv.training import TrainingRun


@dataclass(frozen=True)
class DriveConfig:
    """One job: which task, how long, where.

    Attributes:
        task: Registered task name.
        model: Model variant (default: the task's).
        epochs: Budget in passes over the training split (default: the task's).
        lr: Starting learning rate (default: the task's).
        subset: Train on this fraction of the training split.
        seed: Seed of the run.
        device: ``auto``, ``cpu``, ``cuda``, ...
        data_dir: Local data directory (default ``HPENV_DATA_DIR``).
        out_dir: Where logs, checkpoint and result go.
        resume: Continue from ``out_dir``'s checkpoint.
    """

    task: str
    out_dir: str
    model: str | None = None
    epochs: float | None = None
    lr: float | None = None
    subset: float | None = None
    seed: int = 0
    device: str = "auto"
    data_dir: str | None = None
    resume: bool = False


def drive_task(config: DriveConfig, policy: FrozenPolicy, policy_path: str = "") -> dict[str, Any]:
    """Train ``config.task`` with ``policy`` setting the hyperparameters; returns the result."""
    out = Path(config.out_dir)
    checkpoint_path = out / "checkpoint.pt"
    if config.resume and not checkpoint_path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {checkpoint_path}")
    if not config.resume and checkpoint_path.exists():
        raise ValueError(f"{out} already holds a job; pass --resume or choose another --out-dir")
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

    checkpoint = torch.load(checkpoint_path, weights_only=False) if config.resume else None
    if checkpoint is not None:
        if checkpoint["config"] != {**asdict(config), "resume": False}:
            raise ValueError("--resume with different options than the checkpointed job")
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
    start = time.perf_counter() - (checkpoint["elapsed"] if checkpoint else 0.0)

    def save() -> None:
        atomic_torch_save(
            {
                "config": {**asdict(config), "resume": False},
                "run": run.state_dict(),
                "controller": controller.state_dict(),
                "elapsed": time.perf_counter() - start,
            },
            checkpoint_path,
        )

    print(
        f"{task.name}/{task.model} on {run.device}: {budget} samples ({epochs:g} epochs), "
        f"{controller.decisions} decisions by {policy_path or 'the policy'}; logs in {out}"
    )
    with tqdm(total=budget, initial=run.samples_done, unit="sample", unit_scale=True) as bar:
        while run.samples_done < budget and not run.diverged:
            # One decision interval per call: decisions fire inside, so checkpoints
            # always fall on interval boundaries.
            steps = min(controller.interval, total_steps - run.steps_done)
            stats = run.train(steps * batch)
            bar.update(stats.samples)
            bar.set_postfix(lr=f"{controller.hparams.lr:.2e}", loss=f"{stats.loss_mean:.3f}")
            save()
    final = run.evaluate()
    result: dict[str, Any] = {
        "task": f"{task.name}/{task.model}",
        "policy": policy_path,
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
