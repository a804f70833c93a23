"""Choose the base schedule by measurement, on training-side tasks only (never the held-out suite).

Every candidate base (`hpenv.base.BaseConfig`: the probe's rule, min/10, min/30, min/100 or
steepest, with cosine decay or constant) runs as the harness method
``probe_cosine`` (the probe, then the base alone) on the same cells: training
tasks (default: digits, wine, breast_cancer, synthetic; the tasks
meta-training sees, so choosing here spends none of the held-out suite) x
seeds x starting factors (the base ignores the start after the probe; the
factors check it). For comparison, the task default with cosine decay
(``cosine``) and the 8-point grid's best (``grid``, 8x the compute) run on the
same cells. Prints, per candidate: the mean final validation accuracy, the
mean final validation loss, and the mean regret ln(final val loss / the best
candidate's on the cell); writes JSON with ``--out``.

All of a task's runs train as few populations as can share one
(``--engine population``, the harness's grouping; on a GPU use ``--device cuda``).
``--optimizers task,sgd`` adds the user's SGD with momentum. ``--fidelity`` sets a
task's run size (``digits:1:1``: one epoch, 45 steps) and ``--candidates`` picks
the candidates (the probe with a lower floor, for short runs, only when named).

Usage:
    python scripts/choose_base.py --seeds 0,1,2 --out logs/choose_base.json
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation.batched import population_groups
from agents.evaluation.config import parse_fidelity
from agents.evaluation.methods.core import MethodResult, RunSpec, train_runs
from agents.evaluation.methods.schedules import Cosine, ProbeCosine
from agents.evaluation.methods.search import GridSearch
from agents.evaluation.recipes import read_recipes, recipe_config
from agents.evaluation.stats import final_score
from agents.metatrain import MetaTrainConfig
from hpenv.io import atomic_write_json
from hpenv.probe import ProbeConfig
from hpenv.tasks import SyntheticFamily, Task, registered

#: The candidates run unless --candidates names others (the base's choice, docs/results.md).
BASES: dict[str, Any] = {
    "min/10 cosine": ProbeCosine(rule="min/10", decay="cosine"),
    "min/30 cosine": ProbeCosine(rule="min/30", decay="cosine"),
    "min/100 cosine": ProbeCosine(rule="min/100", decay="cosine"),
    "steepest cosine": ProbeCosine(rule="steepest", decay="cosine"),
    "min/10 constant": ProbeCosine(rule="min/10", decay="constant"),
    "min/30 constant": ProbeCosine(rule="min/30", decay="constant"),
    "default cosine": Cosine(),
    "grid (8x compute)": GridSearch(),
}
#: The probe's floor lowered (hpenv.probe.ProbeConfig.min_steps, default 20: runs under 80
#: steps have no probe): runs down to 4x the floor probe; with --fidelity for short runs.
FLOORS: dict[str, Any] = {
    "min/30 cosine probe>=8": ProbeCosine(rule="min/30", probe=ProbeConfig(min_steps=8)),
    "min/30 cosine probe>=5": ProbeCosine(rule="min/30", probe=ProbeConfig(min_steps=5)),
}
#: A reading above min/10 (the base x10 over min/30), run only when named.
HIGHER: dict[str, Any] = {"min/3 cosine": ProbeCosine(rule="min/3", decay="cosine")}
#: The probe rolled back to the state before its sweep instead of its best point
#: (`hpenv.probe.ProbeConfig.rollback`), run only when named.
ROLLBACKS: dict[str, Any] = {
    "min/30 cosine rollback=start": ProbeCosine(probe=ProbeConfig(rollback="start")),
}
CANDIDATES: dict[str, Any] = {**BASES, **FLOORS, **HIGHER, **ROLLBACKS}
DEFAULT_CANDIDATES: tuple[str, ...] = tuple(BASES)
NOT_PROBES: tuple[str, ...] = ("default cosine", "grid (8x compute)")
#: Whose synthetic family --synthetic-draws draws from: the v3 candidate's (FILE:NAME).
DEFAULT_SYNTHETIC_RECIPE = (
    f"{Path(__file__).resolve().parents[1] / 'docs' / 'recipes' / 'issue23-v3.toml'}"
    ":distribution-population"
)
#: Seed stream of --synthetic-draws (neither meta-training's episode seeds nor synthetic-heldout's).
SYNTHETIC_DRAW_SEED = 2_468_013
#: Validation losses below this count as this in the regret (a ratio to 0 is undefined).
LOSS_FLOOR = 1e-6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[1:]),
    )
    parser.add_argument("--tasks", default="digits,wine,breast_cancer,synthetic")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--start-lr-factors", default="1,0.01,30")
    parser.add_argument(
        "--optimizers", default="task",
        help="the user's optimizers, comma-separated: 'task' (the task's own), adam, adamw, sgd",
    )  # fmt: skip
    parser.add_argument(
        "--candidates", default=",".join(DEFAULT_CANDIDATES),
        help=f"comma-separated, of: {', '.join(CANDIDATES)}",
    )  # fmt: skip
    parser.add_argument(
        "--fidelity", action="append", default=[],
        help="TASK:SUBSET:EPOCHS run size of a task (repeat per task), e.g. digits:1:1 for "
        "short runs (default: hpenv.plan.FIDELITY)",
    )  # fmt: skip
    parser.add_argument(
        "--synthetic-draws", type=int, default=0,
        help="add N tasks drawn from the synthetic family of --synthetic-recipe, named "
        "synthetic-draw-<i>, from their own seed stream (--synthetic-seed)",
    )  # fmt: skip
    parser.add_argument(
        "--synthetic-recipe", default=DEFAULT_SYNTHETIC_RECIPE, metavar="FILE:NAME",
        help="the recipe (a recipes file of scripts/compare_recipes.py and a recipe in it) "
        "whose --synthetic-* flags give --synthetic-draws' family (default: the v3 candidate's: "
        "Adam, AdamW and SGD, a quarter convolutional)",
    )  # fmt: skip
    parser.add_argument("--synthetic-seed", type=int, default=SYNTHETIC_DRAW_SEED)
    parser.add_argument("--engine", default="population", choices=("population", "sequential"))
    parser.add_argument("--device", default="cpu", help="training device (cpu, cuda)")
    parser.add_argument("--data-dir", default=None, help="local data (default: HPENV_DATA_DIR)")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    if args.synthetic_draws < 0:
        parser.error(f"--synthetic-draws must be >= 0, got {args.synthetic_draws}")
    try:
        family = recipe_family(args.synthetic_recipe) if args.synthetic_draws else None
    except (OSError, ValueError) as exc:
        parser.error(f"--synthetic-recipe: {exc}")
    draws = synthetic_draws(args.synthetic_draws, args.synthetic_seed, family)
    tasks = [t for t in args.tasks.split(",") if t] + [t.name for t in draws]
    if not tasks:
        parser.error("no task: give --tasks or --synthetic-draws")
    names = [n.strip() for n in args.candidates.split(",") if n.strip()]
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown or not names:
        parser.error(f"--candidates: unknown {unknown}; choose from {', '.join(CANDIDATES)}")
    candidates = {n: CANDIDATES[n] for n in names}
    try:
        fidelity = dict(parse_fidelity(spec) for spec in args.fidelity)
    except ValueError as exc:
        parser.error(f"--fidelity: {exc}")
    with registered(draws):
        return _run(args, tasks, candidates, fidelity)


def recipe_family(spec: str) -> SyntheticFamily:
    """The synthetic family a recipe meta-trains on (`MetaTrainConfig.synthetic_family`),
    from ``FILE:NAME``.

    Raises:
        ValueError: Not ``FILE:NAME``, no such recipe in the file, or flags it refuses.
        FileNotFoundError: No such file.
    """
    file, sep, name = spec.rpartition(":")
    if not sep or not file or not name:
        raise ValueError(f"expected FILE:NAME, got {spec!r}")
    recipes, _ = read_recipes(file)
    found = [r for r in recipes if r.name == name]
    if not found:
        raise ValueError(f"{file} has no recipe {name!r} (it has {[r.name for r in recipes]})")
    config: MetaTrainConfig = recipe_config(found[0], seed=0, out_dir="unused")
    return config.synthetic_family()


def synthetic_draws(count: int, seed: int, family: SyntheticFamily | None = None) -> list[Task]:
    """``count`` tasks of ``family`` (default: the synthetic family of
    `DEFAULT_SYNTHETIC_RECIPE`), from the stream ``seed`` (meta-training draws from episode
    seeds, synthetic-heldout from its own)."""
    if family is None:
        family = recipe_family(DEFAULT_SYNTHETIC_RECIPE) if count else SyntheticFamily()
    rng = np.random.default_rng(seed)
    tasks = []
    for i in range(count):
        task = family.sample(rng).task()
        tasks.append(dataclasses.replace(task, name=f"synthetic-draw-{i}"))
    return tasks


def _run(
    args: argparse.Namespace,
    tasks: list[str],
    candidates: dict[str, Any],
    fidelity: dict[str, Any],
) -> int:
    """Every candidate on every task's cells; the tables (see the module docstring)."""
    seeds = [int(s) for s in args.seeds.split(",") if s]
    factors = [float(f) for f in args.start_lr_factors.split(",") if f]
    optimizers = [None if o == "task" else o for o in args.optimizers.split(",") if o]
    rows: list[dict[str, Any]] = []
    begin = time.perf_counter()
    for task in tasks:
        size = fidelity.get(task)
        data = RunSpec(task, 0, fidelity=size, data_dir=args.data_dir).load_data()
        cells = [
            RunSpec(task, s, fidelity=size, start_lr_factor=f, optimizer=o, device=args.device,
                    data=data)
            for o in optimizers for f in factors for s in seeds
        ]  # fmt: skip
        # Every candidate's runs of the task, trained as few populations as can share one.
        owners: list[tuple[str, int]] = []
        runs = []
        for name, method in candidates.items():
            for k, spec in enumerate(cells):
                mine = method.runs(spec)
                runs += mine
                owners += [(name, k)] * len(mine)
        results: list[Any] = [None] * len(runs)
        groups = (
            population_groups(runs) if args.engine == "population" else [list(range(len(runs)))]
        )
        for indices in groups:
            trained = train_runs([runs[i] for i in indices], engine=args.engine)
            for i, result in zip(indices, trained, strict=True):
                results[i] = result
        for name, method in candidates.items():
            for k, spec in enumerate(cells):
                mine = [r for r, owner in zip(results, owners, strict=True) if owner == (name, k)]
                row: MethodResult = method.result(spec, mine)
                rows.append(
                    {
                        "candidate": name, "task": task, "seed": spec.seed,
                        "start_lr_factor": spec.start_lr_factor,
                        "optimizer": spec.optimizer or "task", "val_loss": row.val_loss,
                        "score": final_score(row.val_accuracy, row.diverged),
                        "first_lr": row.trajectory[1]["lr"] if len(row.trajectory) > 1
                        else math.nan,
                    }
                )  # fmt: skip
        print(f"{task}: {len(runs)} runs in {len(groups)} groups, done "
              f"({time.perf_counter() - begin:.0f} s)", flush=True)  # fmt: skip
    if args.out:  # the rows first: the tables below are read off them
        atomic_write_json({"args": vars(args), "rows": rows}, args.out)
    probes = [n for n in candidates if n not in NOT_PROBES]
    best: dict[tuple[str, int, float, str], float] = {}
    for row in rows:
        if row["candidate"] in probes and math.isfinite(row["val_loss"]):
            key = (row["task"], row["seed"], row["start_lr_factor"], row["optimizer"])
            best[key] = min(best.get(key, math.inf), row["val_loss"])
    print(
        f"\n{len(tasks)} tasks x {len(optimizers)} optimizers x {len(factors)} start factors x "
        f"{len(seeds)} seeds per candidate; {time.perf_counter() - begin:.0f} s on {args.device}"
    )
    print("| candidate | mean final val acc (%) | mean final val loss | mean regret vs best base |")
    print("|---|---|---|---|")
    for name in candidates:
        mine = [r for r in rows if r["candidate"] == name]
        regrets = [  # a loss of 0 (a tiny validation split, all right) counts as LOSS_FLOOR
            math.log(max(r["val_loss"], LOSS_FLOOR) / max(best[_cell(r)], LOSS_FLOOR))
            for r in mine
            if math.isfinite(r["val_loss"]) and _cell(r) in best
        ]
        losses = [r["val_loss"] for r in mine if math.isfinite(r["val_loss"])]
        print(f"| {name} | {100 * np.mean([r['score'] for r in mine]):.2f} | "
              f"{np.mean(losses):.4f} | {np.mean(regrets):.3f} |")  # fmt: skip
    columns = sorted({(r["optimizer"], r["start_lr_factor"]) for r in rows})
    print("\nMean final val acc (%) by the user's optimizer and starting rate (x task default):")
    print("| candidate | " + " | ".join(f"{o} {f:g}x" for o, f in columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name in candidates:
        cells = [
            100 * np.mean([r["score"] for r in rows if r["candidate"] == name
                           and (r["optimizer"], r["start_lr_factor"]) == column])
            for column in columns
        ]  # fmt: skip
        print(f"| {name} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    return 0


def _cell(row: dict[str, Any]) -> tuple[str, int, float, str]:
    return (row["task"], row["seed"], row["start_lr_factor"], row["optimizer"])


if __name__ == "__main__":
    sys.exit(main())
