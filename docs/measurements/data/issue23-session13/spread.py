"""Bar 5's spread, estimated from one pool of make-train members: every sub-ensemble measured at
the default rate, grouped by size (three or five members), each group's mean and standard
deviation over ensembles, and the range of every three pairwise disjoint ensembles of a size
(three independent `make train` runs drawn from the pool: bar 5 asks for a range <= 1.0).

Usage: python spread.py DIR...   (harness folders named ...-x3-..., -x5-..., -r3-..., -r5-...;
the members of an ensemble are read from its name: x3-567 is seeds 5, 6, 7; x5-10 is seeds
10-14, as is x5s-10; r3-8-12-13 is seeds 8, 12, 13)
"""

from __future__ import annotations

import csv
import itertools
import re
import statistics
import sys
from pathlib import Path

SINGLE = {"567": (5, 6, 7), "111213": (11, 12, 13), "151617": (15, 16, 17)}


def members(name: str) -> tuple[int, tuple[int, ...]]:
    m = re.search(r"([xr])([35])s?-([\d-]+)$", name)
    if m is None:
        raise SystemExit(f"cannot read the members of {name}")
    kind, size, rest = m.group(1), int(m.group(2)), m.group(3)
    if kind == "r":
        return size, tuple(int(s) for s in rest.split("-"))
    if size == 3:
        return 3, SINGLE[rest]
    return 5, tuple(range(int(rest), int(rest) + 5))


def score(folder: Path) -> float:
    with open(folder / "results.csv") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != 35:
        raise SystemExit(f"{folder}: {len(rows)} cells, not 35")
    return 100 * statistics.mean(float(r["val_accuracy"]) for r in rows)


def main() -> None:
    groups: dict[int, list[tuple[tuple[int, ...], float]]] = {3: [], 5: []}
    for d in map(Path, sys.argv[1:]):
        size, seeds = members(d.name)
        groups[size].append((seeds, score(d)))
    for size, items in groups.items():
        if len(items) < 2:  # no spread to state (a pool of one size only)
            continue
        scores = [s for _, s in items]
        ranges = [
            max(t) - min(t)
            for a, b, c in itertools.combinations(items, 3)
            if not (set(a[0]) & set(b[0]) or set(a[0]) & set(c[0]) or set(b[0]) & set(c[0]))
            for t in [(a[1], b[1], c[1])]
        ]
        print(
            f"{size} members: {len(items)} ensembles, mean {statistics.mean(scores):.2f}, "
            f"std {statistics.stdev(scores):.2f}, {min(scores):.2f} to {max(scores):.2f}; "
            f"{len(ranges)} disjoint triples: range median {statistics.median(ranges):.2f}, "
            f"mean {statistics.mean(ranges):.2f}, <= 1.0 in {sum(r <= 1.0 for r in ranges)} "
            f"({100 * sum(r <= 1.0 for r in ranges) / len(ranges):.0f}%)"
        )


if __name__ == "__main__":
    main()
