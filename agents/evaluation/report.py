"""The report of a directory: derived columns, ``summary.md``, plots and TensorBoard."""

from __future__ import annotations

import math
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.evaluation.aggregate import rliable_section
from agents.evaluation.config import POLICY, EvalConfig, fidelity_text
from agents.evaluation.plots import write_plots, write_tensorboard
from agents.evaluation.records import RunStore
from agents.evaluation.runs import _group, _ordered, _Run, derive_columns, finished_runs
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
    runs = finished_runs(store)
    targets = derive_columns(runs, config.target_fraction)
    store.rewrite()

    plots = write_plots(out, runs)
    tb_note = write_tensorboard(out, runs)
    report = _Report(
        config=config,
        decisions=decisions,
        overrides=overrides,
        store=store,
        runs=runs,
        targets=targets,
        skipped=skipped or {},
        argv=argv,
        policy=policy,
        plots=plots,
        tb_note=tb_note,
    )
    path = out / "summary.md"
    with atomic_open(path, "w") as fh:
        fh.write(report.markdown())
    return path


@dataclass(frozen=True)
class _Report:
    """Everything ``summary.md`` is written from; one method per section."""

    config: EvalConfig
    decisions: int
    overrides: Mapping[str, Fidelity]
    store: RunStore
    runs: Sequence[_Run]
    targets: Mapping[tuple[str, float], float]
    skipped: Mapping[str, str]
    argv: Sequence[str] | None
    policy: Any
    plots: Sequence[str]
    tb_note: str

    @property
    def tasks(self) -> list[str]:
        return _ordered([r.row["task"] for r in self.runs], self.config.tasks)

    @property
    def methods(self) -> list[str]:
        return _ordered([r.row["method"] for r in self.runs], [POLICY, *self.config.methods])

    def markdown(self) -> str:
        lines = self.header() + self.skipped_and_failed()
        if not self.runs:
            return "\n".join([*lines, "No finished runs.", ""])
        for section in (
            self.per_task, self.pooled, self.aggregate, self.comparisons, self.compute,
            self.grid_distance, self.definitions, self.figures,
        ):  # fmt: skip
            lines += section()
        return "\n".join(lines)

    def header(self) -> list[str]:
        command = shlex.join(list(sys.argv if self.argv is None else self.argv))
        lines = [
            "# Evaluation: the policy against the baselines",
            "",
            f"Command: `{command}`",
            "",
            f"Written: {time.strftime('%Y-%m-%d %H:%M:%S %z')}",
            "",
        ]
        machine = machine_info(self.config.device)
        lines += _table(["machine", ""], [[k, v] for k, v in machine.items()])
        if self.policy is not None:
            meta = self.policy.metadata
            lines += [
                f"Policy: `{self.config.policy or 'the shipped policy'}` "
                f"(sha256 {self.policy.fingerprint()[:12]}; "
                f"trained on {', '.join(meta.tasks) or 'unknown tasks'}, "
                f"{meta.agent_steps} agent steps, tunes {', '.join(meta.tuned)}"
                + (f"; an ensemble of {self.policy.size}" if self.policy.members else "")
                + ")",
                "",
            ]
            trained = meta.env_config.get("decisions")
            if trained is not None and int(trained) != self.decisions:
                lines += [
                    f"Note: the policy was trained with {trained} decisions per run, "
                    f"it is evaluated with {self.decisions}.",
                    "",
                ]
        fidelity = ", ".join(f"{t}: {fidelity_text(t, self.overrides)}" for t in self.tasks)
        lines += [
            f"Decisions per run: {self.decisions}. Fidelity: {fidelity or 'n/a'}. "
            f"Target fraction: {self.config.target_fraction:g}.",
            "",
        ]
        return lines

    def skipped_and_failed(self) -> list[str]:
        lines: list[str] = []
        if self.skipped:
            lines += ["## Skipped methods", ""]
            lines += [f"- `{name}`: {why}" for name, why in self.skipped.items()] + [""]
        failed = [row for row in self.store.rows.values() if row["error"]]
        if failed:
            lines += ["## Failed runs (left out of every table; details in runs.jsonl)", ""]
            lines += [
                f"- `{r['method']}` {r['task']} seed {r['seed']} lr x{r['start_lr_factor']:g}: "
                f"{r['error']}"
                for r in failed
            ] + [""]
        return lines

    def per_task(self) -> list[str]:
        lines = ["## Final validation accuracy per task (mean ± std over seeds)", ""]
        groups = _group(self.runs, "task", "start_lr_factor", "method")
        rows = []
        for task in self.tasks:
            starts = {r.row["start_lr_factor"] for r in self.runs if r.row["task"] == task}
            for start in sorted(starts):
                target = self.targets.get((task, start), math.nan)
                for method in self.methods:
                    group = groups.get((task, start, method))
                    if group:
                        cells = _stats_cells(group)
                        rows.append([task, f"{start:g}", _num(target), method, *cells])
        return lines + _table(["task", "start lr ×", "target", "method", *_STAT_HEADER], rows)

    def pooled(self) -> list[str]:
        lines = ["## Pooled over tasks and start factors (mean ± std over all runs)", ""]
        pooled = _group(self.runs, "method")
        rows = [[m, *_stats_cells(pooled[(m,)])] for m in self.methods]
        return lines + _table(["method", *_STAT_HEADER], rows)

    def aggregate(self) -> list[str]:
        scores = {
            (r.row["method"], r.row["task"], float(r.row["start_lr_factor"]), int(r.row["seed"])): (
                r.score
            )
            for r in self.runs
        }
        return rliable_section(scores, self.methods)

    def comparisons(self) -> list[str]:
        baselines = [m for m in self.methods if m != POLICY]
        if POLICY not in self.methods or not baselines:
            return []
        header = ["pairs", "mean diff", "t", "t-test p", "Wilcoxon W", "Wilcoxon p", "W/T/L"]
        lines = [
            "## The policy against each baseline (final val accuracy, paired by task, seed, start)",
            "",
            "Pooled over tasks and start factors; mean diff = policy − baseline.",
            "",
        ]
        pooled_rows, task_rows = [], []
        for baseline in baselines:
            pairs = _pairs(self.runs, baseline)
            a = [x for key in pairs for x in pairs[key][0]]
            b = [x for key in pairs for x in pairs[key][1]]
            pooled_rows.append([baseline, *_comparison_cells(paired_comparison(a, b))])
            for (task, start), (pa, pb) in pairs.items():
                cells = _comparison_cells(paired_comparison(pa, pb))
                task_rows.append([task, f"{start:g}", baseline, *cells])
        lines += _table(["baseline", *header], pooled_rows)
        lines += ["Per task:", ""]
        tasks, methods = self.tasks, self.methods
        task_rows.sort(key=lambda r: (tasks.index(r[0]), float(r[1]), methods.index(r[2])))
        return lines + _table(["task", "start lr ×", "baseline", *header], task_rows)

    def compute(self) -> list[str]:
        lines = ["## Compute multiples (compute samples / samples, mean over runs)", ""]
        pooled = _group(self.runs, "method")
        by_task = _group(self.runs, "method", "task")
        rows = []
        for method in self.methods:
            cells = []
            for task in [*self.tasks, None]:
                group = pooled[(method,)] if task is None else by_task.get((method, task), [])
                values = [r.row["compute_multiple"] for r in group]
                cells.append(_num(mean_std(values).mean, 2))
            rows.append([method, *cells])
        return lines + _table(["method", *self.tasks, "pooled"], rows)

    def grid_distance(self) -> list[str]:
        distances = [r for r in self.runs if math.isfinite(r.row["lr_log10_distance_to_grid"])]
        if not distances:
            return []
        lines = [
            "## The policy's learning rate against grid search's choice",
            "",
            "Distance = |mean log10 lr of the policy's run − log10 grid's chosen lr|, mean ± std "
            "over seeds (0: the policy trained at grid's learning rate on average; "
            "1: a factor 10 apart).",
            "",
        ]
        rows = []
        for (task, start), group in _group(distances, "task", "start_lr_factor").items():
            spread = mean_std(r.row["lr_log10_distance_to_grid"] for r in group)
            rows.append([task, f"{start:g}", str(len(group)), spread.format(2)])
        return lines + _table(["task", "start lr ×", "pairs", "distance (decades)"], rows)

    def definitions(self) -> list[str]:
        return [
            "## Definitions",
            "",
            "- **val acc**: final validation accuracy; a diverged run counts as 0. "
            "**test acc**: final test accuracy (diverged = 0; n/a without a test split). "
            "Mean ± sample standard deviation (ddof=1) over seeds; failed runs are left out.",
            "- **target**: target fraction × mean final val acc of `static` on the task and "
            "start factor. **samples to target**: training samples of the reported run at the "
            "first evaluation with val acc ≥ target (mean ± std over the runs that reached it; "
            "reached/runs in brackets). Search methods' trial compute is not included: see "
            "compute ×.",
            "- **compute ×**: training samples spent in total (all trials) / samples of the "
            "reported run.",
            "- **t-test**: paired t-test (scipy.stats.ttest_rel, two-sided) of the policy "
            "against the baseline; **Wilcoxon**: signed-rank test (scipy.stats.wilcoxon, "
            "two-sided, zero differences dropped); all-zero differences give p = 1.",
            f"- **W/T/L**: pairs where the policy is better by at least {TIE_TOLERANCE:g} / "
            f"within {TIE_TOLERANCE:g} / worse by at least {TIE_TOLERANCE:g}.",
            "",
        ]

    def figures(self) -> list[str]:
        lines: list[str] = []
        if self.plots:
            lines += ["## Plots", ""] + [f"![{p}]({p})" for p in self.plots] + [""]
        return [*lines, f"TensorBoard: {self.tb_note}", ""]


_STAT_HEADER = [
    "runs", "val acc", "test acc", "best val acc", "samples to target (reached)",
    "compute ×", "diverged", "wall s",
]  # fmt: skip
