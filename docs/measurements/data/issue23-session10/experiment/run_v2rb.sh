#!/bin/bash
# hpenv-lr-v2 with the shipped --restart rollback --fall-hold on (guard on): 1x, rescue, sgd
source /work/main/.venv/bin/activate; cd /work/main
export OMP_NUM_THREADS=1 HPENV_NO_HUB=1
cond=$1; extra=""
[ $cond = rescue ] && extra="--start-lr-factors 0.01,30"
[ $cond = sgd ] && extra="--optimizer sgd"
python scripts/evaluate.py --methods policy --policy hpenv-lr-v2 --rise-guard on --restart rollback --fall-hold on $extra --data-dir /work/shared/datasets --out-dir logs/exp23/s10/rb/$cond-v2 > logs/exp23/s10/rb-$cond-v2.log 2>&1
