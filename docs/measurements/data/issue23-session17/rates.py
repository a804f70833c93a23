"""Where each policy takes the rate, per held-out task: the mean over a folder's runs of the
highest rate and of the final rate, both as log10 of the multiple of the run's start
(the seventeenth session's hidden rate scale against make train's runs).

usage: python rates.py NAME=PATH[+PATH...] ...   (harness folders, or their runs.jsonl files)
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from pathlib import Path


def rates(paths: list[str]) -> dict[str, tuple[float, float]]:
    peak: dict[str, list[float]] = defaultdict(list)
    final: dict[str, list[float]] = defaultdict(list)
    for path in map(Path, paths):
        for line in (path / "runs.jsonl" if path.is_dir() else path).read_text().splitlines():
            run = json.loads(line)
            if run["method"] != "policy" or not run["trajectory"]:
                continue
            lrs = [point["lr"] for point in run["trajectory"]]
            peak[run["task"]].append(math.log10(max(lrs) / lrs[0]))
            final[run["task"]].append(math.log10(lrs[-1] / lrs[0]))
    return {t: (sum(peak[t]) / len(peak[t]), sum(final[t]) / len(final[t])) for t in sorted(peak)}


def main(argv: list[str]) -> None:
    table = {name: rates(spec.split("+")) for name, spec in (a.split("=", 1) for a in argv)}
    tasks = sorted({t for row in table.values() for t in row})
    print("log10(rate / start): highest / final, mean over each recipe's runs")
    print("| task | " + " | ".join(table) + " |")
    print("|---|" + "---|" * len(table))
    rows = list(table.values())
    for task in tasks:
        cells = [f"{r[task][0]:+.2f} / {r[task][1]:+.2f}" if task in r else "-" for r in rows]
        print(f"| {task} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
