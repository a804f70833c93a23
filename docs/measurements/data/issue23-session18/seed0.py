"""The token tasks at evaluation seed 0: the grid's final val accuracy and the rate it picked
(a multiple of the task's default), beside static and each recipe's runs (mean over its folders).

usage: python seed0.py GRID_FOLDER STATIC_FOLDER NAME=FOLDER[+FOLDER...] ...
"""

from __future__ import annotations

import csv
import json
import sys
from collections import defaultdict
from pathlib import Path


def accuracy(folders: list[str]) -> dict[str, float]:
    """Mean final val accuracy (%) of seed 0 per task over ``folders``."""
    values: dict[str, list[float]] = defaultdict(list)
    for folder in folders:
        with open(Path(folder) / "results.csv") as f:
            for row in csv.DictReader(f):
                if row["seed"] == "0":
                    values[row["task"]].append(100 * float(row["val_accuracy"]))
    return {t: sum(v) / len(v) for t, v in sorted(values.items())}


def grid_pick(folder: str) -> dict[str, float]:
    """The rate of the grid's chosen trial, as a multiple of the task's default (1e-3: the
    token tasks train with Adam)."""
    picks = {}
    for line in (Path(folder) / "runs.jsonl").read_text().splitlines():
        run = json.loads(line)
        if run["method"] == "grid":
            picks[run["task"]] = run["extra"]["chosen_lr"] / 1e-3
    return picks


grid, static = sys.argv[1], sys.argv[2]
columns = {"grid (8x)": accuracy([grid]), "static": accuracy([static])}
for item in sys.argv[3:]:
    name, _, paths = item.partition("=")
    columns[name] = accuracy(paths.split("+"))
picks = grid_pick(grid)
print("| task | grid's rate / default | " + " | ".join(columns) + " |")
print("|---|---|" + "---|" * len(columns))
for task in columns["static"]:
    cells = " | ".join(f"{c.get(task, float('nan')):.2f}" for c in columns.values())
    print(f"| {task} | x{picks.get(task, float('nan')):.3g} | {cells} |")
means = " | ".join(f"{sum(c.values()) / len(c):.2f}" for c in columns.values())
print(f"| mean | | {means} |")
