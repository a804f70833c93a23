"""A frozen policy's raw mean action (before SB3's clip) on meta-training episodes.

SB3 clips a continuous action to [-1, 1] after drawing it; a deterministic policy
acts with its Gaussian's mean. This runs a policy's own episodes (the episode
settings of the meta-training run it came from, its ``config.json`` beside the
policy file; the ``synthetic-heldout`` tasks of snapshot selection by default,
no held-out task) and records the raw mean of the rate's action at every
decision, then prints per policy: the median, the share above 1 and below -1
(saturated: the clip decides, not the policy), and the range. A policy whose
mean action is positive everywhere ramps the rate up whatever it observes; with
the increment action (``--steer-mode increment``) a median of m moves the offset
by about m x ln 3 per decision.

Usage:
    python scripts/policy_actions.py --policies logs/cmp/meta/steer10/s2/best_policy.pt \\
        logs/cmp/meta/steer10/s1/policy.pt --episodes 4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from agents.cli import run_job
from agents.metatrain.config import (
    MetaTrainConfig,
    config_from_dict,
    episode_config,
    read_run_config,
)
from agents.metatrain.suite import make_env
from agents.policy import load_policy
from hpenv.errors import InputError


def run_config(policy_path: Path) -> MetaTrainConfig:
    """The meta-training config of the run ``policy_path`` belongs to (its ``config.json``)."""
    path = policy_path.parent / "config.json"
    if not path.exists():
        raise InputError(f"{path} not found: pass a policy inside its meta-training run folder")
    return config_from_dict(read_run_config(policy_path.parent))


def mean_actions(
    policy_path: Path, episodes: int, task: str = "synthetic-heldout", seed: int = 1000
) -> np.ndarray:
    """The raw mean rate action at every decision of ``episodes`` episodes of ``task``,
    seeded ``seed``, ``seed + 1``, ...; the policy acts with its clipped mean."""
    config = run_config(policy_path)
    env = make_env([task], episode_config(config), synthetic=config.synthetic_family())
    policy = load_policy(policy_path).single("policy_actions")
    if policy.recurrent or policy.metadata.frame_stack != 1:
        raise InputError("only feed-forward policies without a frame stack are supported")
    index = list(policy.metadata.tuned).index("lr")
    means: list[float] = []
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            done = False
            while not done:
                batch = torch.as_tensor(policy.normalise(obs[None]))
                with torch.no_grad():
                    mean = policy.policy.get_distribution(batch).distribution.mean.numpy()[0]
                means.append(float(mean[index]))
                obs, _, terminated, truncated, _ = env.step(np.clip(mean, -1.0, 1.0))
                done = terminated or truncated
    finally:
        env.close()
    return np.array(means)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", nargs="+", required=True, help="policy.pt files")
    parser.add_argument("--episodes", type=int, default=4, help="episodes per policy")
    parser.add_argument("--task", default="synthetic-heldout", help="the episodes' task")
    args = parser.parse_args(argv)

    def job() -> int:
        if args.episodes < 1:
            raise InputError(f"--episodes must be >= 1, got {args.episodes}")
        print("| policy | decisions | median | > 1 | < -1 | min | max |")
        print("|---|---|---|---|---|---|---|")
        for path in args.policies:
            m = mean_actions(Path(path), args.episodes, args.task)
            print(
                f"| {path} | {m.size} | {np.median(m):+.2f} | {100 * np.mean(m > 1):.0f}% | "
                f"{100 * np.mean(m < -1):.0f}% | {m.min():+.2f} | {m.max():+.2f} |"
            )
        return 0

    return run_job(job)


if __name__ == "__main__":
    sys.exit(main())
