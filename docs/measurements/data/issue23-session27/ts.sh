#!/bin/bash
# ts.sh TAG ROOT: the v3x5 policies (seeds 20, 25, 30) on the training-side tasks at their usual
# length (digits, wine, breast_cancer, synthetic: long enough to probe), from 1x, 100x low and
# 30x high, 5 seeds, from the frozen copy ROOT (660c307: TAG fix; 023016d: TAG wv), into
# S/ts/TAG-v3x5-SEED: a check of the second change (no restart after a probe) on tasks
# meta-training sees, away from the held-out task that showed the need for it.
TAG=$1; ROOT=$2; S=${S:-/work/main/logs/exp27}
export PYTHONPATH=$ROOT OMP_NUM_THREADS=1 HPENV_NO_HUB=1
for seed in ${SEEDS:-20 25 30}; do
  out=$S/ts/$TAG-v3x5-$seed
  [ -f $out/summary.md ] && continue
  r=""; [ -d $out ] && r="--resume"
  (cd $ROOT && /work/main/.venv/bin/python scripts/evaluate.py --methods policy \
    --policy /work/main/logs/exp26/v3x5-$seed/policy.pt --tasks digits,wine,breast_cancer,synthetic \
    --include-training-tasks --start-lr-factors 0.01,1,30 --data-dir /work/shared/datasets \
    --out-dir $out $r) > $out.log 2>&1
done
echo done
