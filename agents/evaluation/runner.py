"""`evaluate`: run (or resume) the grid task x start factor x seed x method."""

from __future__ import annotations

import contextlib
import json
import time
import traceback
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agents.evaluation.batched import stream_batched
from agents.evaluation.cells import (
    MethodFactory,
    construct,
    construct_warm,
    plan_cells,
    registered_methods,
    warm_configs_for,
)
from agents.evaluation.config import (
    GRID,
    GRID_POINTS,
    OPTUNA,
    OPTUNA_SIMILAR,
    POLICY,
    WARM_METHODS,
    EvalConfig,
    check_training_tasks,
    fidelity_text,
)
from agents.evaluation.methods.core import Method, RunSpec
from agents.evaluation.methods.policy import PolicyMethod
from agents.evaluation.outcomes import (
    CellOutcome,
    failed_outcome,
    method_slot,
    run_cell,
    skipped_outcome,
)
from agents.evaluation.records import Key, RunStore, require_reports
from agents.evaluation.report import summarize
from agents.policy.artifact import FrozenPolicy
from agents.policy.hub import load_pretrained
from agents.stopping import GracefulStop, JobInterrupted
from hpenv.io import atomic_write_json, exclusive_lock
from hpenv.plan import DEFAULT_DECISIONS, Fidelity
from hpenv.tasks import DataNotFoundError, TaskData

#: The lock file of a report directory, held by the one process writing it.
LOCK_FILE = ".evaluate.lock"
#: The ``config.json`` entry of the evaluated policy's `FrozenPolicy.fingerprint`.
POLICY_SHA256 = "policy_sha256"


def default_out_dir() -> Path:
    return Path("logs") / f"eval-{time.strftime('%Y%m%d-%H%M%S')}"


@dataclass
class Report:
    """Where an evaluation wrote its report, and what it could not run."""

    out_dir: Path
    summary: Path
    runs: int
    errors: int
    skipped: dict[str, str]


def evaluate(
    config: EvalConfig,
    methods: Mapping[str, MethodFactory] | None = None,
    *,
    argv: Sequence[str] | None = None,
    progress: bool = True,
) -> Report:
    """Run (or resume) the evaluation grid and write the report directory.

    SIGINT and SIGTERM stop after the current run: the finished runs stay in
    ``results.csv`` and `JobInterrupted` says how to continue (``--resume``).
    One process at a time writes a report directory: it holds the directory's
    lock file (`LOCK_FILE`) until the report is written.

    With ``config.ray_address`` the cells run as Ray tasks on that cluster
    (`agents.evaluation.ray_cells`): the same cell code (`run_cell`), its rows
    appended here as each finishes; a stop cancels the cells still running.

    Args:
        config: What to run.
        methods: Baseline factories by name (default:
            `agents.evaluation.methods.METHODS`, imported now). ``policy`` is
            always the frozen policy of ``config.policy``.
        argv: The command line shown in the summary (default ``sys.argv``).
        progress: Show a tqdm bar over the grid.

    Raises:
        TrainingTaskError: A task is in the policy's training set (see
            ``include_training_tasks``).
        ValueError: Unknown method names, resuming with another policy (by content),
            other decisions or fidelities, or a ``prior_results`` folder without
            finished ``optuna`` runs.
        FileNotFoundError: A ``prior_results`` folder holds no evaluation.
        FileExistsError: ``out_dir`` already holds results and ``resume`` is off, or
            another process is writing it (`hpenv.io.LockedError`).
        hpenv.tasks.DataNotFoundError: A task's data cannot be found.
        JobInterrupted: Stopped by a signal (see above).
    """
    factories = dict(registered_methods() if methods is None else methods)
    factories.pop(POLICY, None)
    names = list(config.methods) or [POLICY, *factories]
    policy = _load_policy(config, names)
    unknown = [n for n in names if n != POLICY and n not in factories]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; available: {[POLICY, *factories]}")
    decisions = config.decisions
    if decisions is None:
        decisions = policy.metadata.decisions if policy else DEFAULT_DECISIONS
    overrides = config.fidelity_overrides()
    priors = _prior_stores(config.prior_results)  # checked before anything is written
    with _open_out_dir(config, decisions, overrides, policy) as out:  # locked until done
        store = RunStore(out)
        cells = plan_cells(names, config.tasks, config.start_lr_factors, config.seeds)
        finished = store.finished()
        todo = [c for c in cells if c not in finished]
        runner = _CellRunner(
            config=config,
            decisions=decisions,
            overrides=overrides,
            data=_load_data(sorted({c[1] for c in todo}), overrides, config),
            factories=factories,
            policy=policy,
            store=store,
            priors=priors,
        )
        _run_cells(runner, len(cells), todo, out, progress)
        summary = summarize(
            out, config, decisions, overrides, skipped=runner.skipped, argv=argv, policy=policy
        )
    errors = sum(1 for row in store.rows.values() if row["error"])
    return Report(out, summary, len(store.rows), errors, runner.skipped)


