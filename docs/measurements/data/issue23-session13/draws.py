"""Random sub-ensembles of the 15 make-train members (seeds 5-19): 12 of three members and 12 of
five (random.Random(0), drawn without repeats, the three disjoint of each size measured first
excluded); prints 'NAME SEEDS' lines for pool.sh."""

import itertools
import random

rng = random.Random(0)
seeds = list(range(5, 20))
done = {
    (5, 6, 7),
    (11, 12, 13),
    (15, 16, 17),
    (5, 6, 7, 8, 9),
    (10, 11, 12, 13, 14),
    (15, 16, 17, 18, 19),
}
for k in (3, 5):
    pool = [c for c in itertools.combinations(seeds, k) if c not in done]
    for c in rng.sample(pool, 12):
        print(f"r{k}-" + "-".join(map(str, c)), " ".join(map(str, c)))
