"""The evaluation harness: the frozen policy against every baseline users would pick.

`evaluate` runs the grid task x start factor x seed x method on the shared
`agents.evaluation.methods.core.RunSpec` cells (same task, seed, budget, intervals and
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

With ``ray_address`` (``--ray-address``) the cells run as Ray tasks on a
cluster, the rows still appended here as each cell finishes
(`agents.evaluation.ray_cells`).

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

from agents.evaluation.cells import (
    MethodFactory,
    construct_warm,
    plan_cells,
    registered_methods,
    warm_configs_for,
)
from agents.evaluation.config import (
    DEFAULT_TASKS,
    GRID,
    OPTUNA,
    OPTUNA_SIMILAR,
    OPTUNA_WARM,
    POLICY,
    STATIC,
    WARM_METHODS,
    EvalConfig,
    TrainingTaskError,
    check_training_tasks,
    parse_fidelity,
    resume_eval_config,
)
from agents.evaluation.plots import (
    PROGRESS_GRID,
    resample,
    write_plots,
    write_tensorboard,
)
from agents.evaluation.records import (
    COLUMNS,
    DERIVED_COLUMNS,
    RAW_COLUMNS,
    Key,
    RunStore,
    result_row,
    row_key,
)
from agents.evaluation.report import summarize
from agents.evaluation.runner import (
    Report,
    default_out_dir,
    evaluate,
)
from agents.evaluation.runs import derive_columns
from agents.evaluation.stats import (
    TIE_TOLERANCE,
    PairedComparison,
    Spread,
    final_score,
    lr_log10_distance,
    mean_log10_lr,
    mean_std,
    paired_comparison,
    samples_to_target,
    win_tie_loss,
)
from agents.evaluation.tables import machine_info

__all__ = [
    "COLUMNS",
    "DEFAULT_TASKS",
    "DERIVED_COLUMNS",
    "GRID",
    "OPTUNA",
    "OPTUNA_SIMILAR",
    "OPTUNA_WARM",
    "POLICY",
    "PROGRESS_GRID",
    "RAW_COLUMNS",
    "STATIC",
    "TIE_TOLERANCE",
    "WARM_METHODS",
    "EvalConfig",
    "Key",
    "MethodFactory",
    "PairedComparison",
    "Report",
    "RunStore",
    "Spread",
    "TrainingTaskError",
    "check_training_tasks",
    "construct_warm",
    "default_out_dir",
    "derive_columns",
    "evaluate",
    "final_score",
    "lr_log10_distance",
    "machine_info",
    "mean_log10_lr",
    "mean_std",
    "paired_comparison",
    "parse_fidelity",
    "plan_cells",
    "registered_methods",
    "resample",
    "result_row",
    "resume_eval_config",
    "row_key",
    "samples_to_target",
    "summarize",
    "warm_configs_for",
    "win_tie_loss",
    "write_plots",
    "write_tensorboard",
]
