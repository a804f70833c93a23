"""The issue's bars 1-5 for make train's three x5s runs and v2.1 on the split folders, scored on
test accuracy (`--score test`, every task with a test split: evaluate.py --test-from-val) or on
the validation half the runs read (`--score val`):

    python docs/measurements/data/issue23-session16/bars.py --score test
"""

import argparse
from pathlib import Path

import numpy as np

from agents.evaluation.ablation import read_scores
from agents.evaluation.stats import seed_bootstrap_interval

D = Path(__file__).parent
ONE_X = ("prodigy", "schedulefree", "probe_cosine", "lrfind_cosine", "mechanic")


def by_task(scores, method="policy"):
    tasks = sorted({k[1] for k in scores if k[0] == method})
    return {t: float(np.mean([v for k, v in scores.items() if k[0] == method and k[1] == t]))
            for t in tasks}  # fmt: skip


def mean(scores, method="policy"):
    return float(np.mean([v for k, v in scores.items() if k[0] == method]))


def pooled(dirs, score):
    """Each cell's score averaged over the runs (folders) that ran it."""
    cells: dict = {}
    for d in dirs:
        for key, value in read_scores(d, score).items():
            cells.setdefault(key, []).append(value)
    return {key: float(np.mean(values)) for key, values in cells.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--score", choices=("test", "val"), default="test")
    score = parser.parse_args().score
    base = read_scores(D / "split-eval-baselines", score)
    sgd_base = read_scores(D / "split-sgd-baselines", score)
    runs = [f"x5s-{s}" for s in (5, 10, 15)]
    policies = {**{run: [run] for run in runs}, "x5s (3 runs)": runs, "v2.1": ["v21"]}
    static_tasks, probe_tasks = by_task(base, "static"), by_task(base, "probe_cosine")
    sgd_static = by_task(sgd_base, "static")
    print(f"score: {score} accuracy (%)")
    print("baselines 1x: " + ", ".join(f"{m} {100 * mean(base, m):.2f}"
                                         for m in ("static", "grid", *ONE_X)))  # fmt: skip
    print(
        f"SGD baselines: static {100 * mean(sgd_base, 'static'):.2f}, "
        f"grid {100 * mean(sgd_base, 'grid'):.2f}"
    )
    rows = []
    for name, tags in policies.items():
        one = pooled([D / f"split-eval-{tag}" for tag in tags], score)
        sgd = pooled([D / f"split-sgd-{tag}" for tag in tags], score)
        rescue_dirs = [D / f"split-rescue-{tag}" for tag in tags]
        whole = all((d / "results.csv").is_file() for d in rescue_dirs)
        rescue = pooled(rescue_dirs, score) if whole else {}
        m1 = mean(one)
        bar1_grid = m1 - (mean(base, "grid") - 0.01)
        bar1_methods = min(m1 - mean(base, m) - 0.01 for m in ONE_X)
        tasks = by_task(one)
        worst_static = min(tasks[t] - static_tasks[t] for t in tasks)
        worst_probe = min(tasks[t] - probe_tasks[t] for t in tasks)
        bar3 = mean(rescue) - mean(base, "static") - 0.02 if rescue else float("nan")
        bar4_grid = mean(sgd) - (mean(sgd_base, "grid") - 0.01)
        sgd_tasks = by_task(sgd)
        worst_sgd = min(sgd_tasks[t] - sgd_static[t] for t in sgd_tasks)
        rows.append((name, m1, bar1_grid, bar1_methods, worst_static, worst_probe,
                     mean(rescue) if rescue else float("nan"), bar3, mean(sgd), bar4_grid,
                     worst_sgd))  # fmt: skip
    print(
        "| policy | 1x mean | bar 1: - (grid - 1) | bar 1: - (best 1x method + 1) | bar 2: "
        "worst task - static (>= -0.5) | bar 2: worst task - probe_cosine (>= -1.0) | bad "
        "starts mean | bar 3: - (static + 2) | SGD mean | bar 4: - (SGD grid - 1) | bar 4: "
        "worst task - SGD static (>= -1.0) |"
    )
    print("|" + "---|" * 11)
    for row in rows:
        print(f"| {row[0]} | " + " | ".join(f"{100 * v:+.2f}" if i not in (0, 5, 7) else
                                           f"{100 * v:.2f}" for i, v in enumerate(row[1:]))
              + " |")  # fmt: skip
    print(
        "\nThe mean clauses' margins with a 95% interval (the runs and the cells resampled,"
        " agents.evaluation.stats.seed_bootstrap_interval):"
    )
    for name, tags in policies.items():
        if name in runs:
            continue
        for clause, prefix, base_scores in (
            ("bar 1: - (grid - 1)", "eval", base),
            ("bar 4: - (SGD grid - 1)", "sgd", sgd_base),
        ):
            folders = [read_scores(D / f"split-{prefix}-{tag}", score) for tag in tags]
            cells = sorted(k[1:] for k in folders[0] if k[0] == "policy")
            mine = np.array([[f[("policy", *c)] for c in cells] for f in folders])
            grid = np.array([[base_scores[("grid", *c)] for c in cells]])
            low, high = seed_bootstrap_interval(mine, grid)
            margin = float(mine.mean() - grid.mean()) + 0.01
            print(f"- {name}, {clause}: {100 * margin:+.2f} "
                  f"[{100 * (low + 0.01):+.2f}, {100 * (high + 0.01):+.2f}]")  # fmt: skip
    x5s = [r[1] for r in rows if r[0] in runs]
    print(
        f"bar 5: make train's three runs at 1x: {', '.join(f'{100 * v:.2f}' for v in x5s)}; "
        f"range {100 * (max(x5s) - min(x5s)):.2f} (<= 1.0)"
    )


if __name__ == "__main__":
    main()
