"""Task suites for meta-training and evaluation, and how to build their environments.

A suite entry is a task name plus the fidelity its episodes run at on a CPU
(`hpenv.plan.FIDELITY`). ``synthetic`` in a suite means the whole `SyntheticFamily`: a new
generated task every episode. ``synthetic-heldout`` names fixed synthetic
specs drawn from a seed stream that training never uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hpenv.env import EpisodeConfig, HPTuneEnv
from hpenv.tasks import (
    DataNotFoundError,
    SyntheticFamily,
    Task,
    TaskData,
    UnknownTaskError,
    get_task,
)
from hpenv.tasks.data.loader import data_dir_setting

#: Default training suite: offline, and disjoint from the held-out evaluation suite
#: (`hpenv.tasks.registry.HELDOUT_TASKS` uses MNIST and IMDB data: training on
#: ``mnist`` or ``imdb`` too, with ``--train-tasks``, makes those variants no longer held out).
DEFAULT_TRAIN_TASKS: tuple[str, ...] = ("synthetic", "digits")
#: Held-out tasks for periodic evaluation during meta-training (model selection).
DEFAULT_EVAL_TASKS: tuple[str, ...] = ("synthetic-heldout",)

#: Suite names that are not registered tasks' names alone: the family and its held-out specs.
SUITE_FAMILIES: tuple[str, ...] = ("synthetic", "synthetic-heldout")

#: Seed stream of the held-out synthetic specs (training draws from episode seeds).
HELDOUT_SYNTHETIC_SEED = 987_654
HELDOUT_SYNTHETIC_COUNT = 4


def heldout_synthetic_tasks(count: int = HELDOUT_SYNTHETIC_COUNT) -> list[Task]:
    """Fixed synthetic tasks that meta-training never draws (a separate seed stream)."""
    rng = np.random.default_rng(HELDOUT_SYNTHETIC_SEED)
    family = SyntheticFamily()
    tasks = []
    for i in range(count):
        task = family.sample(rng).task()
        tasks.append(task.__class__(**{**task.__dict__, "name": f"synthetic-heldout-{i}"}))
    return tasks


def check_suite(names: Sequence[str], option: str) -> None:
    """Refuse a suite naming an unknown task (before anything is built or written).

    Raises:
        UnknownTaskError: Naming ``option`` and the known tasks.
    """
    for name in names:
        if name in SUITE_FAMILIES:
            continue
        try:
            get_task(name)
        except UnknownTaskError as exc:
            raise UnknownTaskError(f"{option}: {exc}, synthetic-heldout") from None


def resolve_tasks(
    names: Sequence[str | Task], synthetic: SyntheticFamily | None = None
) -> list[Any]:
    """Suite names to `HPTuneEnv` task arguments (validates every name; a `Task` stays as is).

    ``synthetic`` is the family the name ``synthetic`` draws from (default: `SyntheticFamily()`;
    a run's is `MetaTrainConfig.synthetic_family`).
    """
    resolved: list[Any] = []
    for name in names:
        if isinstance(name, Task):
            resolved.append(name)
        elif name == "synthetic":
            resolved.append(synthetic or SyntheticFamily())
        elif name == "synthetic-heldout":
            resolved.extend(heldout_synthetic_tasks())
        else:
            resolved.append(get_task(name))
    return resolved


def available(names: Sequence[str], data_dir: str | None) -> tuple[list[str], dict[str, str]]:
    """The names whose data can be loaded now, and why each other one cannot.

    Raises:
        FileNotFoundError: A task has no data and the data directory given
            (``data_dir``, else ``HPENV_DATA_DIR``) does not exist: a mistyped or
            machine-specific path would otherwise leave the task out with one line.
    """
    ok, missing = [], {}
    for name in names:
        if name.startswith("synthetic"):
            ok.append(name)
            continue
        try:
            get_task(name).load_data(data_dir=data_dir)
            ok.append(name)
        except DataNotFoundError as exc:
            missing[name] = exc.summary
    root = data_dir_setting(data_dir)
    if missing and root is not None and not root.is_dir():
        setting = "--data-dir" if data_dir is not None else "HPENV_DATA_DIR"
        raise FileNotFoundError(
            f"the data directory {root} ({setting}) does not exist, so {', '.join(missing)} "
            "would have no data: point it at a folder holding the datasets (README: Data), "
            "or leave those tasks out"
        )
    return ok, missing


def make_env(
    tasks: Sequence[str | Task],
    episode: EpisodeConfig,
    *,
    device: str = "cpu",
    data_dir: str | None = None,
    synthetic: SyntheticFamily | None = None,
    data_fn: Callable[[Task], TaskData] | None = None,
) -> HPTuneEnv:
    """An `HPTuneEnv` over a suite, with a run's episode settings.

    ``episode``: the run's `EpisodeConfig` (`agents.metatrain.config.episode_config`
    builds it from a `MetaTrainConfig`: CPU fidelity, the rescue-sized lr
    start range). ``tasks`` are suite names or `Task` objects (such as
    adaptation's task with a validation split held back from its training
    split); ``synthetic``: the synthetic family's ranges (optimizers, convolutional
    members; default `SyntheticFamily()`). ``data_fn`` replaces data loading
    (`HPTuneEnv`'s; e.g. data shared through Ray's object store).
    """
    return HPTuneEnv(
        resolve_tasks(tasks, synthetic),
        config=episode,
        device=device,
        data_dir=data_dir,
        data_fn=data_fn,
    )
