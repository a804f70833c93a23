"""Per-task mean differences (points) of one recipe's folders against a reference's, over several
policies, on the harness's score (test accuracy where the task has a test split, else validation
accuracy), with how many runs changed.

usage: pertask.py REF_PATTERN NEW_PATTERN POLICY...   (patterns with {p} for the policy)"""

import collections
import csv
import sys


def load(folder: str) -> dict:
    with open(folder + "/results.csv") as f:
        return {
            (r["task"], r["seed"], r["start_lr_factor"]): float(
                r["val_accuracy"] if r["test_accuracy"] == "nan" else r["test_accuracy"]
            )
            for r in csv.DictReader(f)
        }


def main() -> None:
    reference, new, policies = sys.argv[1], sys.argv[2], sys.argv[3:]
    diffs: dict = collections.defaultdict(list)
    for policy in policies:
        before, after = load(reference.format(p=policy)), load(new.format(p=policy))
        for key, score in before.items():
            diffs[key[0]].append(100 * (after[key] - score))
    everything = [d for values in diffs.values() for d in values]
    for task in sorted(diffs):
        values = diffs[task]
        changed = sum(abs(d) > 1e-9 for d in values)
        up, down = sum(d > 1e-9 for d in values), sum(d < -1e-9 for d in values)
        mean = sum(values) / len(values)
        counts = f"changed {changed:3d}/{len(values)}  wins {up} losses {down}"
        print(f"{task:16s} {mean:+6.2f}  {counts}")
    changed = sum(abs(d) > 1e-9 for d in everything)
    mean = sum(everything) / len(everything)
    print(f"{'all':16s} {mean:+6.2f}  changed {changed}/{len(everything)}")


if __name__ == "__main__":
    main()
