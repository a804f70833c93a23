"""Adapt a frozen policy to a new task with a few cheap episodes of PPO (few-shot adaptation).

Continues PPO from the policy (default: the shipped hpenv-lr-v2.1) on --episodes
episodes of --task only, with the policy's own observation normalisation
(frozen by default; --normalisation update updates it slowly), each episode on
half of the task's CPU-fidelity training subset (--subset-factor, --epochs).
Episodes never see the task's validation and test splits: their reward is
computed on --holdout of the training split, held back. Writes
<out-dir>/policy.pt, whose metadata records its parent and the adaptation run
(task, episodes, agent steps, training samples and what they are in harness
runs, seconds, settings), adaptation.json, TensorBoard logs, and
<out-dir>/k<K>/ for each --snapshots count. The adapted policy lists the task
among its training tasks: evaluate it there with
hpenv-evaluate --include-training-tasks.

Examples:
    hpenv-adapt --task digits_cnn --episodes 30
    hpenv-adapt --task mnist_cnn --episodes 100 --snapshots 10,30 \\
        --out-dir logs/adapt-mnist_cnn   # also logs/adapt-mnist_cnn/k10, k30
    hpenv-adapt --policy logs/meta-.../best_policy.pt --task diabetes \\
        --episodes 100 --normalisation update --out-dir logs/adapt-diabetes
    hpenv-evaluate --policy logs/adapt-diabetes/policy.pt --tasks diabetes \\
        --methods policy,static --include-training-tasks

Ctrl-C or SIGTERM stops at the next agent step without saving the adapted policy
(snapshots already written stay; exit status 130).

From a clone without installing, ``python scripts/adapt_policy.py`` is the same command.
"""

from __future__ import annotations

import sys

from agents.cli import parse_config, run_job, use_threads
from agents.metatrain.adapt import AdaptConfig, adapt_policy
from agents.policy.hub import resolve_policy_file


def main(argv: list[str] | None = None) -> int:
    config = parse_config(AdaptConfig, __doc__, argv, check=lambda c: resolve_policy_file(c.policy))
    use_threads(config.threads)
    return run_job(lambda: adapt_policy(config))


if __name__ == "__main__":
    sys.exit(main())
