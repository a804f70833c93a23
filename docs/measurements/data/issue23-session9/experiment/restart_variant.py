"""Write a policy deployed with a restart that also reads the interval's training loss.

``hpenv.restart.RestartConfig(train_loss=True)``, which no script flag sets (the ninth
session's variant of the restart; `--restart on` is the default `RestartConfig()`).

Usage (from the repository root):
    python docs/measurements/data/issue23-session9/experiment/restart_variant.py SRC.pt OUT.pt
"""

import sys

from agents.policy.artifact import load_policy
from hpenv.restart import RestartConfig

policy = load_policy(sys.argv[1]).with_restart(RestartConfig(train_loss=True))
policy.save(sys.argv[2])
print(sys.argv[2], policy.metadata.deploy)
