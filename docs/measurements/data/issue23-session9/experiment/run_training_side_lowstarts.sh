#!/bin/bash
# usage: run_train_side.sh TAG NAME=POLICY ...   training-side short runs (45-67 steps), starts 1,0.01,30, guard on
source /work/main/.venv/bin/activate
cd /work/main
tag=$1; shift
export OMP_NUM_THREADS=1 HPENV_NO_HUB=1
FID="--fidelity digits:1:1 --fidelity breast_cancer:1:3 --fidelity wine:1:8 --fidelity synthetic:1:1"
for item in "$@"; do
  name=${item%%=*}; pol=${item#*=}
  out=logs/exp23/s9/$tag/$name
  [ -f $out/summary.md ] && continue
  python scripts/evaluate.py --methods policy --policy $pol --rise-guard on --tasks digits,wine,breast_cancer,synthetic --include-training-tasks $FID --start-lr-factors 1,0.01,30 --data-dir /work/shared/datasets --out-dir $out $( [ -d $out ] && echo --resume ) > logs/exp23/s9/$tag-$name.log 2>&1
done
