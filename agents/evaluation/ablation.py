"""Compare policy recipes across harness directories: the ablation table.

Each recipe is meta-trained with several seeds; each seed's policy is
evaluated by the harness into its own directory on the same cells. This reads
those ``results.csv`` files and reports, per recipe:

- the final validation accuracy (diverged = 0; or the test accuracy, ``score="test"``,
  where every task has a test split: ``evaluate.py --test-from-val``) averaged over the held-out
  cells, as mean ± std *across meta-training seeds* (the spread a user sees
  between two runs of the same recipe) and the mean spread across evaluation
  seeds, with each meta-training seed's mean beside them;
- per task, the recipe's mean against the baselines (recorded in the same
  directories, or in one directory of their own), and the spread across
  meta-training seeds (which tasks the seeds scatter on);
- against a reference recipe: the mean difference, its 95% bootstrap interval
  with the meta-training seeds and the cells resampled (the seeds' draw is the
  largest noise in a recipe's figure), a Wilcoxon signed-rank test and
  win/tie/loss over the (task, start factor, evaluation seed) cells, each cell
  averaged over the recipe's meta-training seeds;
- the rliable aggregate (IQM and mean with stratified bootstrap intervals) of
  all its runs, with the baselines as methods of their own.

`ablation_summary` holds the same figures as plain data (what ``compare_recipes.py
--json-out`` and a comparison's ``ablation.json`` write), so that a measurement script reads
numbers, not the table's Markdown. `agents.evaluation.recipes` runs a whole comparison
(meta-training, evaluation, this table) from a recipes file.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation.aggregate import rliable_lines
from agents.evaluation.stats import final_score, paired_comparison, seed_bootstrap_interval
from agents.evaluation.tables import _table

POLICY = "policy"
Scores = dict[tuple[str, str, float, int], float]


#: What a table can score: the final accuracy on the validation or the test split.
SCORES: dict[str, str] = {"val": "val_accuracy", "test": "test_accuracy"}


def read_scores(directory: Path, score: str = "val") -> Scores:
    """``(method, task, start_lr_factor, seed) -> score`` of a harness directory's finished
    runs: the final ``score`` accuracy (`SCORES`), a diverged run 0.

    Raises:
        ValueError: ``score`` is ``test`` and a task has no test accuracy there.
    """
    column = SCORES[score]
    scores: Scores = {}
    with open(directory / "results.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("error"):
                continue
            diverged = row["diverged"].strip().lower() in ("true", "1")
            accuracy = float(row[column]) if row.get(column) else math.nan
            if score == "test" and math.isnan(accuracy) and not diverged:
                raise ValueError(
                    f"{directory} has no test accuracy for {row['task']} (no test split): "
                    "evaluate it with --test-from-val to score test accuracy"
                )
            key = (row["method"], row["task"], float(row["start_lr_factor"]), int(row["seed"]))
            scores[key] = final_score(accuracy, diverged)
    return scores


def ablation_summary(
    recipes: Mapping[str, Sequence[Path]],
    *,
    reference_recipe: str | None = None,
    score: str = "val",
) -> dict[str, Any]:
    """The ablation table's figures for the recipes (no baselines), as JSON-ready data.

    Accuracies and their differences are in percentage points; a figure that does not exist
    (the std of one meta-training seed, the interval of no common cell) is NaN here and
    ``null`` in `summary_json`.

    Returns:
        ``{"score", "cells", "reference", "recipes", "against_reference"}``: ``cells`` the
        number of distinct policy cells (task, start factor, evaluation seed) in all folders;
        ``recipes[name]`` with ``folders``, ``folder_cells`` (cells each folder holds: fewer
        than ``cells`` is a folder still being evaluated), ``run_means`` (each meta-training
        seed's mean), ``mean``, ``std`` (across meta-training seeds), ``eval_seed_std`` and
        ``per_task`` means; ``against_reference[name]`` (every recipe but the reference, when
        one is given) with ``cells``, ``mean_difference``, ``interval`` (95%, meta-training
        seeds and cells resampled), ``wilcoxon_statistic``, ``wilcoxon_p``, ``wins``,
        ``ties``, ``losses``.
    """
    per_recipe = _read_recipes(recipes, reference_recipe, score)
    return _summary(recipes, per_recipe, reference_recipe, score)


def summary_json(summary: Mapping[str, Any]) -> str:
    """`ablation_summary`'s data as strict JSON (NaN becomes ``null``)."""

    def plain(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return json.dumps(plain(summary), indent=2, allow_nan=False) + "\n"


def _read_recipes(
    recipes: Mapping[str, Sequence[Path]], reference_recipe: str | None, score: str
) -> dict[str, list[Scores]]:
    if score not in SCORES:
        raise ValueError(f"score must be one of {sorted(SCORES)}, got {score!r}")
    per_recipe = {
        name: [read_scores(Path(d), score) for d in dirs] for name, dirs in recipes.items()
    }
    if reference_recipe is not None and reference_recipe not in per_recipe:
        raise ValueError(f"reference recipe {reference_recipe!r} is not among {list(per_recipe)}")
    return per_recipe


def _summary(
    recipes: Mapping[str, Sequence[Path]],
    per_recipe: Mapping[str, list[Scores]],
    reference_recipe: str | None,
    score: str,
) -> dict[str, Any]:
    cells: set[tuple[str, float, int]] = set()
    rows: dict[str, Any] = {}
    for name, seeds in per_recipe.items():
        means, spreads, held = [], [], []
        by_task: dict[str, list[float]] = defaultdict(list)
        for scores in seeds:  # one pass over each meta-training seed's policy cells
            mine = {key[1:]: v for key, v in scores.items() if key[0] == POLICY}
            cells.update(mine)
            held.append(len(mine))
            means.append(100 * float(np.mean(list(mine.values()))) if mine else math.nan)
            by_cell: dict[tuple[str, float], list[float]] = defaultdict(list)
            for (task, start, _), value in mine.items():
                by_cell[(task, start)].append(value)
                by_task[task].append(100 * value)
            stds = [np.std(v, ddof=1) for v in by_cell.values() if len(v) > 1]
            spreads.append(100 * float(np.mean(stds)) if stds else math.nan)
        rows[name] = {
            "folders": [str(d) for d in recipes[name]],
            "folder_cells": held,
            "run_means": means,
            "mean": float(np.mean(means)),
            "std": float(np.std(means, ddof=1)) if len(means) > 1 else math.nan,
            "eval_seed_std": float(np.mean(spreads)),
            "per_task": {task: float(np.mean(v)) for task, v in sorted(by_task.items())},
        }
    against: dict[str, Any] = {}
    if reference_recipe is not None and len(per_recipe) > 1:
        base = cell_means(per_recipe[reference_recipe])
        for name, seeds in per_recipe.items():
            if name == reference_recipe:
                continue
            ours = cell_means(seeds)
            common = sorted(set(ours) & set(base))
            result = paired_comparison([ours[c] for c in common], [base[c] for c in common])
            interval = [math.nan, math.nan]
            if common:
                low, high = seed_bootstrap_interval(
                    _seed_matrix(seeds, common), _seed_matrix(per_recipe[reference_recipe], common)
                )
                interval = [100 * low, 100 * high]
            against[name] = {
                "cells": result.n,
                "mean_difference": 100 * result.mean_difference,
                "interval": interval,
                "wilcoxon_statistic": result.wilcoxon_statistic,
                "wilcoxon_p": result.wilcoxon_pvalue,
                "wins": result.wins,
                "ties": result.ties,
                "losses": result.losses,
            }
    return {
        "score": score,
        "cells": len(cells),
        "reference": reference_recipe,
        "recipes": rows,
        "against_reference": against,
    }


def ablation_markdown(
    recipes: Mapping[str, Sequence[Path]],
    baselines: Sequence[str] = ("static",),
    *,
    baseline_dir: Path | None = None,
    reference_recipe: str | None = None,
    score: str = "val",
) -> str:
    """The ablation report (see the module docstring) as Markdown.

    Args:
        recipes: Recipe name -> the harness directories of its meta-training seeds.
        baselines: Methods to show beside the recipes.
        baseline_dir: The harness directory holding the baselines' runs (default:
            the first recipe's first directory).
        reference_recipe: Each other recipe is compared with this one (a
            Wilcoxon signed-rank test over the cells, each averaged over
            meta-training seeds); None: no test.
        score: ``val`` (final validation accuracy) or ``test`` (final test accuracy:
            folders evaluated with ``--test-from-val`` where a task has no test split).
    """
    return ablation_report(
        recipes, baselines, baseline_dir=baseline_dir, reference_recipe=reference_recipe,
        score=score,
    )[0]  # fmt: skip


def ablation_report(
    recipes: Mapping[str, Sequence[Path]],
    baselines: Sequence[str] = ("static",),
    *,
    baseline_dir: Path | None = None,
    reference_recipe: str | None = None,
    score: str = "val",
) -> tuple[str, dict[str, Any]]:
    """`ablation_markdown` and `ablation_summary` of the same folders, read once."""
    per_recipe = _read_recipes(recipes, reference_recipe, score)
    summary = _summary(recipes, per_recipe, reference_recipe, score)
    first = next(iter(per_recipe.values()))[0]
    reference = read_scores(baseline_dir, score) if baseline_dir is not None else first
    tasks = sorted({t for (m, t, _, _) in (*first, *reference) if m == POLICY or m in baselines})
    # Every folder should hold the same cells: a folder still being evaluated (or a failed
    # cell) would average over fewer tasks, so its mean is marked, never passed off as whole.
    n_cells = summary["cells"]
    rows_of = summary["recipes"]
    lines = [
        f"**Incomplete:** {path} holds {n} of the {n_cells} policy cells the other folders "
        "hold; its mean covers only those (marked *)."
        for row in rows_of.values()
        for path, n in zip(row["folders"], row["folder_cells"], strict=True)
        if n < n_cells
    ]
    if lines:
        lines.append("")
    lines += [f"| recipe | meta-seeds | mean {score} acc (± std over meta-seeds) | eval-seed std | "
              "each meta-seed |", "|---|---|---|---|---|"]  # fmt: skip
    for name, row in rows_of.items():
        marks = ["*" if n < n_cells else "" for n in row["folder_cells"]]
        each = ", ".join(f"{m:.2f}{mark}" for m, mark in zip(row["run_means"], marks, strict=True))
        lines.append(
            f"| {name} | {len(row['run_means'])} | {row['mean']:.2f} ± {row['std']:.2f} | "
            f"{row['eval_seed_std']:.2f} | {each} |"
        )
    for method in baselines:
        values = [v for key, v in reference.items() if key[0] == method]
        if values:
            lines.append(f"| {method} (baseline) | - | {100 * np.mean(values):.2f} | - | - |")
    lines.append("")
    lines += [f"Per task (mean {score} acc in %, recipes averaged over their meta-seeds):", ""]
    header = ["task", *per_recipe, *baselines]
    table_rows = []
    for task in tasks:
        cells_row = [task]
        for row in rows_of.values():
            mean = row["per_task"].get(task)
            cells_row.append(f"{mean:.2f}" if mean is not None else "n/a")
        for method in baselines:
            values = [v for key, v in reference.items() if key[0] == method and key[1] == task]
            cells_row.append(f"{100 * np.mean(values):.2f}" if values else "n/a")
        table_rows.append(cells_row)
    lines += _table(header, table_rows)
    lines += _seed_spread(per_recipe, tasks)
    if summary["against_reference"]:
        lines += _against_reference(summary)
    lines += _recipe_aggregate(per_recipe, first, reference, baselines)
    return "\n".join(lines), summary


def _seed_spread(per_recipe: Mapping[str, list[Scores]], tasks: Sequence[str]) -> list[str]:
    """Per task, the std across meta-training seeds of each seed's mean (where seeds scatter)."""
    multi = {name: seeds for name, seeds in per_recipe.items() if len(seeds) > 1}
    if not multi:
        return []
    rows = []
    for task in tasks:
        row = [task]
        for seeds in multi.values():
            means = [
                np.mean(values)
                for s in seeds
                if (values := [v for k, v in s.items() if k[0] == POLICY and k[1] == task])
            ]
            row.append(f"{100 * np.std(means, ddof=1):.2f}" if len(means) > 1 else "n/a")
        rows.append(row)
    title = "Spread across meta-training seeds per task (std of the seeds' means, points):"
    return ["", title, "", *_table(["task", *multi], rows)]


def cell_means(seeds: Sequence[Scores]) -> dict[tuple[str, float, int], float]:
    """The policy's score per (task, start factor, evaluation seed), averaged over the
    meta-training seeds that ran it."""
    values: dict[tuple[str, float, int], list[float]] = defaultdict(list)
    for scores in seeds:
        for (method, task, start, seed), value in scores.items():
            if method == POLICY:
                values[(task, start, seed)].append(value)
    return {cell: float(np.mean(v)) for cell, v in values.items()}


def _against_reference(summary: Mapping[str, Any]) -> list[str]:
    """The summary's test of each recipe against the reference, as a table."""
    reference = summary["reference"]
    lines = [
        "",
        f"Against `{reference}` (paired over the (task, start factor, evaluation seed) cells, "
        "each averaged over meta-training seeds; Wilcoxon signed-rank, two-sided):",
        "",
    ]
    rows = []
    for name, test in summary["against_reference"].items():
        low, high = test["interval"]
        interval = "n/a" if math.isnan(low) else f"[{low:+.2f}, {high:+.2f}]"
        rows.append(
            [
                name,
                str(test["cells"]),
                f"{test['mean_difference']:+.2f}",
                interval,
                f"{test['wilcoxon_statistic']:.1f}",
                f"{test['wilcoxon_p']:.3g}",
                f"{test['wins']}/{test['ties']}/{test['losses']}",
            ]
        )
    header = ["recipe", "cells", "mean diff (points)", "95% CI, meta-seeds and cells resampled"]
    return (
        lines
        + _table([*header, "W", "p", "win/tie/loss"], rows)
        + [
            "",
            "The interval resamples each recipe's meta-training seeds and the cells "
            "(`agents.evaluation.stats.seed_bootstrap_interval`); the Wilcoxon test holds the "
            "seeds' draw fixed, so a small p with an interval across 0 says the difference may be "
            "the draw of meta-training seeds.",
        ]
    )


def _seed_matrix(seeds: Sequence[Scores], cells: Sequence[tuple[str, float, int]]) -> np.ndarray:
    """(meta-training seeds x cells) of the policy's scores; NaN where a seed lacks a cell."""
    return np.array([[scores.get((POLICY, *cell), math.nan) for cell in cells] for scores in seeds])


def _recipe_aggregate(
    per_recipe: Mapping[str, list[Scores]],
    first: Scores,
    reference: Scores,
    baselines: Sequence[str],
) -> list[str]:
    """rliable over (meta-seed, eval seed) runs x cells; baselines over their eval seeds."""
    cells = sorted({(t, f) for (m, t, f, _) in first if m == POLICY})
    eval_seeds = sorted({s for (m, _, _, s) in first if m == POLICY})

    def rows(scores: Scores, method: str) -> list[list[float]]:
        return [[scores.get((method, t, f, s), math.nan) for t, f in cells] for s in eval_seeds]

    matrices: dict[str, np.ndarray] = {}
    for name, seeds in per_recipe.items():
        matrices[name] = np.array([row for scores in seeds for row in rows(scores, POLICY)])
    for method in baselines:
        matrices[method] = np.array(rows(reference, method))
    matrices = {m: x for m, x in matrices.items() if x.size and not np.isnan(x).any()}
    gains: dict[str, np.ndarray] = {}
    if "static" in matrices:
        static = matrices["static"]
        for name, x in matrices.items():
            if name != "static":
                repeats = x.shape[0] // static.shape[0]
                gains[name] = 100.0 * (x - np.tile(static, (repeats, 1)))
    note = (
        f"{len(cells)} cells x (meta-seeds x {len(eval_seeds)} evaluation seeds) runs per recipe, "
        f"{len(eval_seeds)} runs per baseline"
    )
    return rliable_lines(matrices, gains, note)
