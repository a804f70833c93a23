"""How far make-train-like ensembles scatter on each protocol: the three x5s runs and the
fourteenth session's twelve random five-member ensembles of x5s members (seeds 5-19), at 1x,
on the standard protocol (`../issue23-session14/`) and with --test-from-val (this folder),
scored on test accuracy and on the validation half the runs read:

    python docs/measurements/data/issue23-session16/pool_spread.py
"""

from pathlib import Path

import numpy as np

from agents.evaluation.ablation import read_scores

D = Path(__file__).parent
D14 = D.parent / "issue23-session14"


def mean(folder: Path, score: str) -> float:
    return float(np.mean([v for k, v in read_scores(folder, score).items() if k[0] == "policy"]))


def main() -> None:
    names = [f"x5s-{s}" for s in (5, 10, 15)]
    names += sorted(p.name.removeprefix("p-eval-") for p in D14.glob("p-eval-r5-*"))
    rows = []
    for name in names:
        standard = D14 / (f"h-eval-{name}" if name.startswith("x5s") else f"p-eval-{name}")
        split = D / f"split-eval-{name}"
        if not (split / "results.csv").is_file():
            continue
        rows.append((name, mean(standard, "val"), mean(split, "val"), mean(split, "test")))
    print("| ensemble | standard (validation) | validation half | test |")
    print("|---|---|---|---|")
    for name, *values in rows:
        print(f"| {name} | " + " | ".join(f"{100 * v:.2f}" for v in values) + " |")
    table = np.array([r[1:] for r in rows])
    print(f"| mean of {len(rows)} | " + " | ".join(f"{100 * v:.2f}" for v in table.mean(0)) + " |")
    std = table.std(0, ddof=1)
    print("| std across them | " + " | ".join(f"{100 * v:.2f}" for v in std) + " |")
    # the expected range of three draws from a normal spread: 1.693 x its std
    print("| expected range of three (1.69 x std) | "
          + " | ".join(f"{100 * 1.693 * v:.2f}" for v in std) + " |")  # fmt: skip


if __name__ == "__main__":
    main()
