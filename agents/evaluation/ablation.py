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

`agents.evaluation.recipes` runs a whole comparison (meta-training, evaluation,
this table) from a recipes file.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

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
    if score not in SCORES:
        raise ValueError(f"score must be one of {sorted(SCORES)}, got {score!r}")
    per_recipe: dict[str, list[Scores]] = {
        name: [read_scores(Path(d), score) for d in dirs] for name, dirs in recipes.items()
    }
    if reference_recipe is not None and reference_recipe not in per_recipe:
        raise ValueError(f"reference recipe {reference_recipe!r} is not among {list(per_recipe)}")
    first = next(iter(per_recipe.values()))[0]
    reference = read_scores(baseline_dir, score) if baseline_dir is not None else first
    tasks = sorted({t for (m, t, _, _) in (*first, *reference) if m == POLICY or m in baselines})
    # Every folder should hold the same cells: a folder still being evaluated (or a failed
    # cell) would average over fewer tasks, so its mean is marked, never passed off as whole.
    cells = {
        key[1:] for seeds in per_recipe.values() for s in seeds for key in s if key[0] == POLICY
    }
    held = {
        name: [sum(1 for key in scores if key[0] == POLICY) for scores in seeds]
        for name, seeds in per_recipe.items()
    }
    lines = [
        f"**Incomplete:** {path} holds {n} of the {len(cells)} policy cells the other folders "
        "hold; its mean covers only those (marked *)."
        for name, counts in held.items()
        for path, n in zip(recipes[name], counts, strict=True)
        if n < len(cells)
    ]
    if lines:
        lines.append("")
    lines += [f"| recipe | meta-seeds | mean {score} acc (± std over meta-seeds) | eval-seed std | "
              "each meta-seed |", "|---|---|---|---|---|"]  # fmt: skip
    for name, seeds in per_recipe.items():
        means, spreads = [], []
        marks = ["*" if n < len(cells) else "" for n in held[name]]
        for scores in seeds:
            mine = {key: v for key, v in scores.items() if key[0] == POLICY}
            means.append(float(np.mean(list(mine.values()))) if mine else math.nan)
            by_cell: dict[tuple[str, float], list[float]] = defaultdict(list)
            for (_, task, start, _), value in mine.items():
                by_cell[(task, start)].append(value)
            stds = [np.std(v, ddof=1) for v in by_cell.values() if len(v) > 1]
            spreads.append(float(np.mean(stds)) if stds else math.nan)
        spread = np.std(means, ddof=1) if len(means) > 1 else math.nan
        each = ", ".join(f"{100 * m:.2f}{mark}" for m, mark in zip(means, marks, strict=True))
        lines.append(
            f"| {name} | {len(seeds)} | {100 * np.mean(means):.2f} ± {100 * spread:.2f} | "
            f"{100 * np.mean(spreads):.2f} | {each} |"
        )
    for method in baselines:
        values = [v for key, v in reference.items() if key[0] == method]
        if values:
            lines.append(f"| {method} (baseline) | - | {100 * np.mean(values):.2f} | - | - |")
    lines.append("")
    lines += [f"Per task (mean {score} acc in %, recipes averaged over their meta-seeds):", ""]
    header = ["task", *per_recipe, *baselines]
    rows = []
    for task in tasks:
        row = [task]
        for seeds in per_recipe.values():
            values = [
                v for s in seeds for key, v in s.items() if key[0] == POLICY and key[1] == task
            ]
            row.append(f"{100 * np.mean(values):.2f}" if values else "n/a")
        for method in baselines:
            values = [v for key, v in reference.items() if key[0] == method and key[1] == task]
            row.append(f"{100 * np.mean(values):.2f}" if values else "n/a")
        rows.append(row)
    lines += _table(header, rows)
    lines += _seed_spread(per_recipe, tasks)
    if reference_recipe is not None and len(per_recipe) > 1:
        lines += _against_reference(per_recipe, reference_recipe)
    lines += _recipe_aggregate(per_recipe, first, reference, baselines)
    return "\n".join(lines)


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


def _against_reference(per_recipe: Mapping[str, list[Scores]], reference: str) -> list[str]:
    """Each recipe against ``reference`` on the (task, start, eval seed) cells both ran."""
    base = cell_means(per_recipe[reference])
    lines = [
        "",
        f"Against `{reference}` (paired over the (task, start factor, evaluation seed) cells, "
        "each averaged over meta-training seeds; Wilcoxon signed-rank, two-sided):",
        "",
    ]
    rows = []
    for name, seeds in per_recipe.items():
        if name == reference:
            continue
        mine = cell_means(seeds)
        cells = sorted(set(mine) & set(base))
        result = paired_comparison([mine[c] for c in cells], [base[c] for c in cells])
        interval = "n/a"
        if cells:
            low, high = seed_bootstrap_interval(
                _seed_matrix(seeds, cells), _seed_matrix(per_recipe[reference], cells)
            )
            interval = f"[{100 * low:+.2f}, {100 * high:+.2f}]"
        rows.append(
            [
                name,
                str(result.n),
                f"{100 * result.mean_difference:+.2f}",
                interval,
                f"{result.wilcoxon_statistic:.1f}",
                f"{result.wilcoxon_pvalue:.3g}",
                f"{result.wins}/{result.ties}/{result.losses}",
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
