"""`evaluate`: run (or resume) the grid task x start factor x seed x method."""

from __future__ import annotations

import json
import math
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from agents.evaluation.cells import (
    MethodFactory,
    construct_warm,
    plan_cells,
    registered_methods,
    warm_configs_for,
)
from agents.evaluation.config import (
    OPTUNA_WARM,
    POLICY,
    EvalConfig,
    _fidelity_text,
    check_training_tasks,
)
from agents.evaluation.methods.core import Method, MethodResult, RunSpec
from agents.evaluation.records import Key, RunStore, result_row
from agents.evaluation.report import summarize
from hpenv.io import atomic_write_json
from hpenv.plan import Fidelity
from hpenv.tasks import DataNotFoundError, TaskData


def _failed_result(key: Key, wall_time: float) -> MethodResult:
    method, task, seed, start = key
    nan = math.nan
    return MethodResult(method, task, seed, start, nan, nan, nan, nan, 0, 0, wall_time, False)


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
        methods: Baseline factories by name (default: `agents.evaluation.methods.METHODS`,
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
    from agents.evaluation.methods.policy import PolicyMethod
    from agents.policy.artifact import FrozenPolicy, load_policy
    from agents.policy.pretrained import DEFAULT_POLICY

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
