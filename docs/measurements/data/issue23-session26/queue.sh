#!/bin/bash
# queue.sh SEED...: for each seed, an ensemble of five members from SEED trained with
# train_agent.py and the flags in FLAGS (no deployment flags of its own: put them in FLAGS), from
# the frozen copy ROOT (default /work/s26) into S/RUN-SEED (resumes a started run), then its
# policy.pt on the held-out suite in three conditions (the twelfth session's held.sh: eval, sgd,
# rescue) into S/held. The fourteenth session's queue.sh with make train's deployment flags taken
# out of the script, so that a layout-2 policy (no fall hold) can be queued the same way.
# EVAL=0 trains only (the evaluation is the same call again later, with EVAL unset).
S=${S:-/work/main/logs/exp26}; ROOT=${ROOT:-/work/s26}; RUN=${RUN:?RUN names the run}
for seed in "$@"; do
  out=$S/$RUN-$seed
  if [ ! -f $out/policy.pt ]; then
    r=""; [ -d $out ] && r="--resume"
    # shellcheck disable=SC2086  # FLAGS holds several flags
    (cd $ROOT && env PYTHONPATH=$ROOT OMP_NUM_THREADS=1 HPENV_NO_HUB=1 /work/main/.venv/bin/python \
      scripts/train_agent.py --ensemble 5 --seed $seed --out-dir $out $r $FLAGS) > $out.log 2>&1
  fi
  [ "${EVAL:-1}" = 0 ] && continue
  env ROOT=$ROOT OUT=$S/held /work/main/docs/measurements/data/issue23-session12/experiment/held.sh \
    h scripts/evaluate.py $RUN-$seed=$out/policy.pt
done
echo done