def _run_cells(
    runner: _CellRunner, total: int, todo: Sequence[Key], out: Path, progress: bool
) -> None:
    """Run and record ``todo`` (of ``total`` cells) here or on Ray, under a progress bar.

    Raises:
        JobInterrupted: SIGINT or SIGTERM: stopped after the current run.
    """
    with (
        _cell_runtime(runner.config),  # Ray first: ray.init sets a SIGTERM handler of its own
        GracefulStop("stopping after the current run (signal again to abort)") as stop,
        tqdm(
            total=total, initial=total - len(todo), unit="run", desc="evaluate",
            disable=not progress, dynamic_ncols=True,
        ) as bar,
    ):  # fmt: skip
        cells_done = _stream(runner, todo)
        try:
            for name, task, seed, start in cells_done:
                bar.set_postfix_str(f"{name} {task} seed {seed} lr x{start:g}")
                bar.update()
                if stop.requested:
                    raise _interrupted(out)
        except JobInterrupted:
            raise
        except KeyboardInterrupt:
            raise _interrupted(out) from None
        finally:
            cells_done.close()  # on Ray: cancels the cells still running


def _prior_stores(folders: Sequence[str]) -> list[RunStore]:
    """The result files of ``--prior-results``, each holding finished ``optuna`` runs.

    Raises:
        FileNotFoundError: A folder holds no evaluation (no ``runs.jsonl``).
        ValueError: A folder's results are another version's, or hold no finished
            ``optuna`` run (the priors are their best configurations).
    """
    require_reports(folders, "--prior-results")
    stores = []
    for folder in folders:
        try:
            store = RunStore(Path(folder))
        except ValueError as exc:
            raise ValueError(f"--prior-results {folder}: {exc}") from None
        if not any(key[0] == OPTUNA for key in store.finished()):
            ran = sorted({key[0] for key in store.finished()}) or "no finished runs"
            raise ValueError(
                f"--prior-results {folder}: no finished {OPTUNA} runs (it holds {ran}); the "
                f"priors are {OPTUNA}'s best configurations: give a report of "
                f"scripts/evaluate.py --methods {OPTUNA}"
            )
        stores.append(store)
    return stores


def _cell_runtime(config: EvalConfig) -> contextlib.AbstractContextManager[Any]:
    """A Ray connection when the cells run on Ray (``ray_address``), else nothing."""
    if config.ray_address is None:
        return contextlib.nullcontext()
    from agents.cluster import ray_session

    return ray_session(config.ray_address)


def _stream(runner: _CellRunner, todo: Sequence[Key]) -> Generator[Key, None, None]:
    """The cells of ``todo`` as they are recorded: here in order, or as Ray tasks finish."""
    if runner.config.ray_address is None:
        return runner.stream(todo)
    from agents.evaluation.ray_cells import stream_on_ray

    return stream_on_ray(runner, todo)


def _interrupted(out: Path) -> JobInterrupted:
    return JobInterrupted(
        f"interrupted; finished runs are in {out / 'results.csv'}; continue with: "
        f"python scripts/evaluate.py --out-dir {out} --resume"
    )


def _load_policy(config: EvalConfig, names: Sequence[str]) -> FrozenPolicy | None:
    """The policy to evaluate (the shipped one by default), checked against the tasks, with
    the deployment flags the config chooses (`FrozenPolicy.with_deploy_flags`)."""
    if POLICY not in names and config.policy is None:
        return None
    policy = load_pretrained(config.policy)  # None: the shipped default
    check_training_tasks(config.tasks, policy.metadata.tasks, config.include_training_tasks)
    return policy.with_deploy_flags(
        config.rise_guard,
        config.probe_start,
        config.probe_rollback,
        config.restart,
        config.fall_hold,
    )


