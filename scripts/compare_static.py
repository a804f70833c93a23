"""Compare a frozen policy with the static task defaults on held-out tasks.

Runs N seeds of (a) the policy driving the run and (b) the task's static
default hyperparameters, same budget (the CPU fidelity of agents/suite.py),
same seeds, and prints a table of final validation accuracy (mean ± std).
``--start-factors`` also starts both from a poor learning rate (default x factor).

Example:
    HPENV_DATA_DIR=../shared/datasets python scripts/compare_static.py \
        --policy logs/meta-.../best_policy.pt --tasks mnist,imdb --seeds 0,1,2,3,4
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import torch

from agents.compare import compare_static, markdown_table
from agents.policy import load_policy
from hpenv.plan import FIDELITY, Fidelity


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--policy", required=True, help="frozen policy artifact (.pt)")
    parser.add_argument("--tasks", required=True, help="comma-separated task names")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    parser.add_argument("--start-factors", default="1", help="initial lr = default x factor")
    parser.add_argument(
        "--include-training-tasks",
        action="store_true",
        help="allow tasks the policy was trained on (otherwise refused)",
    )
    parser.add_argument(
        "--fidelity",
        action="append",
        default=[],
        metavar="TASK:SUBSET:EPOCHS",
        help="episode size for a task, e.g. imdb:1.0:2 (default: hpenv/plan.py FIDELITY)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--csv", default=None, help="also write one row per task to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    policy = load_policy(args.policy)
    tasks = [t for t in args.tasks.split(",") if t]
    seen = sorted(set(tasks) & set(policy.metadata.tasks))
    if seen and not args.include_training_tasks:
        parser.error(
            f"{seen} were in the policy's training set {policy.metadata.tasks}; "
            "pass --include-training-tasks to compare on them anyway"
        )
    fidelity = dict(FIDELITY)
    for spec in args.fidelity:
        try:
            name, subset, epochs = spec.split(":")
            fidelity[name] = Fidelity(subset=float(subset), budget_epochs=float(epochs))
        except ValueError:
            parser.error(f"--fidelity {spec!r}: expected TASK:SUBSET:EPOCHS, e.g. imdb:1.0:2")
    comparisons = compare_static(
        policy,
        tasks,
        [int(s) for s in args.seeds.split(",")],
        [float(f) for f in args.start_factors.split(",")],
        fidelity=fidelity,
        device=args.device,
        data_dir=args.data_dir,
    )
    print("fidelity: " + ", ".join(f"{t}: {fidelity.get(t, 'task default')}" for t in tasks))
    print(f"policy: {args.policy} (trained on {', '.join(policy.metadata.tasks)}, "
          f"{policy.metadata.agent_steps} agent steps)")  # fmt: skip
    print(markdown_table(comparisons))
    if args.csv:
        rows = [c.row() for c in comparisons]
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
