"""Combine policies of one recipe, meta-trained from different seeds, into one artifact.

The ensemble acts by the mean of its members' deterministic actions, or with
``--reduce median`` by their median (each member normalises the observation with its own
statistics; `agents.policy.FrozenPolicy.ensemble`):
the spread between meta-training seeds, the largest noise in a recipe's figure, is
averaged inside one policy instead of being drawn once. Give the members' artifact
files (a run's ``best_policy.pt`` or ``policy.pt``); the result loads wherever a
policy file does (``--policy``, `agents.policy.load_pretrained`, `HyperController`).
Export and adaptation take single policies only.

``--rise-guard on`` deploys the ensemble with the rise guard (`hpenv.hyperparams.RiseGuard`)
whatever its members were trained with; the file records it.

Usage:
    python scripts/ensemble_policy.py --out logs/ensemble.pt \\
        --policies logs/cmp/meta/recipe/s0/best_policy.pt,logs/cmp/meta/recipe/s1/best_policy.pt
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from agents.cli import option, parse_config, run_job
from agents.policy import FrozenPolicy, load_policy
from agents.policy.artifact import (
    RISE_GUARD_CHOICES,
    EnsembleReduce,
    fall_hold_option,
    probe_start_choice,
    probe_start_option,
    probe_start_text,
    restart_option,
)


@dataclass(frozen=True)
class EnsembleConfig:
    """Which policies to combine, and where to write the ensemble (every field is a flag)."""

    policies: tuple[str, ...] = option("the members' policy files, comma-separated")
    out: str = option("the ensemble's file (.pt)")
    reduce: EnsembleReduce = option(
        "how the members' actions combine: 'mean', or 'median' (fewer than half of the "
        "members cannot pull it outside the others' range)",
        default="mean",
    )
    rise_guard: str = option(
        "the ensemble's rise guard when deployed (hpenv.hyperparams.RiseGuard: no rise of the "
        "rate until the validation loss improves): 'policy' (as its members were trained), "
        "'on' or 'off'; recorded in the file, so every driver follows it",
        default="policy",
        choices=tuple(RISE_GUARD_CHOICES),
    )
    probe_start: str = probe_start_option("; recorded in the file")
    restart: str = restart_option("; recorded in the file")
    fall_hold: str = fall_hold_option("; recorded in the file")

    def __post_init__(self) -> None:
        if len(self.policies) < 2:
            raise ValueError(f"an ensemble needs at least two policies, got {len(self.policies)}")
        if Path(self.out).suffix != ".pt":
            raise ValueError(f"out must be a .pt file, got {self.out}")
        probe_start_choice(self.probe_start)  # a bad value fails before anything loads


def check_files(config: EnsembleConfig) -> None:
    """Every member's file exists (before anything is loaded or written)."""
    missing = [p for p in config.policies if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"no policy file at {', '.join(missing)}")


def build_ensemble(config: EnsembleConfig) -> FrozenPolicy:
    """Load the members, combine them (`FrozenPolicy.ensemble`) and save the result."""
    members = [load_policy(p) for p in config.policies]
    ensemble = FrozenPolicy.ensemble(members, sources=list(config.policies), reduce=config.reduce)
    ensemble = ensemble.with_deploy_flags(
        config.rise_guard, config.probe_start, restart=config.restart, fall_hold=config.fall_hold
    )
    ensemble.save(config.out)
    return ensemble


def main(argv: list[str] | None = None) -> int:
    config = parse_config(EnsembleConfig, __doc__, argv, check=check_files)

    def job() -> None:
        ensemble = build_ensemble(config)
        print(
            f"wrote {config.out}: an ensemble of {ensemble.size} policies ({ensemble.reduce}, "
            f"layout v{ensemble.metadata.obs_version}, rise guard "
            f"{'on' if ensemble.metadata.rise_guard else 'off'}, probe start "
            f"{probe_start_text(ensemble.metadata.probe_start)}, restart "
            f"{'on' if ensemble.metadata.restart else 'off'}, fall hold "
            f"{'off' if ensemble.metadata.fall_hold is None else 'on'}, "
            f"fingerprint {ensemble.fingerprint()[:12]})"
        )

    return run_job(job)


if __name__ == "__main__":
    sys.exit(main())
