#!/bin/bash
# usage: run_rb.sh TAG NAME=POLICY ...  held-out suite with the rollback prototype, from the frozen copy
# /work/s10eval2 (HEAD with the fall hold); each policy: CONDS (sgd eval rescue); guard, restart train, fall hold
cd /work/s10eval2
export PYTHONPATH=/work/s10eval2 OMP_NUM_THREADS=1 HPENV_NO_HUB=1
tag=$1; shift
L=/work/main/logs/exp23/s10
for item in "$@"; do
  name=${item%%=*}; pol=${item#*=}
  for cond in ${CONDS:-sgd eval rescue}; do
    extra=""
    [ $cond = rescue ] && extra="--start-lr-factors 0.01,30"
    [ $cond = sgd ] && extra="--optimizer sgd"
    out=$L/$tag/$cond-$name
    [ -f $out/summary.md ] && continue
    /work/main/.venv/bin/python rollback.py --methods policy --policy $pol --rise-guard on --restart train --fall-hold on $extra --data-dir /work/shared/datasets --out-dir $out $( [ -d $out ] && echo --resume ) > $L/$tag-$cond-$name.log 2>&1
  done
done
