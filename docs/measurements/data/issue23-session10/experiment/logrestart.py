"""Run scripts/evaluate.py with every Restarts.after_interval call logged (first intervals only)
to $RESTART_LOG as JSON lines: initial, val, train loss, diverged, the decision, since, count."""

import json
import os
import runpy
import sys

import hpenv.restart as R

orig = R.Restarts.after_interval
path = os.environ["RESTART_LOG"]


def logged(self, val_loss, initial_loss, diverged=False, train_loss=float("nan")):
    since, count = self.since, self.count
    out = orig(self, val_loss, initial_loss, diverged, train_loss)
    if since == 0:
        with open(path, "a") as f:
            f.write(
                json.dumps(
                    {
                        "initial": initial_loss,
                        "val": val_loss,
                        "train": train_loss,
                        "diverged": diverged,
                        "restart": out,
                        "count": count,
                        "train_flag": self.config.train_loss,
                    }
                )
                + "\n"
            )
    return out


R.Restarts.after_interval = logged
sys.argv = ["scripts/evaluate.py", *sys.argv[1:]]
runpy.run_path("scripts/evaluate.py", run_name="__main__")
