"""Let a frozen policy drive a new full training job of any registered task.

Trains the task with its real budget (or --epochs) on any device while the
policy sets the learning rate (and whatever else it was trained to tune) at
each decision; progress bar, TensorBoard logs, a checkpoint per decision,
--resume, and the final metrics as JSON (printed and written to result.json).

Examples:
    python scripts/run_policy.py --task mnist --data-dir ../shared/datasets
    python scripts/run_policy.py --task cifar10 --device cuda --policy logs/meta-.../best_policy.pt
    python scripts/run_policy.py --out-dir logs/job --resume

--policy defaults to the shipped policy (agents/policy/pretrained/). --resume takes the
job's options from its directory (options given again must match). Ctrl-C or
SIGTERM stops after the current interval with a checkpoint (exit status 130).
"""

from __future__ import annotations

import argparse
import sys

from agents.cli import add_arguments, from_args, given_options
from agents.deploy.drive import DriveConfig, drive_task, resume_drive_config
from agents.stopping import EXIT_INTERRUPTED, JobInterrupted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser, DriveConfig)
    args = parser.parse_args(argv)
    try:
        if args.resume:
            if args.out_dir is None:
                parser.error("--resume needs --out-dir: the job directory to continue")
            config = resume_drive_config(args.out_dir, given_options(parser, argv))
        else:
            if args.task is None:
                parser.error("--task is required (or --resume with --out-dir)")
            config = from_args(DriveConfig, args)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    try:
        drive_task(config)
    except JobInterrupted as stopped:
        print(stopped, file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
