#!/bin/bash
# The seventeenth session's tables (docs/measurements/issue23_hidden_scale.md): one change over
# make train's command (x5s), a hidden rate scale in every meta-training episode (x5ls:
# --lr-scale 10, the optimizer trains at a multiple of the policy's rate drawn log-uniformly in
# [1/10, 10]; x5ls30: --lr-scale 30; x5lsn: x5ls with --train-tasks synthetic,digits,digits_noisy,
# finished by the eighteenth session), three runs each (seeds 5, 10, 15) on the held-out suite
# and the training side, on the same cells as make train's own runs. Folders: docs/measurements/data/issue23-session17/ (its
# README says how each was made), issue23-session15/ and issue23-session14/.
source /work/main/.venv/bin/activate
cd /work/main
D=docs/measurements/data/issue23-session17
D15=docs/measurements/data/issue23-session15
D14=docs/measurements/data/issue23-session14
source docs/measurements/data/issue23-session13/folders.sh  # runs_dirs
for c in eval rescue sgd; do
  echo "######## held out, $c: three runs each, against make train's command (x5s)"
  python scripts/compare_recipes.py --baselines "" --reference x5s --dirs "x5s=$(runs_dirs $D14 x5s $c)" \
    --dirs "x5ls=$(runs_dirs $D x5ls $c)" --dirs "x5ls30=$(runs_dirs $D x5ls30 $c)" \
    --dirs "x5lsn=$(runs_dirs $D x5lsn $c)"
done
for c in eval rescue sgd; do
  echo "######## held out, $c: x5lsn (the noisy-label digits among the training tasks too) against x5ls"
  python scripts/compare_recipes.py --baselines "" --reference x5ls --dirs "x5ls=$(runs_dirs $D x5ls $c)" \
    --dirs "x5lsn=$(runs_dirs $D x5lsn $c)"
done
for c in short-sgd full-sgd short-adam full-adam; do
  echo "######## training side, $c (digits, wine, breast cancer, synthetic; SGD: starts 1x and 30x, Adam: 0.01x, 1x, 30x, 100x)"
  python scripts/compare_recipes.py --baselines "" --reference x5s --dirs "x5s=$(runs_dirs $D15 x5s $c ts)" \
    --dirs "x5ls=$(runs_dirs $D x5ls $c ts)" --dirs "x5ls30=$(runs_dirs $D x5ls30 $c ts)"
done
echo "######## where the policies take the rate at the default rate (runs.jsonl of the 1x folders)"
python $D/rates.py "$X5S_RATES" \
  "x5ls=$(runs_dirs $D x5ls eval)" "x5ls30=$(runs_dirs $D x5ls30 eval)" "x5lsn=$(runs_dirs $D x5lsn eval)"
