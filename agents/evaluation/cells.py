"""The grid's cells in run order, and the method factories that run them."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agents.evaluation.config import OPTUNA, OPTUNA_WARM
from agents.evaluation.methods.core import Method
from agents.evaluation.records import Key, RunStore

#: A method factory: ``factory()`` (``factory(warm_configs=...)`` for ``optuna_warm``).
MethodFactory = Callable[..., Method]


def plan_cells(
    methods: Sequence[str],
    tasks: Sequence[str],
    start_lr_factors: Sequence[float],
    seeds: Sequence[int],
) -> list[Key]:
    """Every cell in run order: task x start factor x seed x method, ``optuna_warm`` last.

    ``optuna_warm`` runs after every other cell so that it can be warm-started
    from the finished ``optuna`` runs of the other tasks.
    """
    first = [
        (m, t, s, float(f))
        for t in tasks
        for f in start_lr_factors
        for s in seeds
        for m in methods
        if m != OPTUNA_WARM
    ]
    warm = [(OPTUNA_WARM, t, s, float(f)) for t in tasks for f in start_lr_factors for s in seeds]
    return first + (warm if OPTUNA_WARM in methods else [])


def warm_configs_for(task: str, store: RunStore) -> dict[str, list[dict[str, Any]]]:
    """``extra["best_params"]`` of the finished ``optuna`` runs of every *other* task."""
    configs: dict[str, list[dict[str, Any]]] = {}
    for key in sorted(store.finished()):
        if key[0] != OPTUNA or key[1] == task:
            continue
        params = (store.records[key].get("extra") or {}).get("best_params")
        if isinstance(params, Mapping):
            configs.setdefault(key[1], []).append(dict(params))
    return configs


def construct_warm(factory: MethodFactory, warm_configs: Mapping[str, Any]) -> Method:
    """``factory(warm_configs=...)``; for a factory without that argument (a lazy
    registry entry), ``factory()`` with its ``warm_configs`` field replaced."""
    try:
        parameters = inspect.signature(factory).parameters.values()
        accepts = any(p.name == "warm_configs" or p.kind is p.VAR_KEYWORD for p in parameters)
    except (TypeError, ValueError):  # no signature: try the keyword
        accepts = True
    if accepts:
        return factory(warm_configs=warm_configs)
    method = factory()
    if dataclasses.is_dataclass(method) and not isinstance(method, type):
        if "warm_configs" in {f.name for f in dataclasses.fields(method)}:
            replaced: Method = dataclasses.replace(method, warm_configs=warm_configs)
            return replaced
    elif hasattr(method, "warm_configs"):
        method.warm_configs = warm_configs
        return method
    raise TypeError(f"the {OPTUNA_WARM} factory {factory!r} cannot take warm_configs")


def registered_methods() -> Mapping[str, MethodFactory]:
    """``agents.evaluation.methods.METHODS``: every baseline, each imported when first run."""
    from agents.evaluation.methods import METHODS

    return METHODS
