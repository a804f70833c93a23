"""Experiment (not shipped): scripts/evaluate.py with the rollback also firing on a collapse.

A later interval whose validation loss climbed back most of the way to the untrained model's
(val >= best + F * (initial - best), F = 0.9) after the run had learned (best <= L * initial,
L = 0.8) rolls back like one that blew up (the shipped rule: above the untrained loss x1.1, or
diverged). Built by wrapping hpenv.restart.Restarts.after_later_interval; everything else is
the shipped code. F and L from the environment (COLLAPSE_F, COLLAPSE_L)."""

import math
import os
import runpy
import sys

from hpenv.restart import Restarts

F = float(os.environ.get("COLLAPSE_F", "0.9"))
L = float(os.environ.get("COLLAPSE_L", "0.8"))


def after_later_interval(self, val_loss, initial_loss, diverged):
    if not self.config.rollback or self.rollbacks >= self.config.most:
        return False
    if not math.isfinite(self.best):
        return False
    blew_up = diverged or val_loss > self._limit(initial_loss)
    level = self.best + F * (initial_loss - self.best)
    collapsed = self.best <= L * initial_loss and val_loss >= level
    if not (blew_up or collapsed):
        return False
    self.rollbacks += 1
    return True


Restarts.after_later_interval = after_later_interval
sys.argv = ["scripts/evaluate.py", *sys.argv[1:]]
runpy.run_path("scripts/evaluate.py", run_name="__main__")
