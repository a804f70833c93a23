"""Mean final validation accuracy (%) by start factor, then by task at the default start, for
named harness folders (several folders joined by '+' are averaged: a recipe's runs).

usage: python by_start.py NAME=FOLDER[+FOLDER...] ...
"""

import sys
from pathlib import Path

import pandas as pd

tables = {}
for arg in sys.argv[1:]:
    name, folders = arg.split("=", 1)
    runs = pd.concat(pd.read_csv(Path(f) / "results.csv") for f in folders.split("+"))
    tables[name] = runs.groupby(["start_lr_factor", "task"]).val_accuracy.mean().unstack() * 100
by_start = pd.concat({n: t.mean(axis=1) for n, t in tables.items()}, axis=1)
print(by_start.round(2).to_string())
print()
print("at the default start (1x), by task:")
print(pd.concat({n: t.loc[1.0] for n, t in tables.items()}, axis=1).round(2).to_string())
