"""One training run at the task's static default hyperparameters (no policy), for a baseline.

Trains one task with its default hyperparameters through `TrainingRun`, with a
progress bar, TensorBoard logs and a final JSON summary: the run a policy-driven
job (hpenv-run, scripts/run_policy.py) is compared against. Offline by default
(scikit-learn's digits); any registered task works given its data.

Usage:
    python scripts/train_demo.py                 # digits, offline
    python scripts/train_demo.py --task mnist --data-dir ~/data   # README: Data
    tensorboard --logdir logs
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from agents.cli import option, parse_config
from hpenv.io import atomic_write_json
from hpenv.tasks import get_task, list_tasks
from hpenv.training import TrainingRun


@dataclass(frozen=True)
class DemoConfig:
    """One static run (every field is a flag)."""

    task: str = option("registered task", default="digits", choices=list_tasks())
    model: str | None = option("model variant (default: the task's)", default=None)
    epochs: float | None = option("budget in epochs (default: the task's)", default=None)
    intervals: int = option("evaluations over the budget", default=20)
    seed: int = option("seed of the run", default=0)
    device: str = option("device: auto, cpu, cuda, ...", default="auto")
    data_dir: str | None = option("local data directory (default HPENV_DATA_DIR)", default=None)
    logdir: str = option("TensorBoard root directory", default="logs")
    threads: int | None = option("torch CPU threads (default: torch's)", default=None)


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_config(DemoConfig, __doc__, argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    task = get_task(args.task, model=args.model)
    run = TrainingRun(task, seed=args.seed, device=args.device, data_dir=args.data_dir)
    epochs = args.epochs if args.epochs is not None else task.budget_epochs
    budget = round(epochs * run.data.train_x.shape[0])
    interval = max(1, budget // args.intervals)
    out = (
        Path(args.logdir)
        / f"demo-{task.name}-{task.model}-s{args.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    writer = SummaryWriter(str(out))
    print(f"training {task.name}/{task.model} on {run.device} for {budget} samples; logs in {out}")
    with tqdm(total=budget, unit="sample", unit_scale=True) as bar:
        while run.samples_done < budget:
            stats = run.train(min(interval, budget - run.samples_done))
            val = run.evaluate()
            step = run.samples_done
            writer.add_scalar("train/loss", stats.loss_mean, step)
            writer.add_scalar("train/grad_norm", stats.grad_norm, step)
            writer.add_scalar("val/loss", val.loss, step)
            writer.add_scalar("val/accuracy", val.accuracy, step)
            bar.update(stats.samples)
            bar.set_postfix(loss=f"{stats.loss_mean:.3f}", val_acc=f"{val.accuracy:.3f}")
            if stats.diverged:
                print("run diverged; stopping")
                break
    result = {"val_loss": val.loss, "val_accuracy": val.accuracy, "samples": run.samples_done}
    if run.data.test_x is not None:
        result["test_accuracy"] = run.evaluate("test").accuracy
    writer.close()
    atomic_write_json(result, out / "result.json")
    print(result)
    print(f"TensorBoard: tensorboard --logdir {args.logdir}")
    return result


if __name__ == "__main__":
    main()
