"""The evaluation harness: the frozen policy against every baseline users would pick.

`evaluate` runs the grid task x start factor x seed x method on the shared
`agents.baselines.core.RunSpec` cells (same task, seed, budget, intervals and
starting hyperparameters for every method) and writes a report directory:

- ``results.csv``: one row per run (columns below), appended and fsynced as
  soon as the run finishes, rewritten atomically at the end with the derived
  columns filled in;
- ``runs.jsonl``: one JSON object per run (``method``, ``task``, ``seed``,
  ``start_lr_factor``, ``trajectory``, ``extra``, ``error``), appended the
  same way (non-finite numbers are written as ``null``);
- ``config.json``: the configuration, resolved decisions and fidelities;
- ``summary.md``: command line and machine, tables and statistics;
- ``curves_<task>.png`` (mean validation accuracy against progress, per
  method) and ``lr_<task>.png`` (learning-rate trajectories of the policy
  against the other methods, log scale);
- ``tb/<method>/``: TensorBoard scalars per task (final validation accuracy
  per seed at step = seed; the mean learning curve at step = percent progress).

``resume`` reads both files and skips every finished cell (a cell is finished
when ``results.csv`` has its row without an error and ``runs.jsonl`` has its
record; a cell that failed is run again; the last row of a cell wins). The
report covers every run recorded in the directory.

Columns of ``results.csv``:

- ``method``, ``task``, ``seed``, ``start_lr_factor``: the cell (initial
  learning rate = task default x ``start_lr_factor``);
- ``val_loss``, ``val_accuracy``: final validation metrics (NaN if diverged);
- ``test_accuracy``: final test accuracy (NaN without a test split or if diverged);
- ``best_val_accuracy``: best validation accuracy after any interval;
- ``samples``: training samples of the reported run; ``compute_samples``:
  training samples spent in total (all trials of a search method);
- ``compute_multiple``: ``compute_samples / samples`` (1 for single-run methods);
- ``wall_time``: seconds for the whole method; ``diverged``: the reported run diverged;
- ``error``: empty, or the exception that ended the cell (its metrics are NaN);
- ``samples_to_target`` (derived): training samples of the reported run at the
  first trajectory point whose validation accuracy is >= the target, where the
  target = ``target_fraction`` x the mean final validation accuracy of
  ``static`` on the same task and start factor (diverged runs count as 0);
  NaN if never reached, if ``static`` was not run, or if its mean is not > 0;
- ``lr_log10_distance_to_grid`` (derived, policy rows only):
  ``|mean log10 lr of the policy's run - log10 grid's extra["chosen_lr"]|`` for
  the same task, seed and start factor; the mean weights each interval's
  learning rate by the samples trained with it. NaN without a grid row.

Statistics (all on the *score*: final validation accuracy, 0 for a diverged or
non-finite run; failed cells are left out): mean and sample standard deviation
(``ddof=1``) over seeds per task and start factor, and pooled over every run
of a method; the policy against each baseline on the runs paired by (task,
seed, start factor), with differences ``d = policy - baseline``: paired
t-test (`scipy.stats.ttest_rel`, two-sided; all ``d == 0`` gives t = 0, p = 1),
Wilcoxon signed-rank test (`scipy.stats.wilcoxon`, two-sided, zero
differences discarded, scipy's default exact/asymptotic choice; all
``d == 0`` gives W = 0, p = 1), and win/tie/loss counts (tie: ``|d| <
1e-4``; win: ``d >= 1e-4``; loss: ``d <= -1e-4``).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib
import inspect
import itertools
import json
import math
import os
import platform
import shlex
import shutil
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from tqdm import tqdm

from agents.baselines.core import Method, MethodResult, RunSpec
from hpenv.env import Fidelity
from hpenv.io import atomic_open, atomic_write_json
from hpenv.tasks import DataNotFoundError, TaskData, get_task

POLICY = "policy"
STATIC = "static"
GRID = "grid"
OPTUNA = "optuna"
OPTUNA_WARM = "optuna_warm"
#: |policy - baseline| below this is a tie.
TIE_TOLERANCE = 1e-4
#: Offline tasks held out from the shipped policy's training suite (synthetic, digits).
DEFAULT_TASKS: tuple[str, ...] = ("mnist", "breast_cancer", "wine")

#: A method factory: ``factory()`` (``factory(warm_configs=...)`` for ``optuna_warm``).
MethodFactory = Callable[..., Method]
#: A cell: (method, task, seed, start_lr_factor).
Key = tuple[str, str, int, float]

RAW_COLUMNS: tuple[str, ...] = (
    "method",
    "task",
    "seed",
    "start_lr_factor",
    "val_loss",
    "val_accuracy",
    "test_accuracy",
    "best_val_accuracy",
    "samples",
    "compute_samples",
    "compute_multiple",
    "wall_time",
    "diverged",
    "error",
)
DERIVED_COLUMNS: tuple[str, ...] = ("samples_to_target", "lr_log10_distance_to_grid")
COLUMNS: tuple[str, ...] = RAW_COLUMNS + DERIVED_COLUMNS
_INT_COLUMNS = ("seed", "samples", "compute_samples")
_STR_COLUMNS = ("method", "task", "error")
#: Common progress grid of the plotted and logged learning curves (percent 0..100).
PROGRESS_GRID = np.linspace(0.0, 1.0, 101)


def _help(text: str, **kwargs: Any) -> Any:
    return field(metadata={"help": text}, **kwargs)


class TrainingTaskError(ValueError):
    """An evaluation task is one the policy was trained on."""


@dataclass(frozen=True)
class EvalConfig:
    """Configuration of one evaluation (every field is a CLI flag)."""

    policy: str | None = _help(
        "frozen policy artifact (.pt) (default: the shipped agents/pretrained policy)",
        default=None,
    )
    tasks: tuple[str, ...] = _help("tasks to evaluate on", default=DEFAULT_TASKS)
    seeds: tuple[int, ...] = _help("seeds of every cell", default=(0, 1, 2, 3, 4))
    methods: tuple[str, ...] = _help(
        "methods to run (default: every registered baseline and 'policy')", default=()
    )
    start_lr_factors: tuple[float, ...] = _help(
        "initial learning rate = task default x factor (add e.g. 0.01,30 for rescue runs)",
        default=(1.0,),
    )
    fidelity: tuple[str, ...] = _help(
        "per-task run size overrides TASK:SUBSET:EPOCHS, e.g. imdb:1.0:2 "
        "(default: agents/suite.py FIDELITY; empty SUBSET = whole split)",
        default=(),
    )
    decisions: int | None = _help(
        "decision points per run (default: the policy's training value, else 20)", default=None
    )
    target_fraction: float = _help(
        "samples-to-target threshold = this x static's mean final val accuracy", default=0.95
    )
    device: str = _help("training device", default="cpu")
    data_dir: str | None = _help("local data directory (default HPENV_DATA_DIR)", default=None)
    out_dir: str | None = _help("report directory (default logs/eval-<time>)", default=None)
    resume: bool = _help(
        "continue the evaluation in out_dir, skipping finished runs", default=False
    )
    include_training_tasks: bool = _help(
        "allow tasks the policy was trained on (refused otherwise)", default=False
    )

    def __post_init__(self) -> None:
        for name in ("tasks", "seeds", "start_lr_factors"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{name} is empty")
            if len(set(values)) != len(values):
                raise ValueError(f"{name} lists a value twice: {values}")
        for task in self.tasks:
            get_task(task)  # UnknownTaskError (a ValueError) lists the registered ones
        if any(not (f > 0 and math.isfinite(f)) for f in self.start_lr_factors):
            raise ValueError(f"start_lr_factors must be positive, got {self.start_lr_factors}")
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods lists a name twice: {self.methods}")
        if not 0 < self.target_fraction <= 1:
            raise ValueError(f"target_fraction must be in (0, 1], got {self.target_fraction}")
        if self.decisions is not None and self.decisions < 1:
            raise ValueError(f"decisions must be >= 1, got {self.decisions}")
        if self.resume and self.out_dir is None:
            raise ValueError("resume needs out_dir: the report directory to continue")
        if self.policy is None and (not self.methods or POLICY in self.methods):
            raise ValueError("policy (the artifact path) is required to run the 'policy' method")
        self.fidelity_overrides()

    def fidelity_overrides(self) -> dict[str, Fidelity]:
        """The ``TASK:SUBSET:EPOCHS`` overrides, parsed."""
        return dict(parse_fidelity(spec) for spec in self.fidelity)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_fidelity(spec: str) -> tuple[str, Fidelity]:
    """``"imdb:0.2:1"`` -> ``("imdb", Fidelity(subset=0.2, budget_epochs=1.0))``.

    An empty SUBSET keeps the whole training split; an empty EPOCHS keeps the
    task's default budget.
    """
    parts = spec.split(":")
    try:
        name, subset_text, epochs_text = parts
        subset = float(subset_text) if subset_text.strip() else None
        epochs = float(epochs_text) if epochs_text.strip() else None
    except ValueError:
        raise ValueError(
            f"fidelity {spec!r}: expected TASK:SUBSET:EPOCHS, e.g. imdb:1.0:2"
        ) from None
    if subset is not None and not 0 < subset <= 1:
        raise ValueError(f"fidelity {spec!r}: SUBSET must be in (0, 1]")
    if epochs is not None and not epochs > 0:
        raise ValueError(f"fidelity {spec!r}: EPOCHS must be > 0")
    get_task(name)
    return name, Fidelity(subset=subset, budget_epochs=epochs)


def check_training_tasks(
    tasks: Sequence[str], policy_tasks: Sequence[str], include_training_tasks: bool
) -> None:
    """Refuse tasks the policy was trained on unless ``include_training_tasks``.

    Names compare as they are: ``synthetic`` in a training suite means the
    generated family, and it only collides with the registered ``synthetic`` task.

    Raises:
        TrainingTaskError: Some of ``tasks`` are in ``policy_tasks``.
    """
    seen = [t for t in tasks if t in set(policy_tasks)]
    if seen and not include_training_tasks:
        raise TrainingTaskError(
            f"tasks {seen} are in the policy's training set ({', '.join(policy_tasks)}): "
            "scores on them measure fit, not generalisation to new tasks. Evaluate on "
            "held-out tasks, or pass --include-training-tasks (include_training_tasks=True) "
            "to evaluate on them anyway."
        )


# ------------------------------------------------------------------ statistics


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation (``ddof=1``) of the finite values."""

    n: int
    mean: float
    std: float

    def format(self, digits: int = 4) -> str:
        if self.n == 0:
            return "n/a"
        if math.isnan(self.std):
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


