#!/bin/bash
# pool.sh I N: every N-th line of draws.txt from line I: build the sub-ensemble (make train's
# deployment flags) and evaluate it at 1x
S=/work/main/logs/exp23/s13
HELD="env ROOT=/work/s13eval OUT=$S/held /work/main/docs/measurements/data/issue23-session12/experiment/held.sh"
export PYTHONPATH=/work/s13eval OMP_NUM_THREADS=1 HPENV_NO_HUB=1
PY=/work/main/.venv/bin/python
run_of() { if [ $1 -lt 10 ]; then echo x5-5; elif [ $1 -lt 15 ]; then echo x5-10; else echo x5-15; fi; }
awk -v i=$1 -v n=$2 'NR % n == i % n' $S/draws.txt | while read name seeds; do
  if [ ! -f $S/pool/$name.pt ]; then
    pols=$(for s in $seeds; do printf "%s," $S/$(run_of $s)/s$s/best_policy.pt; done)
    mkdir -p $S/pool
    (cd /work/s13eval && $PY scripts/ensemble_policy.py --out $S/pool/$name.pt --rise-guard on \
       --restart collapse --fall-hold on --policies ${pols%,}) > $S/pool/$name.log 2>&1
  fi
  CONDS=eval $HELD p scripts/evaluate.py $name=$S/pool/$name.pt
done
echo pool-done
