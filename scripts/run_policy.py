"""Let a frozen policy drive a new full training job of any registered task.

Trains the task with its real budget (or --epochs) on any device while the
policy sets the learning rate (and whatever else it was trained to tune) at
each decision; progress bar, TensorBoard logs, a checkpoint per decision,
--resume, and the final metrics as JSON (printed and written to result.json).

Examples:
    python scripts/run_policy.py --task mnist --data-dir ../shared/datasets
    python scripts/run_policy.py --task cifar10 --device cuda --policy logs/meta-.../best_policy.pt
    python scripts/run_policy.py --task mnist --out-dir logs/job --resume
"""

from __future__ import annotations

import argparse
import sys
import time

from agents.drive import DriveConfig, drive_task
from agents.policy import load_policy
from agents.pretrained import DEFAULT_POLICY
from hpenv.tasks import list_tasks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", required=True, choices=list_tasks())
    parser.add_argument("--model", default=None, help="model variant (default: the task's)")
    parser.add_argument("--policy", default=str(DEFAULT_POLICY), help="policy artifact")
    parser.add_argument("--epochs", type=float, default=None, help="default: the task's budget")
    parser.add_argument("--lr", type=float, default=None, help="starting learning rate")
    parser.add_argument("--subset", type=float, default=None, help="fraction of the train split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-dir", default=None, help="default: HPENV_DATA_DIR")
    parser.add_argument("--out-dir", default=None, help="default: logs/run-<task>-<time>")
    parser.add_argument("--resume", action="store_true", help="continue the job in --out-dir")
    args = parser.parse_args(argv)
    if args.resume and args.out_dir is None:
        parser.error("--resume needs --out-dir")
    out_dir = args.out_dir or f"logs/run-{args.task}-s{args.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    config = DriveConfig(
        task=args.task,
        out_dir=out_dir,
        model=args.model,
        epochs=args.epochs,
        lr=args.lr,
        subset=args.subset,
        seed=args.seed,
        device=args.device,
        data_dir=args.data_dir,
        resume=args.resume,
    )
    drive_task(config, load_policy(args.policy), policy_path=args.policy)
    return 0


if __name__ == "__main__":
    sys.exit(main())
