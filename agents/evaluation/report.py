"""The report of a directory: derived columns, ``summary.md``, plots and TensorBoard."""

from __future__ import annotations

import math
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.evaluation.config import POLICY, EvalConfig, _fidelity_text
from agents.evaluation.plots import write_plots, write_tensorboard
from agents.evaluation.records import RunStore
from agents.evaluation.runs import _group, _ordered, _Run, _trajectory, derive_columns
from agents.evaluation.stats import TIE_TOLERANCE, mean_std, paired_comparison
from agents.evaluation.tables import (
    _comparison_cells,
    _num,
    _pairs,
    _stats_cells,
    _table,
    machine_info,
)
from hpenv.io import atomic_open
from hpenv.plan import Fidelity


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
