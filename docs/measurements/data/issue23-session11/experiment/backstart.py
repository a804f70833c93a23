"""Experiment (not shipped): scripts/evaluate.py with the rollback's rate read off the run's start.

When the best interval trained above the run's start (the user's rate, or a restart's lowered
one), the blow-up followed the policy's rise: the rollback goes back to the start rate instead
of the best interval's rate / 10 (BACK_FLOOR=1: but never below that / 10, so that a run started
far too low and raised more than x10 by the policy is not sent back to its too-low start);
otherwise / 10 as shipped. Wraps hpenv.restart.Restarts."""

import math
import os
import runpy
import sys

from hpenv.hyperparams import TUNABLES
from hpenv.restart import Restarts

init, after, new_best, rollback_lr = (
    Restarts.__init__,
    Restarts.after_interval,
    Restarts.new_best,
    Restarts.rollback_lr,
)


def __init__(self, config):
    init(self, config)
    self.start_lr = None


def after_interval(self, *args, **kwargs):
    restart = after(self, *args, **kwargs)
    if restart:
        self.start_lr = None
    return restart


def new_best_(self, val_loss, lr, initial_loss):
    if self.start_lr is None and math.isfinite(lr):
        self.start_lr = float(lr)  # the first interval since the start or a restart
    return new_best(self, val_loss, lr, initial_loss)


def rollback_lr_(self):
    cut = rollback_lr(self)
    if self.start_lr is not None and self.best_lr > self.start_lr:
        back = float(TUNABLES["lr"].clip(self.start_lr))
        return max(back, cut) if os.environ.get("BACK_FLOOR") == "1" else back
    return cut


Restarts.__init__, Restarts.after_interval = __init__, after_interval
Restarts.new_best, Restarts.rollback_lr = new_best_, rollback_lr_
sys.argv = ["scripts/evaluate.py", *sys.argv[1:]]
runpy.run_path("scripts/evaluate.py", run_name="__main__")
