#!/bin/bash
# make train's command with five members from seed $1 (members s$1 .. s$1+4), frozen copy of bb0e20e
cd /work/s13eval
export PYTHONPATH=/work/s13eval OMP_NUM_THREADS=1 HPENV_NO_HUB=1
out=/work/main/logs/exp23/s13/x5-$1
r=""; [ -d $out ] && r="--resume"
exec /work/main/.venv/bin/python scripts/train_agent.py --ensemble 5 --seed $1 --deploy-rise-guard on \
  --deploy-restart collapse --deploy-fall-hold on --out-dir $out $r
