#!/bin/bash
# usage: run_ts.sh OUT LEN "ENV" [extra evaluate flags]   training-side tasks, starts 1,30,100, make-train ensemble 567 guard on
source /work/main/.venv/bin/activate
cd /work/main
out=$1; len=$2; envs=$3; shift 3
export OMP_NUM_THREADS=1 HPENV_NO_HUB=1
FID=""
[ $len = short ] && FID="--fidelity digits:1:1 --fidelity breast_cancer:1:3 --fidelity wine:1:8 --fidelity synthetic:1:1"
env $envs python scripts/evaluate.py --methods policy --policy ${POL:-logs/exp23/ens6/make-train-mean-567.pt} --rise-guard on --tasks digits,wine,breast_cancer,synthetic --include-training-tasks $FID --start-lr-factors ${STARTS:-1,30,100} --data-dir /work/shared/datasets --out-dir $out "$@" > $out.log 2>&1
