#!/bin/bash
# usage: held.sh TAG WRAPPER NAME=POLICY ...: the held-out suite through an experiment wrapper (or
# scripts/evaluate.py), from the frozen copy ROOT (default /work/s12eval); each policy with its
# file's deployment settings, for each of CONDS (default "eval sgd rescue"), into OUT (default
# the twelfth session's folder; the thirteenth ran it with ROOT=/work/s13eval OUT=.../s13/held)
ROOT=${ROOT:-/work/s12eval}; cd $ROOT
export PYTHONPATH=$ROOT OMP_NUM_THREADS=1 HPENV_NO_HUB=1
tag=$1; wrap=$2; shift 2
L=${OUT:-/work/main/logs/exp23/s12/held}
mkdir -p $L
for item in "$@"; do
  name=${item%%=*}; pol=${item#*=}
  for cond in ${CONDS:-eval sgd rescue}; do
    extra=""
    [ $cond = rescue ] && extra="--start-lr-factors 0.01,30"
    [ $cond = sgd ] && extra="--optimizer sgd"
    out=$L/$tag-$cond-$name
    [ -f $out/summary.md ] && continue
    /work/main/.venv/bin/python $wrap --methods policy --policy $pol $extra --data-dir /work/shared/datasets --out-dir $out $( [ -d $out ] && echo --resume ) > $out.log 2>&1
  done
done
