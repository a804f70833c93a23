"""Experiment (not shipped): scripts/evaluate.py with the rollback's rate cut /3 instead of /10
(the restart keeps /10). Wraps hpenv.restart.Restarts.rollback_lr; CUT from the environment."""

import os
import runpy
import sys

from hpenv.hyperparams import TUNABLES
from hpenv.restart import Restarts

CUT = float(os.environ.get("CUT", "3"))
Restarts.rollback_lr = lambda self: float(TUNABLES["lr"].clip(self.best_lr / CUT))
sys.argv = ["scripts/evaluate.py", *sys.argv[1:]]
runpy.run_path("scripts/evaluate.py", run_name="__main__")
