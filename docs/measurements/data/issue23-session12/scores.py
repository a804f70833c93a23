"""Mean final accuracy per method over harness folders, on validation accuracy and on the
harness's score (test accuracy where a task has a test split, else validation accuracy),
overall and per task (validation / score).

usage: scores.py NAME=DIR ...   (a folder holding several methods is split by its method
column: NAME is then a prefix)"""

import collections
import csv
import statistics
import sys


def score(row: dict) -> float:
    return float(row["val_accuracy"] if row["test_accuracy"] == "nan" else row["test_accuracy"])


def main() -> None:
    groups: dict = collections.defaultdict(list)
    for item in sys.argv[1:]:
        name, folder = item.split("=", 1)
        with open(folder + "/results.csv") as f:
            rows = list(csv.DictReader(f))
        methods = sorted({r["method"] for r in rows})
        for r in rows:
            label = name if len(methods) == 1 else f"{name}{r['method']}"
            groups[label].append(r)
    tasks = sorted({r["task"] for rows in groups.values() for r in rows})
    print("| method | cells | validation | score | " + " | ".join(tasks) + " |")
    print("|---" * (4 + len(tasks)) + "|")
    for label, rows in groups.items():
        val = 100 * statistics.mean(float(r["val_accuracy"]) for r in rows)
        sc = 100 * statistics.mean(score(r) for r in rows)
        cells = []
        for task in tasks:
            mine = [r for r in rows if r["task"] == task]
            v = 100 * statistics.mean(float(r["val_accuracy"]) for r in mine)
            s = 100 * statistics.mean(score(r) for r in mine)
            cells.append(f"{v:.1f}" if abs(v - s) < 1e-9 else f"{v:.1f} / {s:.1f}")
        print(f"| {label} | {len(rows)} | {val:.2f} | {sc:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
