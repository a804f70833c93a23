#!/bin/bash
# pool.sh I N: every N-th line of draws.txt from line I: build the sub-ensemble (make train's
# deployment flags) and evaluate it at 1x. The fourteenth session ran it on its own members
# (S=.../s14 ROOT=/work/s14b RUN=x5s ONLY=r5-: the five-member draws of this folder's draws.txt)
S=${S:-/work/main/logs/exp23/s13}; ROOT=${ROOT:-/work/s13eval}; RUN=${RUN:-x5}
HELD="env ROOT=$ROOT OUT=$S/held /work/main/docs/measurements/data/issue23-session12/experiment/held.sh"
export PYTHONPATH=$ROOT OMP_NUM_THREADS=1 HPENV_NO_HUB=1
PY=/work/main/.venv/bin/python
run_of() { if [ $1 -lt 10 ]; then echo $RUN-5; elif [ $1 -lt 15 ]; then echo $RUN-10; else echo $RUN-15; fi; }
grep "^${ONLY:-r}" $(dirname $0)/draws.txt | awk -v i=$1 -v n=$2 'NR % n == i % n' | while read name seeds; do
  if [ ! -f $S/pool/$name.pt ]; then
    pols=$(for s in $seeds; do printf "%s," $S/$(run_of $s)/s$s/best_policy.pt; done)
    mkdir -p $S/pool
    (cd $ROOT && $PY scripts/ensemble_policy.py --out $S/pool/$name.pt --rise-guard on \
       --restart collapse --fall-hold on --policies ${pols%,}) > $S/pool/$name.log 2>&1
  fi
  CONDS=eval $HELD p scripts/evaluate.py $name=$S/pool/$name.pt
done
echo pool-done
