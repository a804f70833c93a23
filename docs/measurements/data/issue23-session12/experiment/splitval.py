"""Experiment (not shipped): scripts/evaluate.py with every task that has no test split given
one, carved from its validation split: a fixed half (seed SPLIT_SEED) stays the validation split
every method reads (the policy's observations, the grid's choice, the rollback's best state),
the other half becomes the test split the harness scores (its test accuracy). Tasks with a test
split of their own (imdb_conv, synthetic_deep) are unchanged. Run it with its own
HPENV_CACHE_DIR: the processed data it caches is not the tasks' own.

Built by wrapping hpenv.tasks.data.loader.process in the process."""

import os
import runpy
import sys

import numpy as np

from hpenv.tasks.data import loader

SPLIT_SEED = int(os.environ.get("SPLIT_SEED", "0"))
_process = loader.process


def process(raw, info, text_config):
    entry = _process(raw, info, text_config)
    if entry.get("test_x") is None and "val_x" in entry:
        n = len(entry["val_y"])
        order = np.random.default_rng(SPLIT_SEED).permutation(n)
        keep, test = np.sort(order[: n // 2]), np.sort(order[n // 2 :])
        entry["test_x"], entry["test_y"] = entry["val_x"][test], entry["val_y"][test]
        entry["val_x"], entry["val_y"] = entry["val_x"][keep], entry["val_y"][keep]
    return entry


loader.process = process
sys.argv = ["scripts/evaluate.py", *sys.argv[1:]]
runpy.run_path("scripts/evaluate.py", run_name="__main__")
