"""The meta-learner: PPO across HPTuneEnv tasks, frozen policies, controllers, baselines.

Stable-Baselines3 lives here, never in ``hpenv``.
"""
