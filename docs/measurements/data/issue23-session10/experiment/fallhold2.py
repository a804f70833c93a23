"""Experiment (not shipped): scripts/evaluate.py with a 'fall hold' in the deployed policy step.

FALL_HOLD=t: a rate decrease is held (turned into keep) while the validation loss fell by more
than t (ln) over the last interval; FALL_HOLD_BEST=1: the fall measured from the best
validation loss so far; FALL_HOLD_START=1: only while the rate is at or below the run's start
rate (the rate of the policy episode's start, after a restart the lowered one)."""

import math
import os
import runpy
import sys

from agents.policy.step import PolicyStep
from hpenv.hyperparams import apply_action

t = float(os.environ["FALL_HOLD"])
below_start = os.environ.get("FALL_HOLD_START", "0") == "1"
against_best = (
    os.environ.get("FALL_HOLD_BEST", "0") == "1"
)  # the fall is measured from the best so far
orig_start = PolicyStep.start


def start(self, val_loss, val_accuracy, hparams, probe=None, base=None):
    orig_start(self, val_loss, val_accuracy, hparams, probe=probe, base=base)
    self.fh_start_lr, self.fh_prev, self.fh_best = hparams.lr, val_loss, val_loss


def decide(self, metrics):
    obs = self.features.update(metrics)
    meta = self.policy.metadata
    action = self.actor(obs)
    if self.guard is not None:
        action = self.guard.filter(meta.tuned, meta.action_mode, action, metrics.val_loss)
    assert self.residual is None
    prev, self.fh_prev = self.fh_prev, metrics.val_loss
    if against_best:
        prev = self.fh_best
    if math.isfinite(metrics.val_loss):
        self.fh_best = min(self.fh_best, metrics.val_loss)
    if "lr" in meta.tuned:
        i = list(meta.tuned).index("lr")
        keep = 1.0 if meta.action_mode == "discrete" else 0.0
        v = metrics.val_loss
        if (
            action[i] < keep
            and math.isfinite(v)
            and v > 0
            and prev > 0
            and math.isfinite(prev)
            and math.log(prev / v) > t
            and (not below_start or metrics.hparams.lr <= self.fh_start_lr * (1 + 1e-9))
        ):
            action = action.copy()
            action[i] = keep
    return apply_action(meta.tuned, meta.action_mode, action, metrics.hparams)


PolicyStep.start, PolicyStep.decide = start, decide
sys.argv = ["scripts/evaluate.py", *sys.argv[1:]]
runpy.run_path("scripts/evaluate.py", run_name="__main__")
