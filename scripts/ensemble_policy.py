"""Combine policies of one recipe, meta-trained from different seeds, into one artifact.

The ensemble acts by the mean of its members' deterministic actions (each member
normalises the observation with its own statistics; `agents.policy.FrozenPolicy.ensemble`):
the spread between meta-training seeds, the largest noise in a recipe's figure, is
averaged inside one policy instead of being drawn once. Give the members' artifact
files (a run's ``best_policy.pt`` or ``policy.pt``); the result loads wherever a
policy file does (``--policy``, `agents.policy.load_pretrained`, `HyperController`).
Export and adaptation take single policies only.

Usage:
    python scripts/ensemble_policy.py --out logs/ensemble.pt \\
        logs/cmp/meta/recipe/s0/best_policy.pt logs/cmp/meta/recipe/s1/best_policy.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agents.cli import run_job
from agents.policy import FrozenPolicy, load_policy
from hpenv.errors import InputError


def build_ensemble(paths: list[str], out: str) -> FrozenPolicy:
    """Load ``paths``, combine them (`FrozenPolicy.ensemble`) and save the result to ``out``."""
    target = Path(out)
    if target.suffix != ".pt":
        raise InputError(f"--out must be a .pt file, got {out}")
    ensemble = FrozenPolicy.ensemble([load_policy(p) for p in paths], sources=list(paths))
    ensemble.save(target)
    return ensemble


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("policies", nargs="+", help="the members' policy files")
    parser.add_argument("--out", required=True, help="the ensemble's file (.pt)")
    args = parser.parse_args(argv)

    def job() -> None:
        ensemble = build_ensemble(args.policies, args.out)
        print(
            f"wrote {args.out}: an ensemble of {ensemble.size} policies "
            f"(layout v{ensemble.metadata.obs_version}, fingerprint {ensemble.fingerprint()[:12]})"
        )

    return run_job(job)


if __name__ == "__main__":
    sys.exit(main())
