"""How much the grid's per-seed choice inflates its validation figure: per task, the mean
validation accuracy of the trial each seed chose (best of 8 on that seed's validation split,
what the harness reports), of the best fixed rate over all seeds, and leave-one-seed-out (the
rate chosen on the other seeds' validation accuracy, scored on this seed: no seed is scored on
the split its rate was chosen on), with the test accuracy of the per-seed choice where the
task has a test split.

usage: grid_selection.py DIR   (grid.jsonl there: the grid rows of a harness folder's runs.jsonl
without their trajectories)"""

import collections
import json
import math
import statistics
import sys


def main() -> None:
    with open(sys.argv[1] + "/grid.jsonl") as f:
        rows = [json.loads(line) for line in f]
    grids = collections.defaultdict(list)
    for row in rows:
        if row.get("method") == "grid":
            grids[row["task"]].append(row["extra"])
    chosen_all, loo_all = [], []
    for task, runs in sorted(grids.items()):
        points = len(runs[0]["grid_val_accuracy"])
        chosen = statistics.mean(r["grid_val_accuracy"][r["chosen_index"]] for r in runs)
        means = [statistics.mean(r["grid_val_accuracy"][i] for r in runs) for i in range(points)]
        fixed = max(means)
        loo = []
        for k, run in enumerate(runs):
            others = [r for j, r in enumerate(runs) if j != k]
            scores = [
                statistics.mean(r["grid_val_accuracy"][i] for r in others) for i in range(points)
            ]
            loo.append(run["grid_val_accuracy"][scores.index(max(scores))])
        tests = [r["grid_test_accuracy"][r["chosen_index"]] for r in runs]
        test = (
            ""
            if any(t is None or math.isnan(t) for t in tests)
            else (f"  test of the per-seed choice {100 * statistics.mean(tests):.1f}")
        )
        print(
            f"{task:15s} per-seed choice {100 * chosen:.1f}  best fixed rate {100 * fixed:.1f}  "
            f"leave-one-seed-out {100 * statistics.mean(loo):.1f}{test}"
        )
        chosen_all.append(chosen)
        loo_all.append(statistics.mean(loo))
    print(
        f"{'mean':15s} per-seed choice {100 * statistics.mean(chosen_all):.2f}  "
        f"leave-one-seed-out {100 * statistics.mean(loo_all):.2f}"
    )


if __name__ == "__main__":
    main()