@contextlib.contextmanager
def _open_out_dir(
    config: EvalConfig,
    decisions: int,
    overrides: Mapping[str, Fidelity],
    policy: FrozenPolicy | None,
) -> Iterator[Path]:
    """The report directory, created, and this process's alone until the block ends.

    Refuses a directory another process is writing (`LockedError`, a
    `FileExistsError`), one holding results unless resuming, and a resume that
    changes what its runs mean (`_write_config`).
    """
    out = Path(config.out_dir) if config.out_dir else default_out_dir()
    out.mkdir(parents=True, exist_ok=True)
    busy = f"{out} is in use by another evaluation; wait until it ends or use another out_dir"
    with exclusive_lock(out / LOCK_FILE, busy):
        store_exists = (out / "results.csv").is_file() or (out / "runs.jsonl").is_file()
        if store_exists and not config.resume:
            raise FileExistsError(
                f"{out} already holds an evaluation: continue it with --resume (resume=True) "
                "or pick another out_dir"
            )
        _write_config(out, config, decisions, overrides, policy)
        yield out


@dataclass
class _CellRunner:
    """Runs one cell of the grid with its method and records the result."""

    config: EvalConfig
    decisions: int
    overrides: Mapping[str, Fidelity]
    data: Mapping[str, TaskData]
    factories: Mapping[str, MethodFactory]
    policy: FrozenPolicy | None
    store: RunStore
    priors: Sequence[RunStore] = ()
    skipped: dict[str, str] = field(default_factory=dict)
    _instances: dict[tuple[str, str], Method] = field(default_factory=dict)

    def method(self, name: str, task: str) -> Method:
        """One instance per method (per task for the warm-started Optuna methods)."""
        slot = method_slot(name, task)
        if slot not in self._instances:
            if name == POLICY:
                assert self.policy is not None
                self._instances[slot] = PolicyMethod(self.policy)
            elif name in WARM_METHODS:
                configs = warm_configs_for(task, self.store, self.priors)
                settings = {"prior_specs": self.specs(configs)} if name == OPTUNA_SIMILAR else {}
                self._instances[slot] = construct_warm(self.factories[name], configs, **settings)
            elif name == GRID and self.config.grid_points != GRID_POINTS:
                self._instances[slot] = construct(
                    self.factories[name], points=self.config.grid_points
                )
            else:
                self._instances[slot] = self.factories[name]()
        return self._instances[slot]

    def spec(self, key: Key) -> RunSpec:
        """The cell's `RunSpec` (with its task's data, if loaded)."""
        _, task, seed, start = key
        return RunSpec(
            task=task,
            seed=seed,
            fidelity=self.overrides.get(task),
            decisions=self.decisions,
            start_lr_factor=start,
            device=self.config.device,
            data_dir=self.config.data_dir,
            optimizer=self.config.optimizer,
            test_from_val=self.config.test_from_val,
            data=self.data.get(task),
        )

    def specs(self, tasks: Iterable[str]) -> dict[str, RunSpec]:
        """A cell of each task (seed 0), for describing prior tasks (`optuna_similar`)."""
        return {task: self.spec((OPTUNA, task, 0, 1.0)) for task in tasks}

    def prepare(self, key: Key) -> tuple[Method, RunSpec] | CellOutcome:
        """The cell's method and spec; or its outcome, when the method cannot be built."""
        name, task, _, _ = key
        begin = time.perf_counter()
        try:
            return self.method(name, task), self.spec(key)
        except ImportError as exc:  # a lazy factory's optional package is missing
            return skipped_outcome(key, exc)
        except Exception as exc:
            return failed_outcome(key, exc, time.perf_counter() - begin, traceback.format_exc())

    def record(self, outcome: CellOutcome) -> None:
        """Append a cell's row and record (this process is the only writer).

        A skipped method is noted (its later cells are neither run nor recorded).
        """
        name = outcome.key[0]
        if outcome.skipped:
            self.skipped.setdefault(name, outcome.skipped)
        elif name not in self.skipped and outcome.row is not None:
            assert outcome.record is not None
            self.store.append(outcome.row, outcome.record)

    def run(self, key: Key) -> None:
        """Run one cell here and record it (`prepare`, `run_cell`, `record`)."""
        if key[0] in self.skipped:
            return
        prepared = self.prepare(key)
        self.record(prepared if isinstance(prepared, CellOutcome) else run_cell(*prepared, key))

    def stream(self, todo: Sequence[Key]) -> Generator[Key, None, None]:
        """Run and record ``todo`` in this process; yields each cell when recorded.

        With ``engine`` ``sequential``: one cell after another, in order. Otherwise
        each task's batchable cells train together as one population
        (`agents.evaluation.batched.stream_batched`), the others one at a time.
        """
        if self.config.engine != "sequential":
            yield from stream_batched(
                self,
                todo,
                data_for=lambda task: self.spec((POLICY, task, 0, 1.0)).load_data(),
                engine=self.config.engine,
                device=self.config.device,
            )
            return
        for key in todo:
            self.run(key)
            yield key


