#!/bin/bash
# x5.sh SEED [FLAG...]: make train's command with five members from SEED (members sSEED ..
# sSEED+4) and any further train_agent.py flags, from the frozen copy ROOT (default /work/s13eval,
# bb0e20e) into S/RUN-SEED (default logs/exp23/s13/x5-SEED); resumes a started run. The
# fourteenth session ran it with ROOT=/work/s14b S=.../s14 RUN=x5s and --total-steps 4800
ROOT=${ROOT:-/work/s13eval}; S=${S:-/work/main/logs/exp23/s13}; RUN=${RUN:-x5}
cd $ROOT
export PYTHONPATH=$ROOT OMP_NUM_THREADS=1 HPENV_NO_HUB=1
seed=$1; shift
out=$S/$RUN-$seed
r=""; [ -d $out ] && r="--resume"
exec /work/main/.venv/bin/python scripts/train_agent.py --ensemble 5 --seed $seed --deploy-rise-guard on \
  --deploy-restart collapse --deploy-fall-hold on --out-dir $out $r "$@"
