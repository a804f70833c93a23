"""textside.py COUNT [evaluate.py flags]: scripts/evaluate.py on COUNT token tasks of the synthetic
family (`SyntheticFamily(text_fraction=1.0)`), drawn from a stream no meta-training episode uses
(seed 18_000; episodes draw from their own seeds, synthetic-heldout from its own), registered as
text-draw-0 .. COUNT-1 for the run (before the harness is imported: its --tasks choices are
read at import). A training-side check of `--synthetic-text`: no held-out task is among them.
Run from a checkout (PYTHONPATH at its root)."""

import dataclasses
import sys

import numpy as np

from hpenv.tasks.registry import registered
from hpenv.tasks.synthetic import SyntheticFamily

count = int(sys.argv[1])
rng, family = np.random.default_rng(18_000), SyntheticFamily(text_fraction=1.0)
tasks = [
    dataclasses.replace(family.sample(rng).task(), name=f"text-draw-{i}") for i in range(count)
]
for task in tasks:
    print(task.name, task.description, flush=True)
with registered(tasks):
    from agents.commands.evaluate import main

    argv = ["--tasks", ",".join(t.name for t in tasks), "--include-training-tasks", *sys.argv[2:]]
    sys.exit(main(argv))
