#!/bin/bash
# core A: the 3-member subsets {5,6,7}, {11,12,13}, {15,16,17} of the x5 runs and the x5 runs' evaluations
S=/work/main/logs/exp23/s13
HELD="env ROOT=/work/s13eval OUT=$S/held /work/main/docs/measurements/data/issue23-session12/experiment/held.sh"
export PYTHONPATH=/work/s13eval OMP_NUM_THREADS=1 HPENV_NO_HUB=1
PY=/work/main/.venv/bin/python
waitfor() { while [ ! -f $1 ]; do sleep 30; done; }
ens() {  # ens NAME RUN s1 s2 s3
  name=$1; run=$2; shift 2
  [ -f $S/$name.pt ] && return
  pols=$(for s in "$@"; do printf "%s," $S/$run/s$s/best_policy.pt; done)
  (cd /work/s13eval && $PY scripts/ensemble_policy.py --out $S/$name.pt --rise-guard on --restart collapse \
      --fall-hold on --policies ${pols%,}) > $S/$name.log 2>&1
}
waitfor $S/x5-5/policy.pt
ens x3-567 x5-5 5 6 7
CONDS=eval $HELD h scripts/evaluate.py x3-567=$S/x3-567.pt
$HELD h scripts/evaluate.py x5-5=$S/x5-5/policy.pt
waitfor $S/x5-10/policy.pt
ens x3-111213 x5-10 11 12 13
CONDS=eval $HELD h scripts/evaluate.py x3-111213=$S/x3-111213.pt
$HELD h scripts/evaluate.py x5-10=$S/x5-10/policy.pt
waitfor $S/x5-15/s17/best_policy.pt
ens x3-151617 x5-15 15 16 17
$HELD h scripts/evaluate.py x3-151617=$S/x3-151617.pt
echo done-a
