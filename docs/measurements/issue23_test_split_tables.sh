#!/bin/bash
# The sixteenth session's test-split tables (docs/measurements/issue23_test_split.md): make
# train's three x5s runs (the fourteenth session's policies), hpenv-lr-v2.1 and the baselines on
# the held-out suite with every task that has no test split lending half of its validation split
# to one (evaluate.py --test-from-val), scored on test accuracy and, for the same folders, on the
# validation half the runs read. Folders: docs/measurements/data/issue23-session16/split-*.
source /work/main/.venv/bin/activate
cd /work/main
D=docs/measurements/data/issue23-session16
source docs/measurements/data/issue23-session13/folders.sh  # runs_dirs
B1=static,cosine,prodigy,schedulefree,probe_cosine,lrfind_cosine,mechanic,grid
for score in test val; do
  flag=""; [ $score = test ] && flag=--test-from-val
  echo "######## held out at 1x, $score accuracy: make train's x5s runs and v2.1 against the baselines"
  python scripts/compare_recipes.py $flag --baselines $B1 --baselines-from $D/split-eval-baselines \
    --reference x5s --dirs "x5s=$(runs_dirs $D x5s eval split)" --dirs "v2.1=$D/split-eval-v21"
  echo "######## held out with SGD + momentum, $score accuracy"
  python scripts/compare_recipes.py $flag --baselines static,grid --baselines-from $D/split-sgd-baselines \
    --reference x5s --dirs "x5s=$(runs_dirs $D x5s sgd split)" --dirs "v2.1=$D/split-sgd-v21"
  echo "######## held out from bad starts (100x low, 30x high), $score accuracy"
  python scripts/compare_recipes.py $flag --baselines "" --reference x5s \
    --dirs "x5s=$(runs_dirs $D x5s rescue split)" --dirs "v2.1=$D/split-rescue-v21"
done
