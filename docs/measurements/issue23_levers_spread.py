"""How far apart are the levers of issue 23, beside how far apart chance alone would put them?

Reads issue23_levers_vs_nine.txt (the per-run means, "each meta-seed", of every lever and of
make train's nine runs on the held-out suite's three conditions; made by
issue23_levers_vs_nine.sh) and prints, per condition:

- the spread (std) of the 23 three-run levers' means, beside the spread three runs of one
  recipe would have by chance (the levers' pooled within-lever std over sqrt(3));
- the implied std of the levers' true effects (their excess spread), and each lever's mean
  shrunk towards the levers' grand mean by tau^2 / (tau^2 + sigma^2 / 3) (the normal-normal
  empirical-Bayes estimate), as a difference to make train's nine-run mean;
- whether the seeds 5, 10, 15 themselves carry a shared effect across the levers (two-way
  ANOVA without replication: F for the seed column).

x5sw (six runs) and x10h (seeds 5, 15, 25) are left out of the spread; x10h also of the ANOVA.
Run from the repository root: python docs/measurements/issue23_levers_spread.py
"""

import re
from pathlib import Path

import numpy as np
from scipy import stats

TXT = Path(__file__).with_name("issue23_levers_vs_nine.txt")


def per_run_means(text: str, cond: str) -> dict[str, list[float]]:
    """Each recipe's per-run means from the recipe table of CONDITION's compare_recipes call."""
    part = text.split(f"######## held out, {cond}:")[1].split("########")[0]
    rows = {}
    for line in part.splitlines():
        f = [x.strip() for x in line.strip("|").split("|")]
        if len(f) == 5 and f[0].startswith("x") and re.fullmatch(r"\d+", f[1]):
            rows[f[0]] = [float(x) for x in f[4].split(",")]
    return rows


def main() -> None:
    text = TXT.read_text()
    for cond in ("eval", "rescue", "sgd"):
        rows = per_run_means(text, cond)
        nine = np.array(rows.pop("x5s9"))
        rows.pop("x5sw")
        anova_rows = {k: v for k, v in rows.items() if k != "x10h"}
        means = np.array([np.mean(v) for v in rows.values()])
        within = float(np.mean([np.var(v, ddof=1) for v in rows.values()]))
        chance = np.sqrt(within / 3)
        spread = means.std(ddof=1)
        tau2 = max(spread**2 - chance**2, 0.0)
        shrink = tau2 / (tau2 + chance**2)
        print(
            f"######## {cond}: {len(means)} levers of three runs; make train's nine: "
            f"{nine.mean():.2f} (std {nine.std(ddof=1):.2f})"
        )
        print(
            f"levers' mean {means.mean():.2f}; spread of their means {spread:.2f}, by chance "
            f"{chance:.2f} (within-lever std {np.sqrt(within):.2f}); true effects' std "
            f"{np.sqrt(tau2):.2f}; shrinkage {shrink:.2f}"
        )
        x = np.array([v[:3] for v in anova_rows.values()])
        r, c = x.shape
        g = x.mean()
        ss_seed = r * ((x.mean(0) - g) ** 2).sum()
        ss_res = ((x - x.mean(1, keepdims=True) - x.mean(0, keepdims=True) + g) ** 2).sum()
        f_seed = (ss_seed / (c - 1)) / (ss_res / ((r - 1) * (c - 1)))
        p_seed = stats.f.sf(f_seed, c - 1, (r - 1) * (c - 1))
        print(
            f"seeds 5, 10, 15 across {r} levers: means {np.round(x.mean(0), 2).tolist()}, "
            f"F {f_seed:.2f}, p {p_seed:.2g}"
        )
        print("| lever | three-run mean | - make train's nine | shrunk, - make train's nine |")
        print("|---|---|---|---|")
        order = sorted(zip(rows, means, strict=True), key=lambda t: -t[1])
        for name, m in order:
            shrunk = means.mean() + shrink * (m - means.mean())
            print(f"| {name} | {m:.2f} | {m - nine.mean():+.2f} | {shrunk - nine.mean():+.2f} |")


if __name__ == "__main__":
    main()
