"""Does the snapshot-selection score predict a policy's held-out accuracy?

Meta-training scores the policy every ``--eval-every`` agent steps on the
``synthetic-heldout`` episodes (``eval/mean_return`` in the run's
``progress.csv``) and keeps the best-scoring snapshot (``best_policy.pt``,
its score in ``best_policy.json``); the run's last policy is ``policy.pt``.
A comparison folder of ``scripts/compare_recipes.py`` evaluates one of the two
(``--policy best`` or ``final``) on the held-out cells. This reads comparison
folders and pairs, for every recipe and meta-training seed, the evaluated
policy's selection score with its mean held-out accuracy, then prints:

- one row per policy (folder, recipe, seed, which policy, its agent step, its
  score, its held-out mean);
- the Spearman rank correlation of score and held-out mean over all policies,
  over the selected ones and over the final ones (only runs of one reward,
  ``--reward``: scores of different rewards are not on one scale);
- for every run evaluated both ways (a ``best`` folder and a ``final`` folder
  of the same meta-training runs), whether the higher-scoring policy of the
  two is the better one on the held-out tasks.

Only the policy rows at start factor 1 of each folder count (rescue or SGD
folders are skipped: the question is the selection's, not the start's).

Usage:
    python scripts/selection_vs_heldout.py --comparisons logs/exp23/cmp-v3 \\
        logs/exp23/cmp-v3-final logs/exp23/cmp-steer10 logs/exp23/cmp-steer10-final
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from agents.cli import run_job
from agents.evaluation.ablation import POLICY, read_scores
from agents.metatrain.loop import best_selection
from hpenv.errors import InputError


@dataclass(frozen=True)
class Scored:
    """One evaluated policy: its selection score and held-out mean."""

    folder: str
    recipe: str
    seed: int
    policy: str  # "best" or "final"
    run: str  # the meta-training run's folder
    agent_steps: int
    score: float
    heldout: float


def selection_rounds(run: Path) -> list[tuple[int, float]]:
    """``(agent steps, mean return)`` of every selection round of a meta-training run."""
    rounds = []
    with open(run / "progress.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            value = row.get("eval/mean_return")
            if value:
                rounds.append((int(row["time/total_timesteps"]), float(value)))
    return rounds


def policy_score(run: Path, policy: str) -> tuple[int, float]:
    """The agent step and selection score of ``run``'s ``best`` or ``final`` policy."""
    if policy == "best":
        best = best_selection(run)
        if best is None:
            raise InputError(f"{run} has no held-out selection ({run / 'best_policy.json'})")
        return int(best["agent_steps"]), float(best["mean_return"])
    rounds = selection_rounds(run)
    if not rounds:
        raise InputError(f"{run}/progress.csv has no selection round (eval/mean_return)")
    return rounds[-1]


def read_comparison(folder: Path, reward: str | None = None) -> list[Scored]:
    """The scored policies of one comparison folder (none if it is not at start factor 1
    with the recipe's own optimizer), of runs meta-trained with ``reward`` (None: any)."""
    options = json.loads((folder / "comparison.json").read_text())["options"]
    if options.get("start_lr_factors", [1.0]) != [1.0] or options.get("optimizer"):
        return []
    meta_root = Path(options.get("meta_from") or folder) / "meta"
    policy = options.get("policy") or "best"
    scored = []
    for seed_dir in sorted((folder / "eval").glob("*/s*")):
        recipe, seed = seed_dir.parent.name, int(seed_dir.name[1:])
        run = meta_root / recipe / f"s{seed}"
        if not (seed_dir / "results.csv").exists() or not (run / "progress.csv").exists():
            continue
        if reward and json.loads((run / "config.json").read_text()).get("reward") != reward:
            continue
        cells = [v for k, v in read_scores(seed_dir).items() if k[0] == POLICY and k[2] == 1.0]
        if not cells:
            continue
        steps, score = policy_score(run, policy)
        heldout = 100.0 * float(np.mean(cells))
        scored.append(Scored(str(folder), recipe, seed, policy, str(run), steps, score, heldout))
    return scored


def report(scored: list[Scored]) -> str:
    """The table and the three summaries of the module docstring."""
    lines = [
        "| folder | recipe | seed | policy | agent step | selection score | held-out mean |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in scored:
        lines.append(
            f"| {s.folder} | {s.recipe} | {s.seed} | {s.policy} | {s.agent_steps} | "
            f"{s.score:+.4f} | {s.heldout:.2f} |"
        )
    lines.append("")
    for kind in ("all", "best", "final"):
        group = [s for s in scored if kind in ("all", s.policy)]
        if len(group) >= 3:
            rho, p = stats.spearmanr([s.score for s in group], [s.heldout for s in group])
            lines.append(
                f"Spearman(selection score, held-out mean %), {kind} policies "
                f"({len(group)}): {rho:+.2f} (p {p:.3g})"
            )
    by_run: dict[str, dict[str, Scored]] = {}
    for s in scored:
        by_run.setdefault(s.run, {})[s.policy] = s
    pairs = [(r["best"], r["final"]) for r in by_run.values() if {"best", "final"} <= set(r)]
    if pairs:
        distinct = [(b, f) for b, f in pairs if b.agent_steps != f.agent_steps]
        agree = sum(
            (b.score - f.score) * (b.heldout - f.heldout) > 0 or math.isclose(b.heldout, f.heldout)
            for b, f in distinct
        )
        gains = [b.heldout - f.heldout for b, f in distinct]
        spread = "-"
        if gains:
            spread = (
                f"{np.mean(gains):+.2f} on average (range {min(gains):+.2f} to {max(gains):+.2f})"
            )
        lines.append(
            f"Runs evaluated both ways: {len(pairs)} ({len(distinct)} whose selected snapshot is "
            f"not the final policy); the higher-scoring of the two is the better held-out in "
            f"{agree} of {len(distinct)}; selected minus final held-out mean: {spread}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--comparisons", nargs="+", required=True, help="scripts/compare_recipes.py out-dirs"
    )
    parser.add_argument(
        "--reward",
        default="paired_log_val_loss",
        help="only runs meta-trained with this reward (their scores share a scale; '' for all)",
    )
    args = parser.parse_args(argv)

    def job() -> int:
        scored: list[Scored] = []
        for folder in args.comparisons:
            path = Path(folder)
            if not (path / "comparison.json").exists():
                raise InputError(f"{folder} is not a compare_recipes folder (no comparison.json)")
            scored += read_comparison(path, args.reward or None)
        if not scored:
            raise InputError("no evaluated policy at start factor 1 in these folders")
        print(report(scored))
        return 0

    return run_job(job)


if __name__ == "__main__":
    sys.exit(main())