#: Settings that change what an evaluation's runs mean (a resume must keep them), with the
#: value of reports written before each existed.
_RUN_SETTINGS: dict[str, Any] = {
    "grid_points": GRID_POINTS,
    "optimizer": None,
    "test_from_val": False,
    "rise_guard": "policy",
    "probe_start": "policy",
    "probe_rollback": "policy",
    "restart": "policy",
    "fall_hold": "policy",
}


def _write_config(
    out: Path,
    config: EvalConfig,
    decisions: int,
    overrides: Mapping[str, Fidelity],
    policy: FrozenPolicy | None,
) -> None:
    """Write ``config.json``; refuse a resume with another policy, decisions, optimizer,
    grid, rise guard or fidelities (the runs already there would not be comparable with the
    new ones).
    """
    path = out / "config.json"
    fidelity = {t: fidelity_text(t, overrides) for t in config.tasks}
    fingerprint = policy.fingerprint() if policy is not None else None
    if path.is_file():
        old = json.loads(path.read_text())
        for name, default in _RUN_SETTINGS.items():  # files older than a setting: its default
            ran_with, now = old.get("config", {}).get(name, default), getattr(config, name)
            if ran_with != now:
                raise ValueError(
                    f"{out} was run with {name}={ran_with}, not {now}: use another out_dir"
                )
        _check_same_policy(out, old, config, fingerprint)
        fingerprint = fingerprint or old.get(POLICY_SHA256)
        if old.get("decisions") != decisions:
            raise ValueError(
                f"{out} was run with decisions={old.get('decisions')}, not {decisions}: "
                "its runs would not be comparable; use another out_dir"
            )
        for task, text in old.get("fidelity", {}).items():
            if task in fidelity and fidelity[task] != text:
                raise ValueError(
                    f"{out} ran {task} at {text}, not {fidelity[task]}: use another out_dir"
                )
            fidelity.setdefault(task, text)
    written = {"config": config.to_dict(), "decisions": decisions, "fidelity": fidelity}
    if fingerprint is not None:
        written[POLICY_SHA256] = fingerprint
    atomic_write_json(written, path)


def _check_same_policy(
    out: Path, old: Mapping[str, Any], config: EvalConfig, fingerprint: str | None
) -> None:
    """Refuse to resume ``out`` with a policy other than the one it evaluated.

    Policies compare by content (`FrozenPolicy.fingerprint`), so a shipped name and
    its file, or a copy, are the same policy. A folder written before fingerprints
    were recorded compares by the ``policy`` option it was run with, and only when
    it holds rows of the policy; resumed with the same option, it records the
    fingerprint from then on.
    """
    if fingerprint is None:
        return  # no policy now: nothing is run under its name
    ran_with = old.get("config", {}).get("policy")
    recorded = old.get(POLICY_SHA256)
    if recorded is not None:
        if recorded == fingerprint:
            return
        why = f"sha256 {recorded[:12]}, not {fingerprint[:12]}"
    elif ran_with == config.policy or not _has_policy_rows(out):
        return
    else:
        why = "its policy was recorded by name only"
    raise ValueError(
        f"{out} evaluated the policy {ran_with or '(the shipped default)'}, not "
        f"{config.policy or '(the shipped default)'} ({why}): its rows would be reported "
        "under the new policy; resume with the same policy, or use another out_dir"
    )


def _has_policy_rows(out: Path) -> bool:
    return any(key[0] == POLICY for key in RunStore(out).rows)


def _load_data(
    tasks: Sequence[str], overrides: Mapping[str, Fidelity], config: EvalConfig
) -> dict[str, TaskData]:
    """Every task's data, loaded once; all missing tasks reported together."""
    data, missing = {}, {}
    for task in tasks:
        try:
            data[task] = RunSpec(
                task,
                0,
                fidelity=overrides.get(task),
                data_dir=config.data_dir,
                test_from_val=config.test_from_val,
            ).load_data()
        except DataNotFoundError as exc:
            missing[task] = exc.summary
    if missing:
        lines = "\n".join(f"  {t}: {why}" for t, why in missing.items())
        raise DataNotFoundError(
            f"no data for {sorted(missing)}:\n{lines}\n"
            "Point HPENV_DATA_DIR (or data_dir) at the datasets, or leave these tasks out."
        )
    return data
