"""Choose the base schedule by measurement, on training-side tasks only (never the held-out suite).

Every candidate base (`hpenv.base.BaseConfig`: the probe's rule, min/10, min/30 or
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

Usage:
    python scripts/choose_base.py --seeds 0,1,2 --out logs/choose_base.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

import numpy as np

from agents.evaluation.methods.core import MethodResult, RunSpec, train_runs
from agents.evaluation.methods.schedules import Cosine, ProbeCosine
from agents.evaluation.methods.search import GridSearch
from agents.evaluation.stats import final_score

CANDIDATES: dict[str, Any] = {
    "min/10 cosine": ProbeCosine(rule="min/10", decay="cosine"),
    "min/30 cosine": ProbeCosine(rule="min/30", decay="cosine"),
    "steepest cosine": ProbeCosine(rule="steepest", decay="cosine"),
    "min/10 constant": ProbeCosine(rule="min/10", decay="constant"),
    "min/30 constant": ProbeCosine(rule="min/30", decay="constant"),
    "default cosine": Cosine(),
    "grid (8x compute)": GridSearch(),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[1:]),
    )
    parser.add_argument("--tasks", default="digits,wine,breast_cancer,synthetic")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--start-lr-factors", default="1,0.01,30")
    parser.add_argument("--engine", default="population", choices=("population", "sequential"))
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    factors = [float(f) for f in args.start_lr_factors.split(",") if f]
    rows: list[dict[str, Any]] = []
    begin = time.perf_counter()
    for task in tasks:
        data = RunSpec(task, 0).load_data()
        for factor in factors:
            cells = [RunSpec(task, s, start_lr_factor=factor, data=data) for s in seeds]
            for name, method in CANDIDATES.items():
                runs = [r for spec in cells for r in method.runs(spec)]
                results = train_runs(runs, engine=args.engine)
                per_cell = len(runs) // len(cells)
                for k, spec in enumerate(cells):
                    row: MethodResult = method.result(
                        spec, results[k * per_cell : (k + 1) * per_cell]
                    )
                    rows.append(
                        {
                            "candidate": name, "task": task, "seed": spec.seed,
                            "start_lr_factor": factor, "val_loss": row.val_loss,
                            "score": final_score(row.val_accuracy, row.diverged),
                            "first_lr": row.trajectory[1]["lr"] if len(row.trajectory) > 1
                            else math.nan,
                        }
                    )  # fmt: skip
            print(f"{task} x{factor:g}: done ({time.perf_counter() - begin:.0f} s)", flush=True)
    probes = [n for n in CANDIDATES if n not in ("default cosine", "grid (8x compute)")]
    best: dict[tuple[str, int, float], float] = {}
    for row in rows:
        if row["candidate"] in probes and math.isfinite(row["val_loss"]):
            key = (row["task"], row["seed"], row["start_lr_factor"])
            best[key] = min(best.get(key, math.inf), row["val_loss"])
    print(f"\n{len(tasks)} tasks x {len(factors)} start factors x {len(seeds)} seeds per candidate")
    print("| candidate | mean final val acc (%) | mean final val loss | mean regret vs best base |")
    print("|---|---|---|---|")
    for name in CANDIDATES:
        mine = [r for r in rows if r["candidate"] == name]
        regrets = [
            math.log(r["val_loss"] / best[(r["task"], r["seed"], r["start_lr_factor"])])
            for r in mine
            if math.isfinite(r["val_loss"]) and (r["task"], r["seed"], r["start_lr_factor"]) in best
        ]
        losses = [r["val_loss"] for r in mine if math.isfinite(r["val_loss"])]
        print(f"| {name} | {100 * np.mean([r['score'] for r in mine]):.2f} | "
              f"{np.mean(losses):.4f} | {np.mean(regrets):.3f} |")  # fmt: skip
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"args": vars(args), "rows": rows}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
