"""Harness cells trained together: every batchable cell of a task as members of one population.

With ``EvalConfig.engine`` ``population`` (or ``auto``, the default, where it
pays) the runner hands each task's cells to `stream_batched`:

- A cell whose method is a `agents.evaluation.methods.core.BatchableMethod`
  (the policy, the schedules, the grid and random search) contributes its runs
  (one, or one per search point); every run of the task's cells that shares
  the optimizer kind and the batch size trains as one member of one
  `hpenv.population.Population` (`train_runs` with ``engine="population"``;
  at most `MAX_MEMBERS` members each), its own ``adjust`` (the frozen policy's
  driver, a schedule's controller) deciding its hyperparameters at every
  boundary. The rows equal the sequential ones to float tolerance.
- Each cell's row is its method's ``result`` of its runs' rows, recorded when
  the population is done; its ``wall_time`` is its runs' share of the
  population's, and ``extra["engine"]`` says ``population``.
- Cells of other methods (Prodigy, Schedule-Free, Mechanic, the LR range test,
  Optuna, PBT, warm starts), and every cell of a task the population cannot
  train (embeddings, recurrent layers) or, with ``auto``, trains slower than
  one run at a time here (`hpenv.population.batching_pays`), run one at a time
  as before, with one line saying why for a whole task.
"""

from __future__ import annotations

import itertools
import sys
import time
import traceback
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tqdm import tqdm

from agents.evaluation.methods.core import CellRun, MethodResult, NotBatchable, RunSpec, train_runs
from agents.evaluation.outcomes import (
    CellOutcome,
    failed_outcome,
    result_outcome,
    skipped_outcome,
)
from agents.evaluation.records import Key
from hpenv.population import batching_pays, supports
from hpenv.tasks import TaskData, get_task

#: Most members of one population: bounds memory (each member holds a copy of the data).
MAX_MEMBERS = 64


class _Runner(Protocol):
    """What `stream_batched` uses of `agents.evaluation.runner._CellRunner`."""

    skipped: dict[str, str]

    def prepare(self, key: Key) -> tuple[Any, RunSpec] | CellOutcome: ...

    def record(self, outcome: CellOutcome) -> None: ...

    def run(self, key: Key) -> None: ...


@dataclass
class _Cell:
    key: Key
    method: Any
    spec: RunSpec
    runs: list[CellRun]
    results: list[MethodResult | None] = field(default_factory=list)
    error: tuple[BaseException, str] | None = None


def stream_batched(
    runner: _Runner,
    todo: Sequence[Key],
    *,
    data_for: Callable[[str], TaskData],
    engine: str = "auto",
    device: str = "cpu",
    note: Callable[[str], None] | None = None,
) -> Generator[Key, None, None]:
    """Run and record ``todo``, each task's batchable cells as one population; yields each
    cell once it is recorded (a population's cells together, when it finishes).

    Args:
        runner: Builds, runs and records cells.
        todo: The cells, in the runner's order (consecutive cells of one task batch together).
        data_for: A task's data (as its cells train on it).
        engine: ``population`` batches every cell the population can train;
            ``auto`` also leaves out tasks it trains slower than one run at a time.
        device: The cells' training device.
        note: Where the one-line notes go (default: above the progress bar).
    """
    say = note or (lambda text: tqdm.write(text, file=sys.stderr))
    for task, group in itertools.groupby(todo, key=lambda key: key[1]):
        keys = list(group)
        why = supports_task(task, data_for(task), engine, device)
        if why:
            say(f"{task}: cells run one at a time ({why})")
            for key in keys:
                runner.run(key)
                yield key
            continue
        cells, alone = [], []
        for key in keys:
            if key[0] in runner.skipped:
                continue
            cell = _cell(runner, key)
            if isinstance(cell, CellOutcome):
                runner.record(cell)
                yield key
            elif cell is None:
                alone.append(key)
            else:
                cells.append(cell)
        if cells:
            _train(cells, say)
            for cell in cells:
                runner.record(_outcome(cell))
            yield from (cell.key for cell in cells)
        for key in alone:
            runner.run(key)
            yield key


def supports_task(task: str, data: TaskData, engine: str, device: str) -> str:
    """Why ``task``'s cells cannot (or, with ``auto``, should not) batch; '' if they can."""
    resolved = get_task(task)
    why = supports(resolved)
    if why is None and engine == "auto":
        why = batching_pays(resolved, data, device)
    return why or ""


def _cell(runner: _Runner, key: Key) -> _Cell | CellOutcome | None:
    """The cell with its runs; its outcome when it cannot be built; None to run it alone."""
    prepared = runner.prepare(key)
    if isinstance(prepared, CellOutcome):
        return prepared
    method, spec = prepared
    if not hasattr(method, "runs"):
        return None
    begin = time.perf_counter()
    try:
        return _Cell(key, method, spec, method.runs(spec))
    except NotBatchable:
        return None
    except ImportError as exc:
        return skipped_outcome(key, exc)
    except Exception as exc:
        return failed_outcome(key, exc, time.perf_counter() - begin, traceback.format_exc())


def population_key(run: CellRun) -> tuple[str, int, str]:
    """What the runs of one population share here: optimizer kind, batch size and probe."""
    return (run.hparams.optimizer, run.hparams.batch_size, repr(run.probe))


def population_groups(runs: Sequence[CellRun]) -> list[list[int]]:
    """The indices of ``runs`` (one task's) grouped into populations: runs that share
    `population_key`, in their order, at most `MAX_MEMBERS` per group."""
    order = sorted(range(len(runs)), key=lambda i: population_key(runs[i]))
    groups = []
    for _, members in itertools.groupby(order, key=lambda i: population_key(runs[i])):
        group = list(members)
        groups += [group[b : b + MAX_MEMBERS] for b in range(0, len(group), MAX_MEMBERS)]
    return groups


def _train(cells: Sequence[_Cell], say: Callable[[str], None]) -> None:
    """Train every run of ``cells``: one population per `population_groups` group."""
    for cell in cells:
        cell.results = [None] * len(cell.runs)
    slots = [(cell, i) for cell in cells for i in range(len(cell.runs))]
    all_runs = [cell.runs[i] for cell, i in slots]
    for indices in population_groups(all_runs):
        chunk = [slots[k] for k in indices]
        runs = [cell.runs[i] for cell, i in chunk]
        try:
            try:
                results = train_runs(runs, engine="population")
            except NotBatchable as exc:
                say(f"{runs[0].spec.task}: {len(runs)} runs one at a time ({exc})")
                results = train_runs(runs)
        except Exception as exc:
            for cell, _ in chunk:
                cell.error = cell.error or (exc, traceback.format_exc())
            continue
        for (cell, i), result in zip(chunk, results, strict=True):
            cell.results[i] = result


def _outcome(cell: _Cell) -> CellOutcome:
    """The cell's row from its runs' rows (its method's ``result``), or its error row."""
    begin = time.perf_counter()
    if cell.error is None:
        try:
            results = [r for r in cell.results if r is not None]
            result = cell.method.result(cell.spec, results)
            result.extra["engine"] = "population"
            return result_outcome(cell.key, result, "", "")
        except Exception as exc:
            cell.error = (exc, traceback.format_exc())
    error, details = cell.error
    wall = sum(r.wall_time for r in cell.results if r is not None)
    return failed_outcome(cell.key, error, wall + time.perf_counter() - begin, details)