def mean_std(values: Iterable[float]) -> Spread:
    """`Spread` of the finite values (NaN mean with none, NaN std with fewer than two)."""
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return Spread(0, math.nan, math.nan)
    std = float(x.std(ddof=1)) if x.size > 1 else math.nan
    return Spread(int(x.size), float(x.mean()), std)


def final_score(val_accuracy: float, diverged: bool) -> float:
    """Final validation accuracy as compared: 0 for a diverged or non-finite run."""
    return 0.0 if diverged or not math.isfinite(val_accuracy) else float(val_accuracy)


def win_tie_loss(
    policy: ArrayLike, baseline: ArrayLike, tolerance: float = TIE_TOLERANCE
) -> tuple[int, int, int]:
    """Counts of ``d = policy - baseline``: win ``d >= tol``, tie ``|d| < tol``, loss ``d <= -tol``.

    ``tol`` is `TIE_TOLERANCE` (1e-4) unless given.
    """
    d = np.asarray(policy, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    wins = int((d >= tolerance).sum())
    losses = int((d <= -tolerance).sum())
    return wins, len(d) - wins - losses, losses


@dataclass(frozen=True)
class PairedComparison:
    """The policy against one baseline on paired runs (``d = policy - baseline``)."""

    n: int
    mean_difference: float
    t_statistic: float
    t_pvalue: float
    wilcoxon_statistic: float
    wilcoxon_pvalue: float
    wins: int
    ties: int
    losses: int


def paired_comparison(
    policy: ArrayLike, baseline: ArrayLike, tolerance: float = TIE_TOLERANCE
) -> PairedComparison:
    """Paired t-test, Wilcoxon signed-rank test and win/tie/loss of two paired samples.

    - t-test: `scipy.stats.ttest_rel` (two-sided); NaN with fewer than two
      pairs; t = 0, p = 1 when every difference is exactly zero (scipy gives
      NaN); constant non-zero differences give scipy's t = ±inf, p = 0.
    - Wilcoxon: `scipy.stats.wilcoxon` (two-sided, ``zero_method="wilcox"``:
      zero differences are discarded; W = the smaller of the positive and
      negative rank sums); W = 0, p = 1 when every difference is zero; NaN
      without pairs.
    - win/tie/loss: see `win_tie_loss`.
    """
    from scipy import stats

    a = np.asarray(policy, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired samples need equal 1-d shapes, got {a.shape} and {b.shape}")
    n = int(a.size)
    wins, ties, losses = win_tie_loss(a, b, tolerance)
    if n == 0:
        nan = math.nan
        return PairedComparison(0, nan, nan, nan, nan, nan, 0, 0, 0)
    d = a - b
    all_zero = bool(np.all(d == 0))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if n < 2:
            t, t_p = math.nan, math.nan
        elif all_zero:
            t, t_p = 0.0, 1.0
        else:
            result = stats.ttest_rel(a, b)
            t, t_p = float(result.statistic), float(result.pvalue)
        if all_zero:
            w, w_p = 0.0, 1.0
        else:
            w_result = stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
            w, w_p = float(w_result.statistic), float(w_result.pvalue)
    return PairedComparison(n, float(d.mean()), t, t_p, w, w_p, wins, ties, losses)


def samples_to_target(trajectory: Sequence[Mapping[str, Any]], target: float) -> float:
    """``samples`` of the first point whose ``val_accuracy >= target``.

    NaN if no point reaches it or the target is NaN.
    """
    if not math.isfinite(target):
        return math.nan
    for point in trajectory:
        accuracy = _float(point.get("val_accuracy"))
        if math.isfinite(accuracy) and accuracy >= target:
            return _float(point.get("samples"))
    return math.nan


def mean_log10_lr(trajectory: Sequence[Mapping[str, Any]]) -> float:
    """Mean log10 learning rate over the intervals trained, weighted by their samples.

    Point ``k >= 1`` of a trajectory carries the learning rate that trained
    interval ``k`` (from point ``k-1``'s samples to its own); point 0 is the
    untrained model. Equal weights if no interval has samples.
    """
    if len(trajectory) < 2:
        lrs = [_float(p.get("lr")) for p in trajectory]
        finite = [math.log10(x) for x in lrs if math.isfinite(x) and x > 0]
        return float(np.mean(finite)) if finite else math.nan
    logs, weights = [], []
    for before, point in itertools.pairwise(trajectory):
        lr = _float(point.get("lr"))
        if not (math.isfinite(lr) and lr > 0):
            continue
        logs.append(math.log10(lr))
        weights.append(max(0.0, _float(point.get("samples")) - _float(before.get("samples"))))
    if not logs:
        return math.nan
    w = np.asarray(weights)
    if not np.isfinite(w).all() or w.sum() <= 0:
        w = np.ones(len(logs))
    return float(np.average(logs, weights=w))


def lr_log10_distance(trajectory: Sequence[Mapping[str, Any]], chosen_lr: float) -> float:
    """``|mean_log10_lr(trajectory) - log10(chosen_lr)|`` (NaN without a positive ``chosen_lr``)."""
    if not (math.isfinite(chosen_lr) and chosen_lr > 0):
        return math.nan
    return abs(mean_log10_lr(trajectory) - math.log10(chosen_lr))


# ------------------------------------------------------------------ storage


def _float(value: Any) -> float:
    if value is None or value == "":
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _jsonable(obj: Any) -> Any:
    """Plain JSON values: non-finite floats become null, numpy and tuples become lists."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, np.ndarray | torch.Tensor):
        return _jsonable(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_jsonable(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    return str(obj)


def _append_line(path: Path, line: str) -> None:
    """Append one line, flushed and fsynced; repairs a torn last line first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")
        fh.write(line.encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())


def _csv_line(values: Sequence[Any]) -> str:
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _parse_row(raw: Mapping[str, str | None]) -> dict[str, Any] | None:
    """A typed results row, or None for a torn or foreign line."""
    if any(raw.get(c) is None for c in COLUMNS):
        return None
    try:
        row: dict[str, Any] = {}
        for column in COLUMNS:
            text = raw[column] or ""
            if column in _STR_COLUMNS:
                row[column] = text
            elif column in _INT_COLUMNS:
                row[column] = int(text) if text else 0
            elif column == "diverged":
                row[column] = text.strip().lower() in ("true", "1")
            else:
                row[column] = _float(text)
        if not row["method"] or not row["task"]:
            return None
        return row
    except ValueError:
        return None


def row_key(row: Mapping[str, Any]) -> Key:
    return (
        str(row["method"]),
        str(row["task"]),
        int(row["seed"]),
        float(row["start_lr_factor"]),
    )


class RunStore:
    """``results.csv`` and ``runs.jsonl`` of a report directory (last entry of a cell wins)."""

    def __init__(self, out: Path) -> None:
        self.results_path = out / "results.csv"
        self.runs_path = out / "runs.jsonl"
        self.rows: dict[Key, dict[str, Any]] = {}
        self.records: dict[Key, dict[str, Any]] = {}
        self.load()

    def load(self) -> None:
        self.rows, self.records = {}, {}
        if self.results_path.is_file():
            with open(self.results_path, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                if reader.fieldnames is not None and tuple(reader.fieldnames) != COLUMNS:
                    raise ValueError(
                        f"{self.results_path} has columns {reader.fieldnames}, expected "
                        f"{list(COLUMNS)}: it was written by another version; use a new out_dir"
                    )
                for raw in reader:
                    row = _parse_row(raw)
                    if row is not None:
                        self.rows[row_key(row)] = row
        if self.runs_path.is_file():
            with open(self.runs_path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        record = json.loads(line)
                        self.records[row_key(record)] = record
                    except (ValueError, KeyError, TypeError):
                        continue  # a torn last line

    def finished(self) -> set[Key]:
        """Cells with an error-free row and a record."""
        return {k for k, row in self.rows.items() if not row["error"] and k in self.records}

    def append(self, row: dict[str, Any], record: dict[str, Any]) -> None:
        """Record one run: its JSON record first, then its CSV row (each fsynced)."""
        key = row_key(row)
        _append_line(self.runs_path, json.dumps(_jsonable(record), sort_keys=True) + "\n")
        if not self.results_path.is_file() or self.results_path.stat().st_size == 0:
            _append_line(self.results_path, _csv_line(COLUMNS))
        _append_line(self.results_path, _csv_line([_cell(row.get(c, "")) for c in COLUMNS]))
        self.rows[key], self.records[key] = row, record

    def rewrite(self) -> None:
        """Rewrite both files atomically, one entry per cell."""
        with atomic_open(self.results_path, "w") as fh:
            fh.write(_csv_line(COLUMNS))
            for row in self.rows.values():
                fh.write(_csv_line([_cell(row.get(c, "")) for c in COLUMNS]))
        with atomic_open(self.runs_path, "w") as fh:
            for key, record in self.records.items():
                if key in self.rows:
                    fh.write(json.dumps(_jsonable(record), sort_keys=True) + "\n")


def result_row(result: MethodResult, error: str = "") -> dict[str, Any]:
    """The ``results.csv`` row of one run (derived columns still empty)."""
    samples = int(result.samples)
    return {
        "method": result.method,
        "task": result.task,
        "seed": int(result.seed),
        "start_lr_factor": float(result.start_lr_factor),
        "val_loss": float(result.val_loss),
        "val_accuracy": float(result.val_accuracy),
        "test_accuracy": float(result.test_accuracy),
        "best_val_accuracy": float(result.best_val_accuracy),
        "samples": samples,
        "compute_samples": int(result.compute_samples),
        "compute_multiple": result.compute_samples / samples if samples > 0 else math.nan,
        "wall_time": float(result.wall_time),
        "diverged": bool(result.diverged),
        "error": error,
        "samples_to_target": math.nan,
        "lr_log10_distance_to_grid": math.nan,
    }


def _failed_result(key: Key, wall_time: float) -> MethodResult:
    method, task, seed, start = key
    nan = math.nan
    return MethodResult(method, task, seed, start, nan, nan, nan, nan, 0, 0, wall_time, False)


# ------------------------------------------------------------------ the grid


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
    """``agents.baselines.METHODS``, imported when needed."""
    registry = getattr(importlib.import_module("agents.baselines"), "METHODS", None)
    if registry is None:
        raise RuntimeError(
            "agents.baselines.METHODS (the baseline registry) is not available in this "
            "checkout; pass the method factories explicitly"
        )
    return registry


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

    Args:
        config: What to run.
        methods: Baseline factories by name (default: `agents.baselines.METHODS`,
            imported now). ``policy`` is always the frozen policy of ``config.policy``.
        argv: The command line shown in the summary (default ``sys.argv``).
        progress: Show a tqdm bar over the grid.

    Raises:
        TrainingTaskError: A task is in the policy's training set (see
            ``include_training_tasks``).
        ValueError: Unknown method names, or resuming with other decisions or fidelities.
        FileExistsError: ``out_dir`` already holds results and ``resume`` is off.
        hpenv.tasks.DataNotFoundError: A task's data cannot be found.
    """
    from agents.baselines.policy import PolicyMethod
    from agents.policy import FrozenPolicy, load_policy
    from agents.pretrained import DEFAULT_POLICY

    factories = dict(registered_methods() if methods is None else methods)
    factories.pop(POLICY, None)
    names = list(config.methods) or [POLICY, *factories]
    policy: FrozenPolicy | None = None
    policy_path = config.policy or (str(DEFAULT_POLICY) if POLICY in names else None)
    if policy_path is not None:
        policy = load_policy(policy_path)
        check_training_tasks(config.tasks, policy.metadata.tasks, config.include_training_tasks)
    unknown = [n for n in names if n != POLICY and n not in factories]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; available: {[POLICY, *factories]}")
    if POLICY in names and policy is None:
        raise ValueError("the 'policy' method needs config.policy")
    decisions = config.decisions
    if decisions is None:
        decisions = int(policy.metadata.env_config.get("decisions", 20)) if policy else 20
    overrides = config.fidelity_overrides()

    out = Path(config.out_dir) if config.out_dir else default_out_dir()
    store_exists = (out / "results.csv").is_file() or (out / "runs.jsonl").is_file()
    if store_exists and not config.resume:
        raise FileExistsError(
            f"{out} already holds an evaluation: continue it with --resume (resume=True) "
            "or pick another out_dir"
        )
    out.mkdir(parents=True, exist_ok=True)
    _write_config(out, config, decisions, overrides)
    store = RunStore(out)

    cells = plan_cells(names, config.tasks, config.start_lr_factors, config.seeds)
    finished = store.finished()
    todo = [c for c in cells if c not in finished]
    data = _load_data(sorted({c[1] for c in todo}), overrides, config.data_dir)

    instances: dict[tuple[str, str], Method] = {}
    skipped: dict[str, str] = {}

    def method_for(name: str, task: str) -> Method:
        slot = (name, task if name == OPTUNA_WARM else "")
        if slot not in instances:
            if name == POLICY:
                assert policy is not None
                instances[slot] = PolicyMethod(policy)
            elif name == OPTUNA_WARM:
                configs = warm_configs_for(task, store)
                instances[slot] = construct_warm(factories[name], configs)
            else:
                instances[slot] = factories[name]()
        return instances[slot]

    with tqdm(
        total=len(cells), initial=len(cells) - len(todo), unit="run", desc="evaluate",
        disable=not progress, dynamic_ncols=True,
    ) as bar:  # fmt: skip
        for key in todo:
            name, task, seed, start = key
            bar.set_postfix_str(f"{name} {task} seed {seed} lr x{start:g}")
            if name in skipped:
                bar.update()
                continue
            spec = RunSpec(
                task=task,
                seed=seed,
                fidelity=overrides.get(task),
                decisions=decisions,
                start_lr_factor=start,
                device=config.device,
                data_dir=config.data_dir,
                data=data[task],
            )
            begin = time.perf_counter()
            error, details = "", ""
            try:
                result = method_for(name, task).run(spec)
            except ImportError as exc:  # an optional package is missing: skip the method
                skipped[name] = f"{type(exc).__name__}: {exc}"
                bar.update()
                continue
            except Exception as exc:
                error = " ".join(f"{type(exc).__name__}: {exc}".split())
                details = traceback.format_exc()
                result = _failed_result(key, time.perf_counter() - begin)
            result.method, result.task = name, task  # the registry name labels the row
            result.seed, result.start_lr_factor = seed, start
            record = {
                "method": name,
                "task": task,
                "seed": seed,
                "start_lr_factor": start,
                "trajectory": result.trajectory,
                "extra": result.extra,
                "error": details,
            }
            store.append(result_row(result, error), record)
            bar.update()

    summary = summarize(
        out, config, decisions, overrides, skipped=skipped, argv=argv, policy=policy
    )
    errors = sum(1 for row in store.rows.values() if row["error"])
    return Report(out, summary, len(store.rows), errors, skipped)


def _fidelity_text(task: str, overrides: Mapping[str, Fidelity]) -> str:
    """``"subset 0.5, 6 epochs"``: the run size of ``task`` (override, suite default or task's)."""
    fidelity = RunSpec(task, 0, fidelity=overrides.get(task)).fidelity_or_default()
    subset = "whole split" if fidelity.subset is None else f"subset {fidelity.subset:g}"
    if fidelity.budget is not None:
        return f"{subset}, {fidelity.budget} samples"
    if fidelity.budget_epochs is not None:
        return f"{subset}, {fidelity.budget_epochs:g} epochs"
    return f"{subset}, task default budget ({get_task(task).budget_epochs:g} epochs)"


def _write_config(
    out: Path, config: EvalConfig, decisions: int, overrides: Mapping[str, Fidelity]
) -> None:
    """Write ``config.json``; refuse to resume with other decisions or fidelities."""
    path = out / "config.json"
    fidelity = {t: _fidelity_text(t, overrides) for t in config.tasks}
    if path.is_file():
        old = json.loads(path.read_text())
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
    atomic_write_json(
        {"config": config.to_dict(), "decisions": decisions, "fidelity": fidelity}, path
    )


def _load_data(
    tasks: Sequence[str], overrides: Mapping[str, Fidelity], data_dir: str | None
) -> dict[str, TaskData]:
    """Every task's data, loaded once; all missing tasks reported together."""
    data, missing = {}, {}
    for task in tasks:
        try:
            data[task] = RunSpec(
                task, 0, fidelity=overrides.get(task), data_dir=data_dir
            ).load_data()
        except DataNotFoundError as exc:
            missing[task] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if missing:
        lines = "\n".join(f"  {t}: {why}" for t, why in missing.items())
        raise DataNotFoundError(
            f"no data for {sorted(missing)}:\n{lines}\n"
            "Point HPENV_DATA_DIR (or data_dir) at the datasets, or leave these tasks out."
        )
    return data


# ------------------------------------------------------------------ the report


@dataclass
class _Run:
    """One finished run as the report sees it."""

    row: dict[str, Any]
    trajectory: list[dict[str, float]]
    extra: dict[str, Any]

    @property
    def score(self) -> float:
        return final_score(self.row["val_accuracy"], self.row["diverged"])

    @property
    def test_score(self) -> float:
        return 0.0 if self.row["diverged"] else float(self.row["test_accuracy"])


def _trajectory(record: Mapping[str, Any]) -> list[dict[str, float]]:
    points = record.get("trajectory") or []
    return [{k: _float(v) for k, v in p.items()} for p in points if isinstance(p, Mapping)]


def derive_columns(runs: Sequence[_Run], target_fraction: float) -> dict[tuple[str, float], float]:
    """Fill ``samples_to_target`` and ``lr_log10_distance_to_grid``; returns the targets."""
    static: dict[tuple[str, float], list[float]] = {}
    grid_lr: dict[tuple[str, int, float], float] = {}
    for run in runs:
        method, task, seed, start = row_key(run.row)
        if method == STATIC:
            static.setdefault((task, start), []).append(run.score)
        if method == GRID:
            grid_lr[(task, seed, start)] = _float(run.extra.get("chosen_lr"))
    targets = {}
    for group, scores in static.items():
        mean = float(np.mean(scores))
        targets[group] = target_fraction * mean if mean > 0 else math.nan
    for run in runs:
        method, task, seed, start = row_key(run.row)
        target = targets.get((task, start), math.nan)
        run.row["samples_to_target"] = samples_to_target(run.trajectory, target)
        distance = math.nan
        if method == POLICY:
            distance = lr_log10_distance(run.trajectory, grid_lr.get((task, seed, start), math.nan))
        run.row["lr_log10_distance_to_grid"] = distance
    return targets


def _ordered(values: Iterable[Any], first: Sequence[Any] = ()) -> list[Any]:
    """Distinct ``values``: those listed in ``first`` in its order, then the rest as they come."""
    items = list(values)
    present = set(items)
    seen: list[Any] = [v for v in dict.fromkeys(first) if v in present]
    for v in items:
        if v not in seen:
            seen.append(v)
    return seen


def _p(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.3g}" if value >= 1e-3 else f"{value:.1e}"


def _num(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def machine_info(device: str) -> dict[str, str]:
    info = {
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["device"] = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return info


def summarize(
    out: Path,
    config: EvalConfig,
    decisions: int,
    overrides: Mapping[str, Fidelity],
    *,
    skipped: Mapping[str, str] | None = None,
    argv: Sequence[str] | None = None,
    policy: Any = None,
) -> Path:
    """Derived columns, ``summary.md``, plots and TensorBoard runs for every run in ``out``."""
    store = RunStore(out)
    runs: list[_Run] = []
    for key, row in store.rows.items():
        if not row["error"] and key in store.records:
            record = store.records[key]
            runs.append(_Run(row, _trajectory(record), dict(record.get("extra") or {})))
    targets = derive_columns(runs, config.target_fraction)
    store.rewrite()

    plots = write_plots(out, runs)
    tb_note = write_tensorboard(out, runs)
    text = _summary_markdown(
        config, decisions, overrides, store, runs, targets, skipped or {}, argv, policy, plots,
        tb_note,
    )  # fmt: skip
    path = out / "summary.md"
    with atomic_open(path, "w") as fh:
        fh.write(text)
    return path


def _group(runs: Iterable[_Run], *fields: str) -> dict[tuple[Any, ...], list[_Run]]:
    groups: dict[tuple[Any, ...], list[_Run]] = {}
    for run in runs:
        groups.setdefault(tuple(run.row[f] for f in fields), []).append(run)
    return groups


def _stats_cells(group: Sequence[_Run]) -> list[str]:
    reached = [r.row["samples_to_target"] for r in group]
    n_reached = sum(1 for x in reached if math.isfinite(x))
    return [
        str(len(group)),
        mean_std(r.score for r in group).format(),
        mean_std(r.test_score for r in group).format(),
        mean_std(r.row["best_val_accuracy"] for r in group).format(),
        f"{mean_std(reached).format(0)} ({n_reached}/{len(group)})",
        mean_std(r.row["compute_multiple"] for r in group).format(2),
        str(sum(bool(r.row["diverged"]) for r in group)),
        _num(float(np.mean([r.row["wall_time"] for r in group])), 2),
    ]


def _pairs(
    runs: Sequence[_Run], baseline: str
) -> dict[tuple[str, float], tuple[list[float], list[float]]]:
    """Scores of the policy and ``baseline`` paired by (task, seed, start), per (task, start)."""
    by_key = {row_key(r.row): r for r in runs}
    pairs: dict[tuple[str, float], tuple[list[float], list[float]]] = {}
    for (method, task, seed, start), run in sorted(by_key.items()):
        other = by_key.get((baseline, task, seed, start))
        if method != POLICY or other is None:
            continue
        a, b = pairs.setdefault((task, start), ([], []))
        a.append(run.score)
        b.append(other.score)
    return pairs


def _comparison_cells(comparison: PairedComparison) -> list[str]:
    return [
        str(comparison.n),
        _num(comparison.mean_difference, 4),
        _num(comparison.t_statistic, 2),
        _p(comparison.t_pvalue),
        _num(comparison.wilcoxon_statistic, 1),
        _p(comparison.wilcoxon_pvalue),
        f"{comparison.wins}/{comparison.ties}/{comparison.losses}",
    ]


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return [*lines, ""]


def _summary_markdown(
    config: EvalConfig,
    decisions: int,
    overrides: Mapping[str, Fidelity],
    store: RunStore,
    runs: Sequence[_Run],
    targets: Mapping[tuple[str, float], float],
    skipped: Mapping[str, str],
    argv: Sequence[str] | None,
    policy: Any,
    plots: Sequence[str],
    tb_note: str,
) -> str:
    command = shlex.join(list(sys.argv if argv is None else argv))
    lines = [
        "# Evaluation: the policy against the baselines",
        "",
        f"Command: `{command}`",
        "",
        f"Written: {time.strftime('%Y-%m-%d %H:%M:%S %z')}",
        "",
    ]
    lines += _table(["machine", ""], [[k, v] for k, v in machine_info(config.device).items()])
    if policy is not None:
        meta = policy.metadata
        lines += [
            f"Policy: `{config.policy or 'the shipped policy'}` "
            f"(trained on {', '.join(meta.tasks) or 'unknown tasks'}, "
            f"{meta.agent_steps} agent steps, tunes {', '.join(meta.tuned)})",
            "",
        ]
        trained = meta.env_config.get("decisions")
        if trained is not None and int(trained) != decisions:
            lines += [
                f"Note: the policy was trained with {trained} decisions per run, "
                f"it is evaluated with {decisions}.",
                "",
            ]
    tasks = _ordered([r.row["task"] for r in runs], config.tasks)
    fidelity = ", ".join(f"{t}: {_fidelity_text(t, overrides)}" for t in tasks)
    lines += [
        f"Decisions per run: {decisions}. Fidelity: {fidelity or 'n/a'}. "
        f"Target fraction: {config.target_fraction:g}.",
        "",
    ]
    if skipped:
        lines += ["## Skipped methods", ""]
        lines += [f"- `{name}`: {why}" for name, why in skipped.items()] + [""]
    failed = [row for row in store.rows.values() if row["error"]]
    if failed:
        lines += ["## Failed runs (left out of every table; details in runs.jsonl)", ""]
        lines += [
            f"- `{r['method']}` {r['task']} seed {r['seed']} lr x{r['start_lr_factor']:g}: "
            f"{r['error']}"
            for r in failed
        ] + [""]
    if not runs:
        lines += ["No finished runs.", ""]
        return "\n".join(lines)

    methods = _ordered([r.row["method"] for r in runs], [POLICY, *config.methods])
    stat_header = [
        "runs", "val acc", "test acc", "best val acc", "samples to target (reached)",
        "compute ×", "diverged", "wall s",
    ]  # fmt: skip
    lines += ["## Final validation accuracy per task (mean ± std over seeds)", ""]
    groups = _group(runs, "task", "start_lr_factor", "method")
    rows = []
    for task in tasks:
        for start in sorted({r.row["start_lr_factor"] for r in runs if r.row["task"] == task}):
            target = targets.get((task, start), math.nan)
            for method in methods:
                group = groups.get((task, start, method))
                if group:
                    rows.append([task, f"{start:g}", _num(target), method, *_stats_cells(group)])
    lines += _table(["task", "start lr ×", "target", "method", *stat_header], rows)

    lines += ["## Pooled over tasks and start factors (mean ± std over all runs)", ""]
    pooled = _group(runs, "method")
    lines += _table(["method", *stat_header], [[m, *_stats_cells(pooled[(m,)])] for m in methods])

    baselines = [m for m in methods if m != POLICY]
    if POLICY in methods and baselines:
        header = ["pairs", "mean diff", "t", "t-test p", "Wilcoxon W", "Wilcoxon p", "W/T/L"]
        lines += [
            "## The policy against each baseline (final val accuracy, paired by task, seed, start)",
            "",
            "Pooled over tasks and start factors; mean diff = policy − baseline.",
            "",
        ]
        pooled_rows, task_rows = [], []
        for baseline in baselines:
            pairs = _pairs(runs, baseline)
            a = [x for key in pairs for x in pairs[key][0]]
            b = [x for key in pairs for x in pairs[key][1]]
            pooled_rows.append([baseline, *_comparison_cells(paired_comparison(a, b))])
            for (task, start), (pa, pb) in pairs.items():
                cells = _comparison_cells(paired_comparison(pa, pb))
                task_rows.append([task, f"{start:g}", baseline, *cells])
        lines += _table(["baseline", *header], pooled_rows)
        lines += ["Per task:", ""]
        task_rows.sort(key=lambda r: (tasks.index(r[0]), float(r[1]), methods.index(r[2])))
        lines += _table(["task", "start lr ×", "baseline", *header], task_rows)

    lines += ["## Compute multiples (compute samples / samples, mean over runs)", ""]
    by_task = _group(runs, "method", "task")
    compute_rows = []
    for method in methods:
        cells = []
        for task in [*tasks, None]:
            group = pooled[(method,)] if task is None else by_task.get((method, task), [])
            values = [r.row["compute_multiple"] for r in group]
            cells.append(_num(mean_std(values).mean, 2))
        compute_rows.append([method, *cells])
    lines += _table(["method", *tasks, "pooled"], compute_rows)

    distances = [r for r in runs if math.isfinite(r.row["lr_log10_distance_to_grid"])]
    if distances:
        lines += ["## The policy's learning rate against grid search's choice", ""]
        lines += [
            "Distance = |mean log10 lr of the policy's run − log10 grid's chosen lr|, mean ± std "
            "over seeds (0: the policy trained at grid's learning rate on average; "
            "1: a factor 10 apart).",
            "",
        ]
        dist_rows = []
        for (task, start), group in _group(distances, "task", "start_lr_factor").items():
            spread = mean_std(r.row["lr_log10_distance_to_grid"] for r in group)
            dist_rows.append([task, f"{start:g}", str(len(group)), spread.format(2)])
        lines += _table(["task", "start lr ×", "pairs", "distance (decades)"], dist_rows)

    lines += [
        "## Definitions",
        "",
        "- **val acc**: final validation accuracy; a diverged run counts as 0. "
        "**test acc**: final test accuracy (diverged = 0; n/a without a test split). "
        "Mean ± sample standard deviation (ddof=1) over seeds; failed runs are left out.",
        "- **target**: target fraction × mean final val acc of `static` on the task and start "
        "factor. **samples to target**: training samples of the reported run at the first "
        "evaluation with val acc ≥ target (mean ± std over the runs that reached it; "
        "reached/runs in brackets). Search methods' trial compute is not included: see "
        "compute ×.",
        "- **compute ×**: training samples spent in total (all trials) / samples of the "
        "reported run.",
        "- **t-test**: paired t-test (scipy.stats.ttest_rel, two-sided) of the policy against "
        "the baseline; **Wilcoxon**: signed-rank test (scipy.stats.wilcoxon, two-sided, zero "
        "differences dropped); all-zero differences give p = 1.",
        f"- **W/T/L**: pairs where the policy is better by at least {TIE_TOLERANCE:g} / "
        f"within {TIE_TOLERANCE:g} / worse by at least {TIE_TOLERANCE:g}.",
        "",
    ]
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    lines += [f"TensorBoard: {tb_note}", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ plots and TensorBoard


def resample(trajectory: Sequence[Mapping[str, float]], key: str, kind: str) -> np.ndarray:
    """``key`` on `PROGRESS_GRID`: ``linear`` interpolation of the finite points (NaN past
    the last one), or ``step`` (the value of the interval covering each progress)."""
    points = sorted(trajectory, key=lambda p: _float(p.get("progress")))
    progress = np.asarray([_float(p.get("progress")) for p in points])
    values = np.asarray([_float(p.get(key)) for p in points])
    out = np.full(PROGRESS_GRID.shape, np.nan)
    ok = np.isfinite(progress) & np.isfinite(values)
    if not ok.any():
        return out
    progress, values = progress[ok], values[ok]
    if kind == "linear":
        out = np.interp(PROGRESS_GRID, progress, values)
        out[progress[-1] + 1e-9 < PROGRESS_GRID] = np.nan
        return out
    index = np.searchsorted(progress, PROGRESS_GRID - 1e-9, side="left")
    valid = index < len(progress)
    out[valid] = values[index[valid]]
    return out


def _nanmean(matrix: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(matrix, axis=0)


def _curves(runs: Sequence[_Run], key: str, kind: str) -> np.ndarray:
    return np.stack([resample(r.trajectory, key, kind) for r in runs])


def write_plots(out: Path, runs: Sequence[_Run]) -> list[str]:
    """``curves_<task>.png`` and ``lr_<task>.png``; returns their names.

    Nothing is drawn (and nothing returned) without matplotlib.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return []
    names: list[str] = []
    tasks = _ordered(r.row["task"] for r in runs)
    methods = _ordered((r.row["method"] for r in runs), [POLICY])
    x = PROGRESS_GRID * 100
    for task in tasks:
        task_runs = [r for r in runs if r.row["task"] == task]
        starts = sorted({r.row["start_lr_factor"] for r in task_runs})
        groups = _group(task_runs, "start_lr_factor", "method")
        for kind in ("curves", "lr"):
            fig = Figure(figsize=(5.5 * len(starts), 4.2), layout="constrained")
            axes = fig.subplots(1, len(starts), squeeze=False)[0]
            for ax, start in zip(axes, starts, strict=True):
                for method in methods:
                    group = groups.get((start, method), [])
                    if not group:
                        continue
                    style: dict[str, Any] = {"linewidth": 1.2}
                    if method == POLICY:
                        style = {"color": "black", "linewidth": 2.4, "zorder": 3}
                    diverged = sum(bool(r.row["diverged"]) for r in group)
                    label = method + (f" ({diverged} diverged)" if diverged else "")
                    if kind == "curves":
                        mean = _nanmean(_curves(group, "val_accuracy", "linear"))
                        ax.plot(x, mean, label=label, **style)
                    else:
                        logs = np.log10(np.clip(_curves(group, "lr", "step"), 1e-300, None))
                        if method == POLICY:
                            for curve in logs:
                                ax.plot(x, 10**curve, color="black", alpha=0.25, linewidth=0.8)
                        ax.plot(x, 10 ** _nanmean(logs), label=label, **style)
                if kind == "lr":
                    ax.set_yscale("log")
                    ax.set_ylabel("learning rate (geometric mean over seeds)")
                else:
                    ax.set_ylabel("validation accuracy (mean over seeds)")
                ax.set_xlabel("progress (% of the budget)")
                ax.set_title(f"{task}, start lr × {start:g}")
                ax.grid(alpha=0.3)
                ax.legend(fontsize="small")
            name = f"{kind}_{task}.png"
            fig.savefig(out / name, dpi=110)
            names.append(name)
    return names


def write_tensorboard(out: Path, runs: Sequence[_Run]) -> str:
    """``tb/<method>/``: per task, final val accuracy per seed (step = seed) and the mean
    learning curve (step = percent progress). Rewritten from scratch every time."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        return f"not written ({exc})"
    root = out / "tb"
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(root)
    for (method,), group in _group(runs, "method").items():
        writer = SummaryWriter(str(root / method))
        try:
            for (task, start), cell in _group(group, "task", "start_lr_factor").items():
                suffix = "" if start == 1.0 else f"_lr_x{start:g}"
                for run in sorted(cell, key=lambda r: r.row["seed"]):
                    writer.add_scalar(
                        f"{task}/final_val_accuracy{suffix}", run.score, global_step=run.row["seed"]
                    )
                curve = _nanmean(_curves(cell, "val_accuracy", "linear"))
                for percent, value in enumerate(curve):
                    if math.isfinite(value):
                        writer.add_scalar(
                            f"{task}/val_accuracy_curve{suffix}", float(value), global_step=percent
                        )
        finally:
            writer.close()
    return f"`tensorboard --logdir {root}`"
