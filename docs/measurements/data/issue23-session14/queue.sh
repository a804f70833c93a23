#!/bin/bash
# queue.sh SEED...: for each seed, five members of 4,800 agent steps (the thirteenth session's
# x5.sh with --total-steps 4800 and any flags in FLAGS, into S/RUN-SEED), then its policy.pt on the
# held-out suite in three conditions (the twelfth session's held.sh: eval, sgd, rescue) into
# S/held. Defaults are the fourteenth session's: ROOT=/work/s14b (frozen 64df9fe),
# S=logs/exp23/s14, RUN=x5s, FLAGS empty; the fifteenth ran it with ROOT=/work/s15
# S=.../s15 RUN=x5opt FLAGS="--optimizers adam,adamw,sgd --synthetic-optimizers adam,adamw,sgd"
S=${S:-/work/main/logs/exp23/s14}; ROOT=${ROOT:-/work/s14b}; RUN=${RUN:-x5s}
D13=/work/main/docs/measurements/data/issue23-session13
for seed in "$@"; do
  # shellcheck disable=SC2086  # FLAGS holds several flags
  [ -f $S/$RUN-$seed/policy.pt ] || env ROOT=$ROOT S=$S RUN=$RUN bash $D13/x5.sh $seed --total-steps 4800 \
    $FLAGS > $S/$RUN-$seed.log 2>&1
  env ROOT=$ROOT OUT=$S/held /work/main/docs/measurements/data/issue23-session12/experiment/held.sh \
    h scripts/evaluate.py $RUN-$seed=$S/$RUN-$seed/policy.pt
done
echo done
