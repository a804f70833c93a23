"""How much a frame-stacked policy reads the history in its stack: one digits run (3 epochs, 20
decisions, seed 1) with Adam and one with SGD + momentum, each decision's mean action against the
action the same policy takes when every frame of its stack is the current observation (a run
that had looked the same for the last frame_stack decisions). Prints each run's mean action, the
mean |difference| and the largest one.

    python docs/measurements/data/issue23-session19/history_read.py logs/exp23/s19/x5fs-5/policy.pt
"""

import sys

import numpy as np

from agents.policy import PolicyActor, load_policy
from hpenv.env import HPTuneEnv

for path in sys.argv[1:]:
    policy = load_policy(path)
    stack = policy.metadata.frame_stack
    print(path, f"frame stack {stack}")
    for optimizer in ("adam", "sgd"):
        env = HPTuneEnv("digits", optimizer=optimizer, decisions=20, budget_epochs=3, device="cpu")
        obs, _ = env.reset(seed=1)
        actor = PolicyActor(policy)
        actions, diffs, done = [], [], False
        while not done:
            action = actor(obs)
            steady, _ = policy.predict(np.tile(obs, stack)[None], deterministic=True)
            diffs.append(float(action[0] - np.asarray(steady)[0][0]))
            actions.append(float(action[0]))
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        print(
            f"  {optimizer}: mean action {np.mean(actions):+.3f} "
            f"(mean |.| {np.mean(np.abs(actions)):.3f}); with history - steady: mean "
            f"{np.mean(diffs):+.3f}, mean |.| {np.mean(np.abs(diffs)):.3f}, "
            f"max |.| {np.max(np.abs(diffs)):.3f}"
        )
