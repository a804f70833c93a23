"""Experiment (not shipped): scripts/evaluate.py with a 'fall hold' on the rise guard.

FALL_HOLD=t: a rate decrease is held (turned into keep) while the validation loss fell by more
than t (ln) over the last interval, i.e. while training still makes progress at this rate.
Optional FALL_HOLD_UNTIL=p: only before progress p (not read here: progress unknown; unused)."""

import math
import os
import runpy
import sys

from hpenv.hyperparams import RiseGuard

t = float(os.environ["FALL_HOLD"])
orig_filter, orig_reset = RiseGuard.filter, RiseGuard.reset


def reset(self):
    orig_reset(self)
    self.prev_val = None
    self.falls_held = 0


def filt(self, tuned, action_mode, action, val_loss):
    values = orig_filter(self, tuned, action_mode, action, val_loss)
    prev = getattr(self, "prev_val", None)
    self.prev_val = float(val_loss)
    if "lr" not in tuned or values.shape != (len(tuned),) or prev is None:
        return values
    i = list(tuned).index("lr")
    keep = 1.0 if action_mode == "discrete" else 0.0
    if (
        values[i] < keep
        and math.isfinite(val_loss)
        and val_loss > 0
        and prev > 0
        and math.log(prev / val_loss) > t
    ):
        values[i] = keep
        self.falls_held = getattr(self, "falls_held", 0) + 1
    return values


RiseGuard.filter, RiseGuard.reset = filt, reset
sys.argv = ["scripts/evaluate.py", *sys.argv[1:]]
runpy.run_path("scripts/evaluate.py", run_name="__main__")
