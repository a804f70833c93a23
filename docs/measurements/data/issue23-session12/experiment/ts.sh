#!/bin/bash
# usage: ts.sh OUT COND WRAPPER [extra flags]: training-side tasks (COND short-sgd|short-adam|full-sgd|full-adam)
# through an experiment wrapper (or scripts/evaluate.py), from the frozen copy ROOT (default /work/s12eval);
# POL (default hpenv-lr-v2.1) with its file's deployment settings
source /work/main/.venv/bin/activate
out=$1; cond=$2; wrap=$3; shift 3
ROOT=${ROOT:-/work/s12eval}; cd $ROOT
export OMP_NUM_THREADS=1 HPENV_NO_HUB=1 PYTHONPATH=$ROOT
F=""; [[ $cond == short-* ]] && F="--fidelity digits:1:1 --fidelity breast_cancer:1:3 --fidelity wine:1:8 --fidelity synthetic:1:1"
O="--start-lr-factors 0.01,1,30,100"; [[ $cond == *-sgd ]] && O="--optimizer sgd --start-lr-factors 1,30"
python $wrap --methods policy --policy ${POL:-hpenv-lr-v2.1} \
  --tasks digits,wine,breast_cancer,synthetic --include-training-tasks $F $O --data-dir /work/shared/datasets --out-dir $out "$@" > $out.log 2>&1
