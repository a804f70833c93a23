"""How much a layout-3 policy reads its optimizer feature: one digits run (3 epochs, 20 decisions,
seed 1) with SGD and one with Adam, each decision's mean action against the action the same
policy takes with `optimizer_sgd` flipped (a second actor fed the flipped observations).

    python docs/measurements/data/issue23-session16/flag_flip.py logs/exp23/s16/x5obs-5/policy.pt
"""

import sys

import numpy as np

from agents.policy import PolicyActor, load_policy
from hpenv.env import HPTuneEnv
from hpenv.observation import INDEX

FLAG = len(INDEX)  # optimizer_sgd follows layout 1's features

for path in sys.argv[1:]:
    policy = load_policy(path)
    print(path, f"layout {policy.metadata.obs_version}")
    for optimizer in ("sgd", "adam"):
        env = HPTuneEnv("digits", observe_optimizer=True, optimizer=optimizer, decisions=20,
                        budget_epochs=3, device="cpu")  # fmt: skip
        obs, _ = env.reset(seed=1)
        own, other = PolicyActor(policy), PolicyActor(policy)
        actions, diffs, done = [], [], False
        while not done:
            action = own(obs)
            flipped = obs.copy()
            flipped[FLAG] = 1.0 - flipped[FLAG]
            diffs.append(float(action[0] - other(flipped)[0]))
            actions.append(float(action[0]))
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        print(
            f"  {optimizer}: mean action {np.mean(actions):+.3f}; own flag - flipped: mean "
            f"{np.mean(diffs):+.3f}, mean |.| {np.mean(np.abs(diffs)):.3f}"
        )
