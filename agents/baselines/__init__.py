"""Baselines the policy is compared with, all on the same `core.RunSpec` cells.

See `core` for the shared run structure; each method module registers its
methods in `METHODS` (name -> factory).
"""

from agents.baselines.core import MethodResult, RunSpec, run_intervals

__all__ = ["MethodResult", "RunSpec", "run_intervals"]
