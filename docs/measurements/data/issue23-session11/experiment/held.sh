#!/bin/bash
# usage: held.sh TAG WRAPPER NAME=POLICY ...  held-out suite through an experiment wrapper, from a frozen copy
# of the code (ROOT, default /work/s11eval); each policy: CONDS (default sgd eval rescue); guard on,
# --restart RESTART (default rollback), fall hold on
ROOT=${ROOT:-/work/s11eval}; cd $ROOT
export PYTHONPATH=$ROOT OMP_NUM_THREADS=1 HPENV_NO_HUB=1
tag=$1; wrap=$2; shift 2
L=/work/main/logs/exp23/s11
for item in "$@"; do
  name=${item%%=*}; pol=${item#*=}
  for cond in ${CONDS:-sgd eval rescue}; do
    extra=""
    [ $cond = rescue ] && extra="--start-lr-factors 0.01,30"
    [ $cond = sgd ] && extra="--optimizer sgd"
    out=$L/$tag/$cond-$name
    [ -f $out/summary.md ] && continue
    /work/main/.venv/bin/python $wrap --methods policy --policy $pol --rise-guard on --restart ${RESTART:-rollback} --fall-hold on $extra --data-dir /work/shared/datasets --out-dir $out $( [ -d $out ] && echo --resume ) > $L/$tag-$cond-$name.log 2>&1
  done
done
