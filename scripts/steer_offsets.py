"""How far layout-2 policies steer from their base: per task, the mean log offset of the rate.

For every held-out cell a policy ran (the ``policy`` rows of harness report
folders: ``scripts/evaluate.py``'s, or a comparison's ``eval/<recipe>/s<seed>``),
the offset of an interval is ln(policy's rate / the base's rate) on the same
cell (the ``probe_cosine`` row: the same probe on the same seed, so the same
intervals); a cell's offset is the mean over its intervals after the probe.
Prints one row per folder: its policies' mean final validation accuracy and,
per task, the mean offset over the task's cells (+1.0: the policy trained at
e = 2.7x the base's rate, on average). A policy that only follows its base
prints 0 everywhere; seeds of one recipe whose offsets differ in sign on a task
have learned opposite corrections of the base there (where their scores scatter).

Usage:
    python scripts/steer_offsets.py --runs logs/cmp/eval/layout2/s0 logs/cmp/eval/layout2/s1 \\
        --base logs/cmp/eval/baselines
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from agents.cli import run_job
from agents.evaluation.ablation import read_scores
from agents.evaluation.records import RunStore, require_reports
from hpenv.errors import InputError


def mean_offset(policy: dict[str, Any], base: dict[str, Any]) -> float:
    """Mean ln(policy rate / base rate) over the intervals after the probe of one cell.

    Raises:
        InputError: The two runs did not train the same intervals.
    """
    mine, theirs = policy["trajectory"][1:], base["trajectory"][1:]
    if len(mine) != len(theirs) or not mine:
        raise InputError(
            f"{policy['task']} seed {policy['seed']}: the policy trained {len(mine)} intervals "
            f"and the base {len(theirs)}; compare runs of the same decisions"
        )
    return float(np.mean([math.log(a["lr"] / b["lr"]) for a, b in zip(mine, theirs, strict=True)]))


def folder_offsets(
    folder: Path, bases: dict[tuple[str, int, float], dict[str, Any]]
) -> tuple[float, dict[str, float]]:
    """A folder's policies: mean final val accuracy (diverged = 0, as in the ablation
    table: `agents.evaluation.ablation.read_scores`), and per task the mean offset."""
    per_task: dict[str, list[float]] = defaultdict(list)
    for (method, task, seed, factor), record in RunStore(folder).records.items():
        if method != "policy" or record.get("error"):
            continue
        base = bases.get((task, seed, factor))
        if base is None:
            raise InputError(f"no probe_cosine run of {task} seed {seed} x{factor:g} to compare")
        per_task[task].append(mean_offset(record, base))
    if not per_task:
        raise InputError(f"{folder}: no finished policy runs")
    accuracy = [v for key, v in read_scores(folder).items() if key[0] == "policy"]
    return float(np.mean(accuracy)), {t: float(np.mean(v)) for t, v in sorted(per_task.items())}


def base_records(folder: Path) -> dict[tuple[str, int, float], dict[str, Any]]:
    """The finished ``probe_cosine`` records of a report folder, by (task, seed, start factor)."""
    return {(t, s, f): r for (m, t, s, f), r in RunStore(folder).records.items()
            if m == "probe_cosine" and not r.get("error")}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[1:]),
    )
    parser.add_argument("--runs", nargs="+", required=True, help="folders with policy runs")
    parser.add_argument(
        "--base", default=None,
        help="the folder with the probe_cosine runs of the same cells (default: each run folder)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    folders = [Path(f) for f in args.runs]
    try:
        require_reports(folders, "--runs")
        require_reports([args.base] if args.base else [], "--base")
    except FileNotFoundError as exc:
        parser.error(str(exc))

    def job() -> None:
        shared = base_records(Path(args.base)) if args.base else None  # read once
        rows = []
        for folder in folders:
            bases = shared if shared is not None else base_records(folder)
            rows.append((folder, *folder_offsets(folder, bases)))
        tasks = sorted({t for _, _, offsets in rows for t in offsets})
        print("| folder | mean val acc | " + " | ".join(tasks) + " |")
        print("|---|---|" + "---|" * len(tasks))
        for folder, accuracy, offsets in rows:
            cells = " | ".join(f"{offsets[t]:+.2f}" if t in offsets else "n/a" for t in tasks)
            print(f"| {folder} | {100 * accuracy:.2f} | {cells} |")

    return run_job(job)


if __name__ == "__main__":
    sys.exit(main())
