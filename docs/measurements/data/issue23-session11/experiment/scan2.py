"""Which runs of harness folders a collapse rule would roll back, read off their trajectories
(`runs.jsonl`), before running it: the validation loss back at best + F x (untrained - best) or
above, after a best of at most L x the untrained loss, before any blow-up above x1.1 (which the
shipped rollback already takes).

usage: scan2.py F L 'GLOB/runs.jsonl' [-v]   (-v: print each run it would roll back)"""

import collections
import glob
import json
import sys


def main() -> None:
    undone, learned, pattern = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    fired_count: collections.Counter = collections.Counter()
    total: collections.Counter = collections.Counter()
    for path in sorted(glob.glob(pattern)):
        folder = path.split("/")[-2]
        with open(path) as f:
            runs = [json.loads(line) for line in f]
        for run in runs:
            points = run["trajectory"]
            initial, best, fired = points[0]["val_loss"], float("inf"), None
            for k, point in enumerate(points[1:], 1):
                loss = point["val_loss"]
                if loss > initial * 1.1:
                    break  # the shipped rollback acts first
                level = best + undone * (initial - best)
                if best <= initial * learned and loss == loss and loss >= level:
                    fired = k
                    break
                best = min(best, loss)
            key = (folder.split("-")[0], run["task"])
            total[key] += 1
            if fired:
                fired_count[key] += 1
                if "-v" in sys.argv:
                    losses = " ".join(f"{p['val_loss']:.2f}" for p in points)
                    print(folder, run["task"], run["seed"], run["start_lr_factor"], fired, losses)
    for key in sorted(total):
        if fired_count[key]:
            print(key, fired_count[key], "/", total[key])


if __name__ == "__main__":
    main()
