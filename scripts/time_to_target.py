"""Time to the static default's final accuracy, as a fraction of the budget.

For each run of a harness directory (scripts/evaluate.py --out-dir), the
fraction of its training samples at the first evaluation whose validation
accuracy reaches the mean final validation accuracy of ``static`` on the same
task and start factor; a run that never reaches it counts as 1 (the whole
budget). Prints, per method, the median and mean fraction and how many runs
reached the target before their last evaluation.

Example:
    python scripts/evaluate.py --out-dir logs/eval --methods policy,static,cosine
    python scripts/time_to_target.py --out-dir logs/eval
"""

from __future__ import annotations

import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agents.cli import option, parse_config, run_job
from agents.evaluation.records import RunStore, require_reports, row_key
from agents.evaluation.runs import _Run, derive_columns, finished_runs


@dataclass(frozen=True)
class TimeToTargetConfig:
    """Which report (every field is a flag)."""

    out_dir: str = option("harness report directory (holding results.csv and runs.jsonl)")


def fractions(runs: Sequence[_Run]) -> dict[str, list[float]]:
    """Per method, each run's fraction of its budget spent before reaching static's final.

    The target and the samples to it are the harness's own (`derive_columns` at a
    target fraction of 1: the mean final score of ``static`` on the run's task and
    start factor); a run that never reaches it counts as 1.
    """
    targets = derive_columns(runs, target_fraction=1.0)
    out: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        method, task, _, start = row_key(run.row)
        if not run.trajectory or math.isnan(targets.get((task, start), math.nan)):
            continue
        reached = run.row["samples_to_target"]
        budget = run.trajectory[-1]["samples"]
        out[method].append(1.0 if math.isnan(reached) else reached / budget)
    return dict(out)


def _check(config: TimeToTargetConfig) -> None:
    require_reports([config.out_dir], "--out-dir")


def main(argv: list[str] | None = None) -> int:
    config = parse_config(TimeToTargetConfig, __doc__, argv, check=_check)
    return run_job(lambda: _print(Path(config.out_dir)))


def _print(path: Path) -> None:
    print("| method | runs | median fraction | mean fraction | reached before the end |")
    print("|---|---|---|---|---|")
    for method, values in sorted(fractions(finished_runs(RunStore(path))).items()):
        early = sum(v < 1 for v in values)
        print(
            f"| {method} | {len(values)} | {statistics.median(values):.2f} | "
            f"{statistics.mean(values):.2f} | {early}/{len(values)} |"
        )


if __name__ == "__main__":
    sys.exit(main())
