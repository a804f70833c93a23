"""Experiment (not shipped): scripts/evaluate.py with the rollback also firing on a collapse to
the untrained level, read on the validation loss AND the interval's mean training loss.

A later interval rolls back (like one that blew up) when, after the run had learned (its best
validation loss <= L x the untrained model's, L = 0.8), both its validation loss and its mean
training loss are back at best + F x (untrained - best) or above (F = 0.9): the model forgot
what it learned, on the data it trains on too (an overfitting run keeps a low training loss).
Built by rewriting agents.evaluation.methods.core._train_group's source (the rollback is given
the interval's mean training loss) and wrapping hpenv.restart.Restarts.after_later_interval."""

import inspect
import math
import os
import runpy
import sys
import textwrap

import agents.evaluation.methods.core as core
from hpenv.restart import Restarts

F = float(os.environ.get("COLLAPSE_F", "0.9"))
L = float(os.environ.get("COLLAPSE_L", "0.8"))
src = textwrap.dedent(inspect.getsource(core._train_group))


def sub(a, b):
    global src
    assert src.count(a) == 1, a
    src = src.replace(a, b)


sub(
    "def rollback(i: int, diverged: bool, loss: float) -> bool:",
    "def rollback(i: int, diverged: bool, loss: float, train_loss: float = math.nan) -> bool:",
)
sub(
    """            loss, first[i].loss, diverged
        ):""",
    """            loss, first[i].loss, diverged, train_loss
        ):""",
)
sub(
    "or rollback(i, False, evaluation.loss)",
    "or rollback(i, False, evaluation.loss, stats[i].loss_mean)",
)


def after_later_interval(self, val_loss, initial_loss, diverged, train_loss=math.nan):
    if not self.config.rollback or self.rollbacks >= self.config.most:
        return False
    if not math.isfinite(self.best):
        return False
    blew_up = diverged or val_loss > self._limit(initial_loss)
    level = self.best + F * (initial_loss - self.best)
    collapsed = self.best <= L * initial_loss and val_loss >= level and train_loss >= level
    if not (blew_up or collapsed):
        return False
    self.rollbacks += 1
    return True


Restarts.after_later_interval = after_later_interval
namespace = dict(vars(core))
exec(compile(src, "<collapse2 _train_group>", "exec"), namespace)
core._train_group = namespace["_train_group"]
sys.argv = ["scripts/evaluate.py", *sys.argv[1:]]
runpy.run_path("scripts/evaluate.py", run_name="__main__")
