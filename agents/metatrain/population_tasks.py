"""Where a `PopulationVecEnv` gets its members' tasks: tasks that share one architecture.

A population trains its members in lock-step, so their tasks must build the
same model from data of the same shapes. A source draws a whole population
(`PopulationTasks.draw`: a new architecture and its members) and a fresh task
of a given member's shape (`PopulationTasks.redraw`, for a member restarted
mid-population). Both draw from the generator they are given, nothing else.

- `SyntheticPopulation`: one `SyntheticSpec` drawn from a `SyntheticFamily`
  fixes the shape (sizes, model, batch size, budget); each member is a spec of
  that shape with its own data seed, label noise, input scale and conditioning.
- `TaskPopulation`: one task (a registered name or a `Task`); members differ in
  their run seed and, with ``subset``, in which seeded fraction of the training
  split they train on.
- `SuitePopulation`: a meta-training suite (``synthetic``, ``digits``, ...):
  each new population is drawn from one of its sources, chosen uniformly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from threadpoolctl import threadpool_limits

from hpenv.tasks import SyntheticFamily, SyntheticSpec, Task, TaskData, get_task


@dataclass(frozen=True)
class MemberTask:
    """One member's task and its data (and the synthetic spec it came from, if any)."""

    task: Task
    data: TaskData
    spec: SyntheticSpec | None = None


class PopulationTasks(Protocol):
    """A source of populations: see the module docstring."""

    def draw(self, rng: np.random.Generator, count: int) -> list[MemberTask]:
        """A new architecture and ``count`` member tasks that share it."""
        ...

    def redraw(self, rng: np.random.Generator, like: MemberTask) -> MemberTask:
        """A fresh member task of ``like``'s shape."""
        ...


@dataclass(frozen=True)
class SyntheticPopulation:
    """Populations of generated tasks: one shape per population, member variety within it.

    Attributes:
        family: The ranges tasks are drawn from.
    """

    family: SyntheticFamily = field(default_factory=SyntheticFamily)

    def draw(self, rng: np.random.Generator, count: int) -> list[MemberTask]:
        shape = self.family.sample(rng)
        specs = [self.family.sample_like(rng, shape) for _ in range(count)]
        return _generate(specs)

    def redraw(self, rng: np.random.Generator, like: MemberTask) -> MemberTask:
        if like.spec is None:
            raise ValueError("SyntheticPopulation.redraw needs a member drawn by it")
        return _generate([self.family.sample_like(rng, like.spec)])[0]


def _generate(specs: list[SyntheticSpec]) -> list[MemberTask]:
    """The specs' data, generated with one BLAS thread.

    The generator's matrix products are small: BLAS threads only wait for each
    other (4x slower on 2 shared cores). The data are the same either way.
    """
    with threadpool_limits(1):
        return [MemberTask(task=s.task(), data=s.generate(), spec=s) for s in specs]


class TaskPopulation:
    """Populations of one task: members differ in run seed and, optionally, data subset.

    Args:
        task: A registered task name or a `Task`.
        subset: Each member trains on this seeded fraction of the training split
            (a subset seed drawn per member); the whole split if None.
        data_dir: Local data directory for loading.
        data_fn: Replaces data loading (``Task -> TaskData``, e.g. for tests).
    """

    def __init__(
        self,
        task: str | Task,
        *,
        subset: float | None = None,
        data_dir: str | None = None,
        data_fn: Callable[[Task], TaskData] | None = None,
    ) -> None:
        self.task = get_task(task) if isinstance(task, str) else task
        self.subset = subset
        self._load = data_fn or (lambda t: t.load_data(data_dir=data_dir))
        self._data: TaskData | None = None

    def draw(self, rng: np.random.Generator, count: int) -> list[MemberTask]:
        return [self._member(rng) for _ in range(count)]

    def redraw(self, rng: np.random.Generator, like: MemberTask) -> MemberTask:
        return self._member(rng)

    def _member(self, rng: np.random.Generator) -> MemberTask:
        if self._data is None:
            self._data = self._load(self.task)
        if self.subset is None:
            return MemberTask(task=self.task, data=self._data)
        seed = int(rng.integers(2**31 - 1))
        return MemberTask(task=self.task, data=self._data.subset(self.subset, seed))


class SuitePopulation:
    """Populations drawn from a suite of sources, one source per population.

    Args:
        sources: Suite name -> source (``"synthetic"`` -> `SyntheticPopulation`,
            a task name -> `TaskPopulation`).
    """

    def __init__(self, sources: dict[str, PopulationTasks]) -> None:
        if not sources:
            raise ValueError("a suite population needs at least one source")
        self.sources = dict(sources)
        self._names = sorted(self.sources)

    def draw(self, rng: np.random.Generator, count: int) -> list[MemberTask]:
        name = self._names[int(rng.integers(len(self._names)))]
        return self.sources[name].draw(rng, count)

    def redraw(self, rng: np.random.Generator, like: MemberTask) -> MemberTask:
        name = "synthetic" if like.spec is not None else like.task.name
        return self.sources[name].redraw(rng, like)
