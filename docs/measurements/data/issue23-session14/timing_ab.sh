#!/bin/bash
# A/B: one make-train member (seed 0, train_agent.py defaults) at the fifth session's commit 6c7acec
# (/work/s14a) and at 64df9fe (/work/s14b, this session's start), alone, one after the other
for v in a b; do
  cd /work/s14$v
  export PYTHONPATH=/work/s14$v HPENV_NO_HUB=1
  /usr/bin/time -v /work/main/.venv/bin/python scripts/train_agent.py --seed 0 --out-dir /work/main/logs/exp23/s14/ab-$v > /work/main/logs/exp23/s14/ab-$v.log 2>&1
done
