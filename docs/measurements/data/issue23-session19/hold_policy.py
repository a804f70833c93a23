"""Write a policy that never moves the rate, deployed as make train deploys its policies: one
make train member with its action network zeroed (every mean action 0: the rate is held),
keeping the member's file's deployment settings (rise guard, restart with the rollback of a
collapse, fall hold). On the harness it is static plus make train's deployment rules, so against
make train's own policies it measures what the learned steering adds over those rules.

    python docs/measurements/data/issue23-session19/hold_policy.py MEMBER.pt OUT.pt
"""

import sys

import numpy as np
import torch

from agents.policy import load_policy

member = load_policy(sys.argv[1]).single("the hold policy")
with torch.no_grad():
    member.policy.action_net.weight.zero_()
    member.policy.action_net.bias.zero_()
probe = np.zeros((1, member.metadata.obs_size * member.metadata.frame_stack), np.float32)
action, _ = member.predict(probe, deterministic=True)
assert np.all(np.asarray(action) == 0.0), action
print("deployment settings:", member.metadata.deploy)
print("written:", member.save(sys.argv[2]))
