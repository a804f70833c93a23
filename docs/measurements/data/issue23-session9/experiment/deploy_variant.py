"""Write a policy deployed with the rise guard, a probe start and a probe of another floor.

The ninth session's exploration of a probe on runs too short for today's (fewer than 80
optimizer steps): ``ProbeConfig.min_steps`` lowered (the floor), which no script flag sets.

Usage (from the repository root):
    python docs/measurements/data/issue23-session9/experiment/deploy_variant.py \
        SRC.pt OUT.pt FLOOR WITHIN [ROLLBACK]
e.g. ``logs/exp23/ens6/make-train-mean-567.pt logs/exp23/s9/pol/mt567-f8-w10-start.pt 8 10 start``.
"""

import sys
from dataclasses import asdict

from agents.policy.artifact import load_policy
from hpenv.base import ProbeStart
from hpenv.probe import ProbeConfig

src, out, floor, within = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
rollback = sys.argv[5] if len(sys.argv) > 5 else "best"
policy = load_policy(src).with_rise_guard(True).with_probe_start(ProbeStart(within=within))
policy = policy._deployed(probe=asdict(ProbeConfig(min_steps=floor, rollback=rollback)))  # type: ignore[arg-type]
policy.save(out)
print(out, policy.metadata.deploy)
