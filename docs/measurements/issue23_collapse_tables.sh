#!/bin/bash
# The eleventh session's comparisons (tables printed by compare_recipes.py --dirs, and per-task
# differences on the harness's score by experiment/pertask.py); every folder is in
# docs/measurements/data/issue23-session11/ (results.csv, config.json); the reference (the
# tenth session's rollback with the fall hold) in docs/measurements/data/issue23-session10/.
source /work/main/.venv/bin/activate
cd /work/main
D=docs/measurements/data/issue23-session11
D10=docs/measurements/data/issue23-session10
S8=docs/measurements/data/issue23-session8
for c in short-sgd short-adam full-sgd full-adam; do
  echo "######## training side, $c (make-train-mean-567, guard, restart rollback, fall hold): the three levers"
  python scripts/compare_recipes.py --baselines "" --reference rollback --dirs "rollback=$D10/ts-$c-rb" \
    --dirs "valonly=$D/ts-$c-valonly" --dirs "collapse=$D/ts-$c-collapse" --dirs "cut3=$D/ts-$c-cut3" \
    --dirs "back=$D/ts-$c-back"
done
ens() { local d=$1; echo "$d-567+$d-8910+$d-111213"; }
for c in sgd eval rescue; do
  B=(--baselines ""); [ $c = sgd ] && B=(--baselines static,grid --baselines-from $S8/baselines-sgd)
  V=(); [ -f $D/valonly-$c-111213/results.csv ] && V=(--dirs "valonly=$(ens $D/valonly-$c)")
  echo "######## held out, $c: make train's three ensembles, the collapse over the rollback"
  python scripts/compare_recipes.py "${B[@]}" --reference rollback --dirs "rollback=$(ens $D10/rb-$c)" \
    --dirs "collapse=$(ens $D/collapse-$c)" "${V[@]}"
  V=(); [ -f $D/valonly-$c-mt100/results.csv ] && V=(--dirs "valonly=$D/valonly-$c-mt0+$D/valonly-$c-mt100")
  echo "######## held out, $c: the two end-to-end make train runs, the collapse over the rollback"
  python scripts/compare_recipes.py "${B[@]}" --reference rollback --dirs "rollback=$D10/rb-$c-mt0+$D10/rb-$c-mt100" \
    --dirs "collapse=$D/collapse-$c-mt0+$D/collapse-$c-mt100" "${V[@]}"
  V=(); [ -f $D/valonly-$c-v2/results.csv ] && V=(--dirs "v2+valonly=$D/valonly-$c-v2")
  echo "######## held out, $c: hpenv-lr-v2 with the guard, the fall hold and the collapse"
  python scripts/compare_recipes.py "${B[@]}" --reference v2+rollback --dirs "v2+rollback=$D10/rb-$c-v2" \
    --dirs "v2+collapse=$D/collapse-$c-v2" "${V[@]}"
done
for c in sgd eval; do
  B=(--baselines ""); [ $c = sgd ] && B=(--baselines static,grid --baselines-from $S8/baselines-sgd)
  echo "######## held out, $c: make train's three ensembles, back to the start over the collapse (rejected)"
  python scripts/compare_recipes.py "${B[@]}" --reference collapse --dirs "collapse=$(ens $D/collapse-$c)" \
    --dirs "back=$(ens $D/back-$c)"
  echo "######## held out, $c, back to the start against the collapse: per task over the six policies"
  python $D/experiment/pertask.py "$D/collapse-$c-{p}" "$D/back-$c-{p}" 567 8910 111213 mt0 mt100 v2
done
for v in collapse valonly; do
  for c in sgd eval rescue; do
    [ -f $D/$v-$c-v2/results.csv ] || continue
    echo "######## held out, $c, $v against the rollback: per task over the six policies (the harness's score: test accuracy where a split exists)"
    python $D/experiment/pertask.py "$D10/rb-$c-{p}" "$D/$v-$c-{p}" 567 8910 111213 mt0 mt100 v2
  done
done
echo "######## the shipped --restart collapse against its prototype (SGD, {5,6,7}): rows equal"
python - <<'PY'
import csv
def rows(d):
    return {(r["task"], r["seed"]): (r["val_loss"], r["val_accuracy"]) for r in csv.DictReader(open(d + "/results.csv"))}
a, b = rows("docs/measurements/data/issue23-session11/collapse-sgd-567"), rows("docs/measurements/data/issue23-session11/shipped-sgd-567")
print(f"{sum(a[k] == b[k] for k in a)} of {len(a)} rows identical")
PY
