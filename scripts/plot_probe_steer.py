"""A layout-2 policy's held-out run as a figure: its probe's curve, then its rate and the base's.

Reads harness report folders (``scripts/evaluate.py`` or a comparison's
``eval/...`` folders): the ``policy`` row of one cell (task, seed, start
factor) and, from the same or another folder, the ``probe_cosine`` row of the
same cell (the base alone). Left: the probe's smoothed loss against the swept
rate (log axis), its lowest point and the base's anchor. Right: the rate of
every interval against training progress, the policy's and the base's, with
the final validation accuracy of each in the legend. Writes a PNG.

Usage:
    python scripts/plot_probe_steer.py --runs logs/cmp/eval/layout2/s0 logs/cmp/eval/baselines \\
        --task digits_cnn --seed 0 --out docs/figures/probe_steer.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from agents.cli import run_job
from agents.evaluation.records import RunStore, require_reports
from hpenv.errors import InputError


def find_record(folders: list[Path], method: str, task: str, seed: int, factor: float) -> Any:
    """The finished record of ``method`` on the cell in the first folder holding one."""
    for folder in folders:
        store = RunStore(folder)
        record = store.records.get((method, task, seed, factor))
        if record is not None and not record.get("error"):
            return record
    raise InputError(
        f"no finished {method} run of {task} seed {seed} x{factor:g} in "
        f"{', '.join(str(f) for f in folders)}"
    )


def interval_rates(record: dict[str, Any]) -> tuple[list[float], list[float]]:
    """Each interval's start progress and rate, for a step plot ``where="post"``.

    A trajectory point is the state at the end of an interval, with the rate that
    interval trained at; the first interval after the probe begins where the probe
    ended (its steps, all counted against the budget, over the run's budget).
    """
    points = record["trajectory"][1:]
    probe = record.get("extra", {}).get("probe") or {}
    start = probe["steps"] / probe["budget_steps"] if probe.get("budget_steps") else 0.0
    progress = [start] + [p["progress"] for p in points]
    rates = [p["lr"] for p in points]
    return progress, rates + rates[-1:]


def plot(policy: dict[str, Any], base: dict[str, Any], out: Path) -> Path:
    """Write the two panels of ``policy``'s and ``base``'s records to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probe = policy.get("extra", {}).get("probe")
    if not probe:
        raise InputError("the policy's run has no probe (a layout-1 policy, or a run too short)")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot(probe["lrs"], probe["smoothed"], color="tab:blue")
    left.set_xscale("log")
    left.axvline(probe["best_lr"], color="tab:gray", linestyle=":", label="lowest loss")
    anchor = base.get("extra", {}).get("base_lr")
    if anchor:
        left.axvline(anchor, color="tab:orange", linestyle="--", label="base anchor")
    left.set_xlabel("learning rate (probe sweep)")
    left.set_ylabel("smoothed training loss")
    left.set_title(f"probe: {probe['steps']} steps, {100 * probe['cost']:.1f}% of the budget")
    left.legend(fontsize=8)
    for record, label, color in ((policy, "policy", "tab:green"), (base, "base", "tab:orange")):
        progress, rates = interval_rates(record)
        accuracy = record["trajectory"][-1]["val_accuracy"]
        right.step(
            progress, rates, where="post",
            color=color, label=f"{label} (final val acc {100 * accuracy:.1f}%)",
        )  # fmt: skip
    right.set_yscale("log")
    right.set_xlabel("training progress")
    right.set_ylabel("learning rate")
    right.set_title(f"{policy['task']}, seed {policy['seed']}")
    right.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[1:]),
    )
    parser.add_argument("--runs", nargs="+", required=True, help="harness report folders")
    parser.add_argument("--task", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start-lr-factor", type=float, default=1.0)
    parser.add_argument("--out", default="probe_steer.png", help="the PNG to write")
    args = parser.parse_args(argv)
    folders = [Path(f) for f in args.runs]
    try:
        require_reports(folders, "--runs")
    except FileNotFoundError as exc:
        parser.error(str(exc))

    def job() -> None:
        cell = (args.task, args.seed, args.start_lr_factor)
        policy = find_record(folders, "policy", *cell)
        base = find_record(folders, "probe_cosine", *cell)
        print(f"wrote {plot(policy, base, Path(args.out))}")

    return run_job(job)


if __name__ == "__main__":
    sys.exit(main())
