"""Let a frozen policy drive a new full training job of any registered task.

Trains the task with its real budget (or --epochs) on any device while the
policy sets the learning rate (and whatever else it was trained to tune, batch
size and dropout included) at each decision; the budget is counted in training
samples, so batch-size decisions change the optimizer steps, not the samples.
Progress bar, TensorBoard logs, a checkpoint per decision, --resume, and the
final metrics (wall time, optimizer steps) as JSON (printed and written to
result.json).

Examples:
    hpenv-run --task mnist --data-dir ~/data   # a folder holding mnist.npz or MNIST/raw/
    hpenv-run --task cifar10 --device cuda --policy logs/meta-.../best_policy.pt
    hpenv-run --out-dir logs/job --resume
    hpenv-run --task digits --policy P.pt --rise-guard on --probe-start on   # deployed otherwise

--policy defaults to the shipped policy (agents/policy/pretrained/). --resume takes the
job's options from its directory (options given again must match). Ctrl-C or
SIGTERM stops after the current interval with a checkpoint (exit status 130).

From a clone without installing, ``python scripts/run_policy.py`` is the same command.
"""

from __future__ import annotations

import sys

from agents.cli import parse_config, run_job, use_threads
from agents.deploy.drive import DriveConfig, drive_task, resume_drive_config


def main(argv: list[str] | None = None) -> int:
    config = parse_config(DriveConfig, __doc__, argv, resume=resume_drive_config)
    use_threads(config.threads)
    return run_job(lambda: drive_task(config))


if __name__ == "__main__":
    sys.exit(main())
