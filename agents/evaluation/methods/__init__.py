"""Baselines the policy is compared with, all on the same `core.RunSpec` cells.

See `core` for the shared run structure; each method module registers its
methods in `METHODS` (name -> factory).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from agents.evaluation.methods.core import Method, MethodResult, RunSpec, run_intervals


def _lazy(module: str, attr: str) -> Callable[[], Method]:
    """A factory that imports ``agents.evaluation.methods.<module>`` only when called."""

    def make() -> Method:
        method: Method = getattr(
            importlib.import_module(f"agents.evaluation.methods.{module}"), attr
        )()
        return method

    make.__qualname__ = f"{module}.{attr}"
    return make


#: Method name -> factory of the method with its default settings. Factories
#: import their module (and any optional package) only when called.
METHODS: dict[str, Callable[[], Method]] = {
    "static": _lazy("schedules", "Static"),
    "cosine": _lazy("schedules", "Cosine"),
    "linear": _lazy("schedules", "LinearDecay"),
    "onecycle": _lazy("schedules", "OneCycle"),
    "plateau": _lazy("schedules", "Plateau"),
    "dac4sgd": _lazy("schedules", "DAC4SGDRule"),
    "probe_cosine": _lazy("schedules", "ProbeCosine"),
    "probe_cosine_short": _lazy("schedules", "ProbeCosineShort"),
    "grid": _lazy("search", "GridSearch"),
    "random": _lazy("search", "RandomSearch"),
    "prodigy": _lazy("hyperfree", "Prodigy"),
    "schedulefree": _lazy("hyperfree", "ScheduleFreeAdamW"),
    "mechanic": _lazy("hyperfree", "Mechanic"),
    "lrfind_cosine": _lazy("lrfind", "LRFindCosine"),
    "optuna": _lazy("optuna_search", "OptunaTPE"),
    "optuna_warm": _lazy("optuna_search", "OptunaWarmStart"),
    "optuna_similar": _lazy("optuna_similar", "OptunaSimilar"),
    "pbt": _lazy("pbt", "PBT"),
}

__all__ = ["METHODS", "Method", "MethodResult", "RunSpec", "run_intervals"]
