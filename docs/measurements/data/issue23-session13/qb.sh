#!/bin/bash
# core B: the third x5 run, then its evaluation
S=/work/main/logs/exp23/s13
HELD="env ROOT=/work/s13eval OUT=$S/held /work/main/docs/measurements/data/issue23-session12/experiment/held.sh"
while [ ! -f $S/x5-10/policy.pt ]; do sleep 30; done
$S/x5.sh 15 > $S/x5-15.log 2>&1
$HELD h scripts/evaluate.py x5-15=$S/x5-15/policy.pt
echo done-b
