"""Evaluate a frozen policy against every registered baseline (agents/evaluation/).

Runs task x start factor x seed x method on the same cells (same budget,
seed and starting hyperparameters for every method), appends each finished
run to <out-dir>/results.csv and runs.jsonl, and writes summary.md (tables,
paired t-test and Wilcoxon signed-rank test against each baseline, win/tie/
loss), learning-curve and learning-rate plots, and TensorBoard runs (tb/).
--policy defaults to the shipped policy. Ctrl-C or SIGTERM stops after the
current run (status 130); --out-dir DIR --resume continues, reading the
evaluation's options from DIR (options given again extend or replace them).
--ray-address runs the cells as Ray tasks on a cluster ('local': a Ray
started here); results still land in the same files as each cell finishes.

Examples:
    HPENV_DATA_DIR=~/data hpenv-evaluate   # ~/data holds mnist.npz, imdb/, ... (README: Data)
    hpenv-evaluate --policy logs/meta-.../best_policy.pt --tasks digits \\
        --seeds 0,1 --methods policy,static,cosine --start-lr-factors 1,0.01,30 \\
        --include-training-tasks
    hpenv-evaluate --out-dir logs/eval-x --resume
    hpenv-evaluate --ray-address HEAD:6379 --tasks mnist,wine   # cells on Ray

From a clone without installing, ``python scripts/evaluate.py`` is the same command.
"""

from __future__ import annotations

import dataclasses
import sys

from agents.cli import parse_config, run_job, use_threads
from agents.evaluation import EvalConfig, Report, default_out_dir, evaluate, resume_eval_config


def main(argv: list[str] | None = None) -> int:
    config = parse_config(EvalConfig, __doc__, argv, resume=resume_eval_config)
    use_threads(config.threads)
    if config.out_dir is None:  # fixed now, so that an interrupted run can name it
        config = dataclasses.replace(config, out_dir=str(default_out_dir()))
    command = [sys.argv[0], *(sys.argv[1:] if argv is None else argv)]

    # The runner refuses unknown methods and another run's settings in out_dir with a
    # ValueError too: for this job every ValueError is about its input.
    return run_job(lambda: _print(evaluate(config, argv=command)), input_errors=(ValueError,))


def _print(report: Report) -> None:
    print(f"report: {report.summary}")
    print(f"runs: {report.runs} in {report.out_dir / 'results.csv'} ({report.errors} failed)")
    for name, why in report.skipped.items():
        print(f"skipped {name}: {why}")
    print(f"TensorBoard: tensorboard --logdir {report.out_dir / 'tb'}")


if __name__ == "__main__":
    sys.exit(main())
