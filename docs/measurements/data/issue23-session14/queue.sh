#!/bin/bash
# queue.sh SEED...: for each seed, x5s.sh SEED (training), then its policy.pt on the held-out suite
# in three conditions (the twelfth session's held.sh: eval, sgd, rescue) into logs/exp23/s14/held
S=/work/main/logs/exp23/s14
D=/work/main/docs/measurements/data/issue23-session14
for seed in "$@"; do
  [ -f $S/x5s-$seed/policy.pt ] || bash $D/x5s.sh $seed > $S/x5s-$seed.log 2>&1
  env ROOT=/work/s14b OUT=$S/held /work/main/docs/measurements/data/issue23-session12/experiment/held.sh \
    h scripts/evaluate.py x5s-$seed=$S/x5s-$seed/policy.pt
done
echo done
