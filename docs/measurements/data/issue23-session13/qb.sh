#!/bin/bash
# core B: the third x5 run, then its evaluation
S=/work/main/logs/exp23/s13
while [ ! -f $S/x5-10/policy.pt ]; do sleep 30; done
$S/x5.sh 15 > $S/x5-15.log 2>&1
$S/held.sh h scripts/evaluate.py x5-15=$S/x5-15/policy.pt
echo done-b
