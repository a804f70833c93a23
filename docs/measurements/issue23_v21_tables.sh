#!/bin/bash
# The twelfth session's tables: hpenv-lr-v2 as meta-trained against hpenv-lr-v2.1 (its weights
# with the rise guard, --restart collapse and the fall hold) on the held-out suite, same code,
# same cells (compare_recipes.py --dirs: paired Wilcoxon over the cells). Folders in
# docs/measurements/data/issue23-session12/ (results.csv, config.json; paired.py: the same test on
# the harness's score, without diabetes too), made by
#   python scripts/evaluate.py --methods policy --policy hpenv-lr-v2 [COND] --data-dir DATA --out-dir .../COND-v2
#   python scripts/evaluate.py --methods policy --policy hpenv-lr-v2.1 [COND] --data-dir DATA --out-dir .../COND-v21
# COND: none (eval), --start-lr-factors 0.01,30 (rescue), --optimizer sgd (sgd).
source /work/main/.venv/bin/activate
cd /work/main
D=docs/measurements/data/issue23-session12
S6=docs/measurements/data/issue23-session6
S8=docs/measurements/data/issue23-session8
for c in eval rescue sgd; do
  B=(--baselines ""); [ $c = eval ] && B=(--baselines static --baselines-from $S6/baselines-static)
  [ $c = sgd ] && B=(--baselines static,grid --baselines-from $S8/baselines-sgd)
  echo "######## held out, $c: hpenv-lr-v2.1 against hpenv-lr-v2"
  python scripts/compare_recipes.py "${B[@]}" --reference v2 --dirs "v2=$D/$c-v2" --dirs "v2.1=$D/$c-v21"
  echo "######## held out, $c: paired.py, on the harness's score (test accuracy where a task has a test split) and on validation accuracy; all tasks, then without diabetes (no test split)"
  python $D/paired.py $D/$c-v2 $D/$c-v21
  python $D/paired.py $D/$c-v2 $D/$c-v21 --without diabetes
done
echo "######## training side over hpenv-lr-v2.1: the fall hold's patience 2 (p2), the plateau hold first (ul1) and second version (ul)"
for c in short-sgd short-adam full-sgd full-adam; do
  echo "#### $c"
  python scripts/compare_recipes.py --baselines "" --reference v21 --dirs "v21=$D/ts-$c-v21" \
    --dirs "p2=$D/ts-$c-p2" --dirs "ul1=$D/ts-$c-ul1" --dirs "ul=$D/ts-$c-ul"
done
echo "#### checks: patience 1 = v2.1; the plateau hold built into FallHold (--fall-hold learned, reverted) = its prototype"
python $D/paired.py $D/ts-short-sgd-v21 $D/ts-short-sgd-p1
python $D/paired.py $D/ts-short-sgd-ul $D/ts-short-sgd-learned
for c in eval sgd rescue; do
  echo "######## held out, $c: the plateau hold (second version) over hpenv-lr-v2.1 and over make train's ensemble {5,6,7}"
  python scripts/compare_recipes.py --baselines "" --reference v2.1 --dirs "v2.1=$D/$c-v21" --dirs "v2.1+ul=$D/ul-$c-v21"
  python scripts/compare_recipes.py --baselines "" --reference 567 \
    --dirs "567=docs/measurements/data/issue23-session11/collapse-$c-567" --dirs "567+ul=$D/ul-$c-567"
done
echo "######## every 1x method on validation accuracy and on the harness's score (test where a task has a test split)"
python $D/scores.py "=$D/baselines-eval" "v2=$D/eval-v2" "v2.1=$D/eval-v21"
echo "######## the grid's per-seed choice against leave-one-seed-out"
python $D/grid_selection.py $D/baselines-eval
echo "######## every task with a test split (experiment/splitval.py: half the validation split held back)"
python $D/scores.py "grid=$D/split-grid" "=$D/split-base" "v2=$D/split-v2" "v2.1=$D/split-v21"
python $D/paired.py $D/split-v2 $D/split-v21
python $D/paired.py $D/split-v2 $D/split-v21 --without diabetes
