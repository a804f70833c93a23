"""Time to the static default's final accuracy, as a fraction of the budget (issue 15, bar 5).

For each run of a harness directory (scripts/evaluate.py --out-dir), the
fraction of its training samples at the first evaluation whose validation
accuracy reaches the mean final validation accuracy of ``static`` on the same
task and start factor; a run that never reaches it counts as 1 (the whole
budget). Prints, per method, the median and mean fraction and how many runs
reached the target before their last evaluation.

Example:
    python scripts/time_to_target.py --out-dir logs/exp15/eval-v2
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from agents.cli import option, parse_config
from agents.evaluation.config import STATIC
from agents.evaluation.records import RunStore


@dataclass(frozen=True)
class TimeToTargetConfig:
    """Which report (every field is a flag)."""

    out_dir: str = option("harness report directory (holding results.csv and runs.jsonl)")


def fractions(store: RunStore) -> dict[str, list[float]]:
    """Per method, each run's fraction of its budget spent before reaching static's final."""
    finals: dict[tuple[str, float], list[float]] = defaultdict(list)
    for (method, task, _, start), record in store.records.items():
        if method == STATIC and record["trajectory"]:
            finals[(task, start)].append(record["trajectory"][-1]["val_accuracy"])
    targets = {cell: statistics.mean(values) for cell, values in finals.items()}
    out: dict[str, list[float]] = defaultdict(list)
    for (method, task, _, start), record in store.records.items():
        trajectory = record["trajectory"]
        if not trajectory or (task, start) not in targets:
            continue
        budget = trajectory[-1]["samples"]
        reached = (
            p["samples"] / budget for p in trajectory if p["val_accuracy"] >= targets[(task, start)]
        )
        out[method].append(next(reached, 1.0))
    return dict(out)


def main(argv: list[str] | None = None) -> int:
    config = parse_config(TimeToTargetConfig, __doc__, argv)
    path = Path(config.out_dir)
    if not (path / "runs.jsonl").is_file():
        raise SystemExit(f"{path}: no runs.jsonl; give a report directory of scripts/evaluate.py")
    print("| method | runs | median fraction | mean fraction | reached before the end |")
    print("|---|---|---|---|---|")
    for method, values in sorted(fractions(RunStore(path)).items()):
        early = sum(v < 1 for v in values)
        print(
            f"| {method} | {len(values)} | {statistics.median(values):.2f} | "
            f"{statistics.mean(values):.2f} | {early}/{len(values)} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
