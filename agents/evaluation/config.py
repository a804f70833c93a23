"""The configuration of an evaluation: `EvalConfig`, method names, fidelity overrides."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agents.cli import check_threads, option, threads_option
from agents.evaluation.methods import METHODS
from agents.evaluation.methods.core import RunSpec
from agents.policy.artifact import (
    fall_hold_option,
    probe_rollback_option,
    probe_start_choice,
    probe_start_option,
    restart_option,
    rise_guard_option,
)
from hpenv.errors import InputError
from hpenv.hyperparams import OptimizerName
from hpenv.plan import Fidelity
from hpenv.tasks import get_task, list_tasks
from hpenv.tasks.registry import HELDOUT_TASKS

POLICY = "policy"
STATIC = "static"
GRID = "grid"
#: The grid's points unless --grid-points says otherwise (`GridSearch`'s default).
GRID_POINTS = 8
OPTUNA = "optuna"
OPTUNA_WARM = "optuna_warm"
OPTUNA_SIMILAR = "optuna_similar"
#: Methods warm-started from the finished ``optuna`` runs of other tasks: they run last.
WARM_METHODS: tuple[str, ...] = (OPTUNA_WARM, OPTUNA_SIMILAR)
#: Options that say where the cells run, not what they compute (not carried over by a resume).
PLACEMENT_OPTIONS = ("ray_address", "ray_cpus_per_cell", "ray_gpus_per_cell", "ray_retries")
#: How the harness trains its cells (see `EvalConfig.engine`, `agents.evaluation.batched`).
EngineName = Literal["auto", "population", "sequential"]
#: The held-out suite (`hpenv.tasks.registry.HELDOUT_TASKS`): no meta-training suite has them.
DEFAULT_TASKS: tuple[str, ...] = HELDOUT_TASKS


class TrainingTaskError(InputError):
    """An evaluation task is one the policy was trained on."""


@dataclass(frozen=True)
class EvalConfig:
    """Configuration of one evaluation (every field is a CLI flag)."""

    policy: str | None = option(
        "policy: artifact file, hub-layout folder, shipped name or Hub repo id "
        "(default: the shipped policy)",
        default=None,
    )
    tasks: tuple[str, ...] = option(
        "tasks to evaluate on", default=DEFAULT_TASKS, choices=list_tasks()
    )
    seeds: tuple[int, ...] = option("seeds of every cell", default=(0, 1, 2, 3, 4))
    methods: tuple[str, ...] = option(
        "methods to run (default: every registered baseline and 'policy')",
        default=(),
        choices=(POLICY, *METHODS),
    )
    start_lr_factors: tuple[float, ...] = option(
        "initial learning rate = task default x factor (add e.g. 0.01,30 for rescue runs)",
        default=(1.0,),
    )
    fidelity: tuple[str, ...] = option(
        "per-task run size overrides TASK:SUBSET:EPOCHS, e.g. imdb:1.0:2 "
        "(default: hpenv/plan.py FIDELITY; empty SUBSET = whole split)",
        default=(),
    )
    decisions: int | None = option(
        "decision points per run (default: the policy's training value, else 20)", default=None
    )
    target_fraction: float = option(
        "samples-to-target threshold = this x static's mean final val accuracy", default=0.95
    )
    optimizer: OptimizerName | None = option(
        "every cell trains with this optimizer (sgd, adam, adamw) at its usual rate instead of "
        "the task's (default: the task's)",
        default=None,
    )
    test_from_val: bool = option(
        "tasks without a test split (MNIST's, diabetes, the digits) score on half of their "
        "validation split, held back from every run (hpenv.tasks.TaskData.test_from_val), so "
        "that test accuracy is everywhere measured on rows no method chose on (the policy's "
        "observations, the grid's pick and a rollback's best state read the other half)",
        default=False,
    )
    rise_guard: str = rise_guard_option()
    probe_start: str = probe_start_option()
    probe_rollback: str = probe_rollback_option()
    restart: str = restart_option()
    fall_hold: str = fall_hold_option()
    device: str = option("training device", default="cpu")
    threads: int = threads_option()
    engine: EngineName = option(
        "how cells train: 'auto' (the default) trains each task's batchable cells (the policy, "
        "the schedules, the grid and random search) as members of one population where that is "
        "faster on this device (CUDA; on a CPU, models of at most 0.5 million multiply-adds per "
        "sample), the others one at a time; 'population' batches wherever the population can; "
        "'sequential' trains one run at a time. Cells on Ray (--ray-address) train one at a time",
        default="auto",
    )
    data_dir: str | None = option("local data directory (default HPENV_DATA_DIR)", default=None)
    out_dir: str | None = option("report directory (default logs/eval-<time>)", default=None)
    resume: bool = option(
        "continue the evaluation in out_dir, skipping finished runs", default=False
    )
    include_training_tasks: bool = option(
        "allow tasks the policy was trained on (refused otherwise)", default=False
    )
    grid_points: int = option(
        "points of the 'grid' method's learning-rate grid (its compute is this x a run)",
        default=GRID_POINTS,
    )
    prior_results: tuple[str, ...] = option(
        "report directories of earlier evaluations whose finished optuna runs also serve as "
        "warm-start priors of optuna_warm and optuna_similar (besides this one's)",
        default=(),
    )
    ray_address: str | None = option(
        "run the cells as Ray tasks on this cluster (HOST:6379; 'local': a Ray instance "
        "started on this machine; 'auto': Ray's own detection; default: in this process)",
        default=None,
    )
    ray_cpus_per_cell: float = option("--ray-address: CPUs each cell asks Ray for", default=1.0)
    ray_gpus_per_cell: float = option(
        "--ray-address: GPUs each cell asks Ray for (a fraction shares a GPU; with --device cuda)",
        default=0.0,
    )
    ray_retries: int = option(
        "--ray-address: times a cell lost with its worker or node is run again", default=3
    )

    def __post_init__(self) -> None:
        check_threads(self.threads)
        probe_start_choice(self.probe_start)  # a bad value fails before anything runs
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
        if self.grid_points < 1:
            raise ValueError(f"grid_points must be >= 1, got {self.grid_points}")
        if not (self.ray_cpus_per_cell >= 0 and self.ray_gpus_per_cell >= 0):
            raise ValueError("ray_cpus_per_cell and ray_gpus_per_cell must be >= 0")
        if self.ray_retries < 0:
            raise ValueError(f"ray_retries must be >= 0, got {self.ray_retries}")
        self.fidelity_overrides()

    def fidelity_overrides(self) -> dict[str, Fidelity]:
        """The ``TASK:SUBSET:EPOCHS`` overrides, parsed."""
        return dict(parse_fidelity(spec) for spec in self.fidelity)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resume_eval_config(out_dir: str | Path, overrides: dict[str, Any]) -> EvalConfig:
    """The configuration of the evaluation in ``out_dir``, extended by ``overrides``.

    Options not given come from its ``config.json``. Given ones replace them:
    more seeds, tasks, methods or start factors add cells; the runner refuses
    another policy (by content), other decisions or fidelities for tasks already
    run. Where the cells run (`PLACEMENT_OPTIONS`: ``--ray-address`` and the Ray
    resources) is not carried over: give it again.
    """
    path = Path(out_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"--resume: {path} not found; is {out_dir} an evaluation?")
    saved = json.loads(path.read_text())["config"]
    saved = {k: v for k, v in saved.items() if k not in PLACEMENT_OPTIONS}
    values = {**saved, **overrides, "out_dir": str(out_dir), "resume": True}
    converted: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in values.items()
    }
    return EvalConfig(**converted)


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


def fidelity_text(task: str, overrides: Mapping[str, Fidelity]) -> str:
    """``"subset 0.5, 6 epochs"``: the run size of ``task`` (override, suite default or task's)."""
    fidelity = RunSpec(task, 0, fidelity=overrides.get(task)).fidelity_or_default()
    subset = "whole split" if fidelity.subset is None else f"subset {fidelity.subset:g}"
    if fidelity.budget is not None:
        return f"{subset}, {fidelity.budget} samples"
    if fidelity.budget_epochs is not None:
        return f"{subset}, {fidelity.budget_epochs:g} epochs"
    return f"{subset}, task default budget ({get_task(task).budget_epochs:g} epochs)"
