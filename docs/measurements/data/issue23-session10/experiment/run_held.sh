#!/bin/bash
# usage: run_held.sh TAG "FLAGS" NAME=POLICY ...  held-out suite through the fall-hold wrapper from the frozen
# copy /work/s10eval (env FALL_HOLD*, CONDS); each policy: 1x, rescue, sgd; guard on; restart train
cd /work/s10eval
export PYTHONPATH=/work/s10eval OMP_NUM_THREADS=1 HPENV_NO_HUB=1
tag=$1; flags=$2; shift 2
L=/work/main/logs/exp23/s10
for item in "$@"; do
  name=${item%%=*}; pol=${item#*=}
  for cond in ${CONDS:-eval rescue sgd}; do
    extra=""
    [ $cond = rescue ] && extra="--start-lr-factors 0.01,30"
    [ $cond = sgd ] && extra="--optimizer sgd"
    out=$L/$tag/$cond-$name
    [ -f $out/summary.md ] && continue
    /work/main/.venv/bin/python fallhold2.py --methods policy --policy $pol --rise-guard on --restart train $flags $extra --data-dir /work/shared/datasets --out-dir $out $( [ -d $out ] && echo --resume ) > $L/$tag-$cond-$name.log 2>&1
  done
done
