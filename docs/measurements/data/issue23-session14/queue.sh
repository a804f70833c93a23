#!/bin/bash
# queue.sh SEED...: for each seed, five members of 4,800 agent steps (the thirteenth session's
# x5.sh with --total-steps 4800, into logs/exp23/s14/x5s-SEED), then its policy.pt on the held-out suite
# in three conditions (the twelfth session's held.sh: eval, sgd, rescue) into logs/exp23/s14/held
S=/work/main/logs/exp23/s14
D13=/work/main/docs/measurements/data/issue23-session13
for seed in "$@"; do
  [ -f $S/x5s-$seed/policy.pt ] || env ROOT=/work/s14b S=$S RUN=x5s bash $D13/x5.sh $seed --total-steps 4800 \
    > $S/x5s-$seed.log 2>&1
  env ROOT=/work/s14b OUT=$S/held /work/main/docs/measurements/data/issue23-session12/experiment/held.sh \
    h scripts/evaluate.py x5s-$seed=$S/x5s-$seed/policy.pt
done
echo done
