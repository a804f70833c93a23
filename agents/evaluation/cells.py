"""The grid's cells in run order, and the method factories that run them."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agents.evaluation.config import OPTUNA, WARM_METHODS
from agents.evaluation.methods.core import Method
from agents.evaluation.records import Key, RunStore

#: A method factory: ``factory()`` (``factory(warm_configs=...)`` for the warm-started ones).
MethodFactory = Callable[..., Method]


def plan_cells(
    methods: Sequence[str],
    tasks: Sequence[str],
    start_lr_factors: Sequence[float],
    seeds: Sequence[int],
) -> list[Key]:
    """Every cell in run order: task x start factor x seed x method, warm-started methods last.

    ``optuna_warm`` and ``optuna_similar`` (`WARM_METHODS`) run after every other
    cell so that they can be warm-started from the finished ``optuna`` runs of
    the other tasks.
    """
    grid = [(t, s, float(f)) for t in tasks for f in start_lr_factors for s in seeds]
    first = [(m, t, s, f) for t, s, f in grid for m in methods if m not in WARM_METHODS]
    warm = [(m, t, s, f) for m in WARM_METHODS if m in methods for t, s, f in grid]
    return first + warm


def warm_configs_for(
    task: str, store: RunStore, priors: Sequence[RunStore] = ()
) -> dict[str, list[dict[str, Any]]]:
    """``extra["best_params"]`` of the finished ``optuna`` runs of every *other* task.

    Args:
        task: The cell's task (left out).
        store: This evaluation's results.
        priors: Earlier evaluations' results (``--prior-results``), read first; a
            (task, seed) this evaluation has run itself comes from ``store`` only.
    """
    configs: dict[str, list[dict[str, Any]]] = {}
    own = {key for key in store.finished() if key[0] == OPTUNA}
    seen = {(key[1], key[2], key[3]) for key in own}
    for source in (*priors, store):
        for key in sorted(source.finished()):
            if key[0] != OPTUNA or key[1] == task:
                continue
            if source is not store and (key[1], key[2], key[3]) in seen:
                continue
            params = (source.records[key].get("extra") or {}).get("best_params")
            if isinstance(params, Mapping):
                configs.setdefault(key[1], []).append(dict(params))
    return configs


def construct(factory: MethodFactory, **settings: Any) -> Method:
    """``factory(**settings)``; for a factory without those arguments (a lazy registry
    entry), ``factory()`` with those fields replaced.

    Raises:
        TypeError: The method has no such fields.
    """
    try:
        parameters = inspect.signature(factory).parameters.values()
        accepts = all(
            any(p.name == name or p.kind is p.VAR_KEYWORD for p in parameters) for name in settings
        )
    except (TypeError, ValueError):  # no signature: try the keywords
        accepts = True
    if accepts:
        return factory(**settings)
    method = factory()
    if dataclasses.is_dataclass(method) and not isinstance(method, type):
        if set(settings) <= {f.name for f in dataclasses.fields(method)}:
            replaced: Method = dataclasses.replace(method, **settings)
            return replaced
    elif all(hasattr(method, name) for name in settings):
        for name, value in settings.items():
            setattr(method, name, value)
        return method
    raise TypeError(f"the method factory {factory!r} cannot take {sorted(settings)}")


def construct_warm(
    factory: MethodFactory, warm_configs: Mapping[str, Any], **settings: Any
) -> Method:
    """A warm-started method: `construct` with ``warm_configs`` (and, for
    ``optuna_similar``, ``prior_specs``)."""
    return construct(factory, warm_configs=warm_configs, **settings)


def registered_methods() -> Mapping[str, MethodFactory]:
    """``agents.evaluation.methods.METHODS``: every baseline, each imported when first run."""
    from agents.evaluation.methods import METHODS

    return METHODS
