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
harness folders.

Examples:
    python scripts/compare_recipes.py --recipes-file recipes.toml --out-dir logs/cmp-1
    python scripts/compare_recipes.py --recipes-file recipes.toml --out-dir logs/cmp-1 \\
        --meta-seeds 0,1,2 --baselines static,grid
    python scripts/compare_recipes.py --dirs "v2=logs/eval-v2" --dirs "pop=logs/e-s0+logs/e-s1"
"""

from __future__ import annotations

import sys
from pathlib import Path

from agents.cli import parse_config, run_job
from agents.evaluation.ablation import ablation_markdown
from agents.evaluation.recipes import ComparisonConfig, compare_recipes


def main(argv: list[str] | None = None) -> int:
    config = parse_config(ComparisonConfig, __doc__, argv)
    if config.dirs:
        recipes = {}
        for item in config.dirs:
            name, dirs = item.split("=", 1)
            recipes[name] = [Path(d) for d in dirs.split("+")]
        print(ablation_markdown(recipes, config.baselines, reference_recipe=config.reference))
        return 0
    command = ["python", "scripts/compare_recipes.py", *(sys.argv[1:] if argv is None else argv)]

    def job() -> None:
        try:
            table = compare_recipes(config, command)
        except (ValueError, FileNotFoundError) as exc:
            print(f"compare_recipes.py: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        print(table.read_text())
        print(f"table: {table}")

    return run_job(job)


if __name__ == "__main__":
    sys.exit(main())
