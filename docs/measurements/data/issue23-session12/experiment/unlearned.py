"""Experiment (not shipped): scripts/evaluate.py with the fall hold also holding every fall of
the rate (at or below the run's start) until the run has learned.

The shipped fall hold (`hpenv.hyperparams.FallHold`) holds a lowering only when the validation
loss it is decided on is a new best by more than its threshold. On a run still on its initial
plateau (SGD on digits in 45 steps: the validation loss 2.31 -> 2.18 against 2.31 untrained)
the gains are below the threshold, so the policy anneals a run that has not started to learn.
Here a lowering at or below the start is also held while the run's best validation loss is
above LEARNED x the untrained model's (LEARNED = 0.8, the collapse rule's "has learned",
`hpenv.restart.COLLAPSE_LEARNED`) and, with BELOW=1 (the second version), the validation loss
the decision is taken on is below the untrained model's: a run above it is damaged, not on a
plateau (the first version, BELOW=0, held digits with SGD started 30x too high at lr 1 with
its validation loss at 2.4-8.3 against 2.31 untrained: 85.9% -> 7.8%). Built by replacing
FallHold.filter and FallHold.reset in the process (every driver holds its falls through
`agents.policy.step.PolicyStep`)."""

import math
import os
import runpy
import sys

from hpenv.hyperparams import FallHold, _rate_slot

LEARNED = float(os.environ.get("FALL_HOLD_LEARNED", "0.8"))
BELOW = os.environ.get("FALL_HOLD_BELOW", "1") == "1"
_reset = FallHold.reset


def reset(self, val_loss, lr):
    _reset(self, val_loss, lr)
    self.initial = self.best  # the untrained model's validation loss (inf if not finite)


def filter(self, tuned, action_mode, action, val_loss, lr):
    values, i, keep = _rate_slot(tuned, action_mode, action)
    best = self.best
    if math.isfinite(val_loss):
        self.best = min(self.best, float(val_loss))
    if i is None:
        return values
    new_best = (
        math.isfinite(best)
        and best > 0
        and math.isfinite(val_loss)
        and val_loss > 0
        and math.log(best / val_loss) > self.threshold
    )
    initial = getattr(self, "initial", math.inf)
    unlearned = math.isfinite(initial) and self.best > LEARNED * initial
    if BELOW:
        unlearned = unlearned and math.isfinite(val_loss) and val_loss < initial
    if values[i] < keep and (new_best or unlearned) and lr <= self.start_lr * (1 + 1e-9):
        values[i] = keep
        self.held += 1
    return values


FallHold.reset = reset
FallHold.filter = filter
sys.argv = ["scripts/evaluate.py", *sys.argv[1:]]
runpy.run_path("scripts/evaluate.py", run_name="__main__")
