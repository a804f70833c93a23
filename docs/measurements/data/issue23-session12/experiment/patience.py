"""Experiment (not shipped): scripts/evaluate.py with the fall hold given a patience.

The shipped fall hold (`hpenv.hyperparams.FallHold`) holds a lowering of the rate (at or below
the run's start) only when the validation loss it is decided on is a new best by more than the
threshold: one interval without such a best lets the policy's cut through. Here the hold also
holds while such a best came in any of the last PATIENCE intervals (PATIENCE = 1 is the shipped
rule), the way ReduceLROnPlateau waits `patience` evaluations before it lowers the rate.
Built by replacing FallHold.filter and FallHold.reset in the process (every driver holds its
falls through `agents.policy.step.PolicyStep`, which uses this class)."""

import math
import os
import runpy
import sys

from hpenv.hyperparams import FallHold, _rate_slot

PATIENCE = int(os.environ.get("FALL_HOLD_PATIENCE", "2"))
_reset = FallHold.reset


def reset(self, val_loss, lr):
    _reset(self, val_loss, lr)
    self.since = PATIENCE  # no best yet since this (re)start


def filter(self, tuned, action_mode, action, val_loss, lr):
    values, i, keep = _rate_slot(tuned, action_mode, action)
    best = self.best
    if math.isfinite(val_loss):
        self.best = min(self.best, float(val_loss))
    new_best = (
        math.isfinite(best)
        and best > 0
        and math.isfinite(val_loss)
        and val_loss > 0
        and math.log(best / val_loss) > self.threshold
    )
    self.since = 0 if new_best else getattr(self, "since", PATIENCE) + 1
    if i is None:
        return values
    if values[i] < keep and self.since < PATIENCE and lr <= self.start_lr * (1 + 1e-9):
        values[i] = keep
        self.held += 1
    return values


FallHold.reset = reset
FallHold.filter = filter
sys.argv = ["scripts/evaluate.py", *sys.argv[1:]]
runpy.run_path("scripts/evaluate.py", run_name="__main__")
