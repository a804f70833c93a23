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

from agents.cli import option, parse_config, run_job
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

    def directories(self) -> dict[str, list[Path]]:
        """Recipe name -> its harness directories."""
        pairs = (item.split("=", 1) for item in self.recipes)
        return {name: [Path(d) for d in dirs.split("+")] for name, dirs in pairs}


def _check(config: CompareConfig) -> None:
    for name, dirs in config.directories().items():
        for folder in dirs:
            if not (folder / "results.csv").is_file():
                raise FileNotFoundError(
                    f"recipe {name}: {folder} holds no results.csv; give report directories "
                    "of scripts/evaluate.py"
                )


def main(argv: list[str] | None = None) -> int:
    config = parse_config(CompareConfig, __doc__, argv, check=_check)
    return run_job(lambda: print(ablation_markdown(config.directories(), config.baselines)))


if __name__ == "__main__":
    sys.exit(main())
