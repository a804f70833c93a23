#!/bin/bash
# make train's command with five members of 4,800 agent steps each (--total-steps 4800, rounded to
# 4,864: about the agent steps of three default members) from seed $1 (members s$1 .. s$1+4),
# frozen copy of 64df9fe in /work/s14b
cd /work/s14b
export PYTHONPATH=/work/s14b OMP_NUM_THREADS=1 HPENV_NO_HUB=1
out=/work/main/logs/exp23/s14/x5s-$1
r=""; [ -d $out ] && r="--resume"
exec /work/main/.venv/bin/python scripts/train_agent.py --ensemble 5 --seed $1 --total-steps 4800 \
  --deploy-rise-guard on --deploy-restart collapse --deploy-fall-hold on --out-dir $out $r
