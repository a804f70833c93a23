#!/bin/bash
# usage: tsx.sh OUT LEN WRAPPER [extra evaluate flags]: training-side tasks through an experiment wrapper
source /work/main/.venv/bin/activate
cd /work/main
out=$1; len=$2; wrap=$3; shift 3
export OMP_NUM_THREADS=1 HPENV_NO_HUB=1
FID=""
[ $len = short ] && FID="--fidelity digits:1:1 --fidelity breast_cancer:1:3 --fidelity wine:1:8 --fidelity synthetic:1:1"
python $wrap --policy ${POL:-logs/exp23/ens6/make-train-mean-567.pt} --rise-guard on --tasks digits,wine,breast_cancer,synthetic --include-training-tasks $FID --data-dir /work/shared/datasets --out-dir $out "$@" > $out.log 2>&1
