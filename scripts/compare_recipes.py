"""The ablation table: policy recipes (several meta-training seeds each) on the same harness cells.

Each NAME=DIR+DIR+... names the harness directories (scripts/evaluate.py
--out-dir) of one recipe's meta-training seeds; they must have evaluated the
same cells, with the baselines in them. Prints Markdown (per recipe: mean over
the held-out cells with its spread across meta-training seeds, per task, and
the rliable aggregate).

Example (each DIR a report of scripts/evaluate.py --policy <that seed's policy>):
    python scripts/compare_recipes.py --recipes "default=logs/eval-default" \\
        --recipes "population=logs/eval-pop-s0+logs/eval-pop-s1"
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from agents.cli import option, parse_config
from agents.evaluation.ablation import ablation_markdown


@dataclass(frozen=True)
class CompareConfig:
    """Which recipes (every field is a flag)."""

    recipes: tuple[str, ...] = option(
        "NAME=DIR+DIR+... (comma-separate recipes or repeat the flag)", default=()
    )
    baselines: tuple[str, ...] = option(
        "baseline methods to show", default=("static", "cosine", "prodigy", "schedulefree", "grid")
    )

    def __post_init__(self) -> None:
        if not self.recipes:
            raise ValueError("give at least one --recipes NAME=DIR+DIR")
        if any("=" not in r for r in self.recipes):
            raise ValueError(f"recipes must be NAME=DIR+DIR+..., got {self.recipes}")


def main(argv: list[str] | None = None) -> int:
    config = parse_config(CompareConfig, __doc__, argv)
    recipes = {}
    for item in config.recipes:
        name, dirs = item.split("=", 1)
        recipes[name] = [Path(d) for d in dirs.split("+")]
    print(ablation_markdown(recipes, config.baselines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
