"""Evaluate a frozen policy against every registered baseline (agents/evaluation/).

Runs task x start factor x seed x method on the same cells (same budget,
seed and starting hyperparameters for every method), appends each finished
run to <out-dir>/results.csv and runs.jsonl, and writes summary.md (tables,
paired t-test and Wilcoxon signed-rank test against each baseline, win/tie/
loss), learning-curve and learning-rate plots, and TensorBoard runs (tb/).
Interrupted runs continue with --resume.

Examples:
    HPENV_DATA_DIR=../shared/datasets python scripts/evaluate.py \\
        --policy logs/meta-.../best_policy.pt
    python scripts/evaluate.py --policy policy.pt --tasks digits --seeds 0,1 \\
        --methods policy,static,cosine --start-lr-factors 1,0.01,30
    python scripts/evaluate.py --policy policy.pt --out-dir logs/eval-x --resume
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys

from agents.cli import add_arguments, from_args
from agents.evaluation import EvalConfig, default_out_dir, evaluate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser, EvalConfig)
    args = parser.parse_args(argv)
    try:
        config = from_args(EvalConfig, args)
    except ValueError as exc:
        parser.error(str(exc))
    if config.out_dir is None:  # fixed now, so that an interrupted run can name it
        config = dataclasses.replace(config, out_dir=str(default_out_dir()))
    command = [sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
    try:
        report = evaluate(config, argv=command)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        # training tasks refused, unknown methods, another run's settings in out_dir,
        # an unreadable policy, missing data
        parser.error(str(exc))
    except KeyboardInterrupt:
        again = [a for a in command[1:] if a != "--resume"]
        if not any(a == "--out-dir" or a.startswith("--out-dir=") for a in again):
            again += ["--out-dir", str(config.out_dir)]
        print(
            f"\ninterrupted; finished runs are in {config.out_dir}/results.csv. Continue with:\n"
            f"  python scripts/evaluate.py {shlex.join([*again, '--resume'])}",
            file=sys.stderr,
        )
        return 130
    print(f"report: {report.summary}")
    print(f"runs: {report.runs} in {report.out_dir / 'results.csv'} ({report.errors} failed)")
    for name, why in report.skipped.items():
        print(f"skipped {name}: {why}")
    print(f"TensorBoard: tensorboard --logdir {report.out_dir / 'tb'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
