"""Paired difference of two harness folders over their cells, leaving tasks out: mean, Wilcoxon
signed-rank p (two-sided) and wins/ties/losses, on the harness's score (test accuracy where the
task has a test split, else validation accuracy) and on validation accuracy.

usage: paired.py REF_DIR NEW_DIR [--without TASK,...]"""

import argparse
import csv

from scipy.stats import wilcoxon


def load(folder: str, column: str) -> dict:
    with open(folder + "/results.csv") as f:
        rows = list(csv.DictReader(f))
    key = ("task", "seed", "start_lr_factor")
    if column == "score":
        return {
            tuple(r[k] for k in key): float(
                r["val_accuracy"] if r["test_accuracy"] == "nan" else r["test_accuracy"]
            )
            for r in rows
        }
    return {tuple(r[k] for k in key): float(r[column]) for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("reference")
    parser.add_argument("new")
    parser.add_argument("--without", default="")
    args = parser.parse_args()
    left_out = set(filter(None, args.without.split(",")))
    for column in ("score", "val_accuracy"):
        before, after = load(args.reference, column), load(args.new, column)
        keys = sorted(k for k in before if k[0] not in left_out)
        diffs = [100 * (after[k] - before[k]) for k in keys]
        wins, losses = sum(d > 1e-9 for d in diffs), sum(d < -1e-9 for d in diffs)
        p = wilcoxon(diffs).pvalue if wins + losses else float("nan")
        print(
            f"{column:12s} cells {len(keys)}  without {sorted(left_out) or '-'}  "
            f"mean {sum(diffs) / len(diffs):+.2f}  p {p:.3g}  "
            f"win/tie/loss {wins}/{len(diffs) - wins - losses}/{losses}"
        )


if __name__ == "__main__":
    main()
