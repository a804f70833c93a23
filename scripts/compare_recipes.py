"""Compare meta-training recipes on the held-out suite, from one resumable command.

A recipes file (TOML or JSON) names sets of train_agent.py flags:

    reference = "make-train"
    [recipes.make-train]
    flags = []
    [recipes.population]
    flags = ["--vec-env", "population", "--n-envs", "64", "--n-steps", "4"]

The command evaluates the baselines once, meta-trains every recipe with every
--meta-seeds seed, evaluates each policy on the held-out suite (--tasks,
--eval-seeds) and writes <out-dir>/ablation.md: mean and spread across
meta-training seeds and across evaluation seeds, per task against the
baselines, a Wilcoxon test against the reference recipe over the cells (each
averaged over meta-training seeds), and the rliable aggregate. Stopped at any
point (Ctrl-C, SIGTERM, the end of a session), the same command continues
where it stopped: finished seeds and cells are not redone; a changed recipes
file or option is refused. --dirs NAME=DIR+DIR only tabulates existing
harness folders (reports of scripts/evaluate.py, one per meta-training seed).
--json-out FILE writes the table's figures as JSON too (per-run means,
per-task means, the test against the reference), for scripts that read them.
--meta-from DIR evaluates the policies another comparison of the same recipes
file trained, on other cells (--start-lr-factors, --optimizer): the rescue and
SGD tables of the same policies.

Examples:
    python scripts/compare_recipes.py --recipes-file recipes.toml --out-dir logs/cmp-1
    python scripts/compare_recipes.py --recipes-file recipes.toml --out-dir logs/cmp-1 \\
        --meta-seeds 0,1,2 --baselines static,grid
    python scripts/compare_recipes.py --recipes-file recipes.toml --out-dir logs/cmp-1-sgd \\
        --meta-from logs/cmp-1 --optimizer sgd
    python scripts/compare_recipes.py --dirs "default=logs/eval-default" \\
        --dirs "population=logs/eval-pop-s0+logs/eval-pop-s1" --reference default \\
        --json-out logs/default-vs-population.json
"""

from __future__ import annotations

import sys
from pathlib import Path

from agents.cli import parse_config, run_job, use_threads
from agents.evaluation.ablation import ablation_report, summary_json
from agents.evaluation.recipes import ComparisonConfig, check_dirs, compare_recipes
from hpenv.io import atomic_open


def _write(path: str, text: str) -> None:
    """``--json-out``: ``text`` to ``path`` atomically, its folder made if missing."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w") as fh:
        fh.write(text)


def main(argv: list[str] | None = None) -> int:
    config = parse_config(ComparisonConfig, __doc__, argv, check=check_dirs)
    use_threads(config.threads)
    if config.dirs:

        def table() -> None:
            text, summary = ablation_report(
                config.directories(),
                config.baselines,
                reference_recipe=config.reference,
                baseline_dir=Path(config.baselines_from) if config.baselines_from else None,
                score=config.score,
            )
            print(text)
            if config.json_out:
                _write(config.json_out, summary_json(summary))

        # a folder without the cells or scores asked for is a ValueError
        return run_job(table, input_errors=(ValueError,))
    command = ["python", "scripts/compare_recipes.py", *(sys.argv[1:] if argv is None else argv)]

    def job() -> None:
        table = compare_recipes(config, command)
        print(table.read_text())
        print(f"table: {table}")
        if config.json_out:
            _write(config.json_out, table.with_suffix(".json").read_text())

    # A recipes file refused (its flags, a change since the comparison began) is a ValueError.
    return run_job(job, input_errors=(ValueError,))


if __name__ == "__main__":
    sys.exit(main())
