"""The harness's cells as Ray tasks: submitted at once, recorded as they finish, lost ones rerun.

`agents.evaluation.runner.evaluate` uses this when ``EvalConfig.ray_address``
is set (``--ray-address HOST:6379``, or ``local``):

- Each cell is one Ray task asking for ``ray_cpus_per_cell`` CPUs and
  ``ray_gpus_per_cell`` GPUs, spread over the cluster's nodes. It runs
  `agents.evaluation.outcomes.run_cell`, the code the in-process path runs, and
  returns the `CellOutcome` (row and record); this process, the only writer,
  appends it to ``results.csv`` and ``runs.jsonl`` as it arrives
  (`_CellRunner.record`), so the report directory stays resumable.
- Data: each task's `TaskData` is loaded once here (as in process) and put in
  Ray's object store once; a cell gets the reference, which Ray resolves on
  its worker (one transfer per node; workers never read the data directory or
  the hub). Each method object (the frozen policy with it) is put there once.
- A cell lost with its worker or node is rerun by Ray (``max_retries =
  ray_retries``); one still lost after that (`agents.cluster.lost_errors`) is
  submitted again from here, up to ``ray_retries`` times, then recorded as an
  error row (``--resume`` runs it again). Exceptions of the method itself are
  the cell's error row, as in process.
- Warm-started cells (``optuna_warm``, ``optuna_similar``) are submitted when
  no ``optuna`` cell is left to finish: their warm start reads the finished
  ``optuna`` runs of the other tasks, as in process (where they run last).
- A method that starts Ray work of its own (PBT's Ray Tune) starts it from
  inside its cell's task, on the same cluster: its members need free CPUs
  beyond the cells'.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Generator, Mapping, Sequence
from typing import Any, Protocol

import torch

from agents.cluster import describe, lost_errors
from agents.evaluation.config import OPTUNA, WARM_METHODS, EvalConfig
from agents.evaluation.methods.core import Method, RunSpec
from agents.evaluation.outcomes import CellOutcome, failed_outcome, method_slot, run_cell
from agents.evaluation.records import Key
from hpenv.tasks import TaskData


class _Runner(Protocol):
    """What `stream_on_ray` uses of `agents.evaluation.runner._CellRunner` (which imports this
    module, never the other way round)."""

    config: EvalConfig
    data: Mapping[str, TaskData]
    skipped: dict[str, str]

    def prepare(self, key: Key) -> tuple[Method, RunSpec] | CellOutcome: ...

    def record(self, outcome: CellOutcome) -> None: ...


def stream_on_ray(runner: _Runner, todo: Sequence[Key]) -> Generator[Key, None, None]:
    """Run ``todo`` as Ray tasks (Ray connected); yields each cell once it is recorded.

    Closing the generator (a stop) cancels the cells still running.
    """
    import ray

    config = runner.config
    threads = max(1, int(config.ray_cpus_per_cell))
    remote = ray.remote(_cell_task).options(
        num_cpus=config.ray_cpus_per_cell,
        num_gpus=config.ray_gpus_per_cell,
        max_retries=config.ray_retries,
        retry_exceptions=False,  # only lost workers and nodes: a method's error is its row
        scheduling_strategy="SPREAD",
    )
    data = {task: ray.put(task_data) for task, task_data in runner.data.items()}
    methods: dict[tuple[str, str], Any] = {}
    in_flight: dict[Any, tuple[Key, int]] = {}

    def submit(key: Key, attempt: int) -> CellOutcome | None:
        """Start cell ``key``; its outcome now if it cannot start (skipped, unbuildable)."""
        name, task = key[0], key[1]
        if name in runner.skipped:
            return CellOutcome(key, skipped=runner.skipped[name])
        prepared = runner.prepare(key)
        if isinstance(prepared, CellOutcome):
            return prepared
        method, spec = prepared
        slot = method_slot(name, task)
        if slot not in methods:
            methods[slot] = ray.put(method)
        light = dataclasses.replace(spec, data=None)
        in_flight[remote.remote(methods[slot], light, data[task], key, threads)] = (key, attempt)
        return None

    lost = lost_errors()
    waiting = [key for key in todo if key[0] in WARM_METHODS]
    first = [key for key in todo if key[0] not in WARM_METHODS]
    try:
        for key in first:
            outcome = submit(key, 0)
            if outcome is not None:
                runner.record(outcome)
                yield key
        while in_flight or waiting:
            if waiting and not any(key[0] == OPTUNA for key, _ in in_flight.values()):
                for key in waiting:
                    outcome = submit(key, 0)
                    if outcome is not None:
                        runner.record(outcome)
                        yield key
                waiting = []
                continue
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            key, attempt = in_flight.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
            except lost as exc:
                if attempt < config.ray_retries:
                    print(f"cell {key} lost ({describe(exc)}); running it again", file=sys.stderr)
                    outcome = submit(key, attempt + 1)
                    if outcome is None:
                        continue
                else:
                    outcome = failed_outcome(key, exc, 0.0, f"lost {attempt + 1} times")
            runner.record(outcome)
            yield key
    finally:
        for ref in in_flight:
            with contextlib.suppress(Exception):  # finished meanwhile, or Ray shutting down
                ray.cancel(ref, force=True)


def _cell_task(method: Method, spec: RunSpec, data: TaskData, key: Key, threads: int) -> Any:
    """Runs on a Ray worker: one cell, as `run_cell` runs it in process."""
    torch.set_num_threads(threads)
    return run_cell(method, dataclasses.replace(spec, data=data), key)
