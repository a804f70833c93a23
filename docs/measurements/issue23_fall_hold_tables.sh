#!/bin/bash
# The tenth session's comparisons (tables printed by compare_recipes.py --dirs); every folder is
# in docs/measurements/data/issue23-session10/ (results.csv, config.json); the baselines'
# held-out folders are the ninth session's (docs/measurements/data/issue23-session9/).
source /work/main/.venv/bin/activate
cd /work/main
D=docs/measurements/data/issue23-session10
D9=docs/measurements/data/issue23-session9
S8=docs/measurements/data/issue23-session8
for c in short-sgd short-adam full-sgd full-adam; do
  echo "######## training side, $c (make-train-mean-567, guard on, restart train): the fall-hold variants"
  V=(--dirs "as-written=$D/ts-$c")
  for v in fh0.01 fh0.03 fhs fhb fhbs shipped; do [ -d $D/ts-$c-$v ] && V+=(--dirs "$v=$D/ts-$c-$v"); done
  python scripts/compare_recipes.py --baselines "" --reference as-written "${V[@]}"
done
ens() { local d=$1; echo "$d-567+$d-8910+$d-111213"; }
for c in eval rescue sgd; do
  echo "######## held out, $c: make train's three ensembles (guard on, restart train), with the fall hold"
  B=(--baselines ""); [ $c = sgd ] && B=(--baselines static,grid --baselines-from $S8/baselines-sgd)
  python scripts/compare_recipes.py "${B[@]}" --reference restart-train \
    --dirs "restart-train=$(ens $D9/restart-train-$c-make-train-mean)" --dirs "fall-hold=$(ens $D/fhbs-$c)"
done
echo "######## held out, bad starts: the seventh session's two end-to-end make train runs"
python scripts/compare_recipes.py --baselines "" --reference restart-train \
  --dirs "restart-train=$D9/make-train-run-rescue-mt0-restart-train+$D9/make-train-run-rescue-mt100-restart-train" \
  --dirs "fall-hold=$D/fhbs-rescue-mt0+$D/fhbs-rescue-mt100"
for c in eval sgd; do
  echo "######## held out, $c: the two end-to-end make train runs"
  B=(--baselines ""); [ $c = sgd ] && B=(--baselines static,grid --baselines-from $S8/baselines-sgd)
  python scripts/compare_recipes.py "${B[@]}" --reference restart-train \
    --dirs "restart-train=$D/base-$c-mt0+$D/base-$c-mt100" --dirs "fall-hold=$D/fhbs-$c-mt0+$D/fhbs-$c-mt100"
done
for c in eval rescue sgd; do
  echo "######## held out, $c: the shipped hpenv-lr-v2 (guard on, restart train), with the fall hold"
  B=(--baselines ""); [ $c = sgd ] && B=(--baselines static,grid --baselines-from $S8/baselines-sgd)
  python scripts/compare_recipes.py "${B[@]}" --reference v2 \
    --dirs "v2=$D9/v2-restart-train-$c" --dirs "v2+fall-hold=$D/fhbs-$c-v2" \
    --dirs "v2+fall-hold+rollback=$D/rb-$c-v2"
done
for c in short-sgd short-adam full-sgd full-adam; do
  echo "######## training side, $c: the rollback over the fall hold"
  python scripts/compare_recipes.py --baselines "" --reference fall-hold \
    --dirs "fall-hold=$D/ts-$c-fhbs" --dirs "rollback=$D/ts-$c-rb"
done
for c in short-sgd short-adam full-sgd full-adam; do
  echo "######## training side, $c: the rollback reading the training loss too (rejected)"
  python scripts/compare_recipes.py --baselines "" --reference rollback \
    --dirs "rollback=$D/ts-$c-rb" --dirs "rollback-train=$D/ts-$c-rbt"
done
echo "######## held out, sgd: the rollback reading the training loss too (rejected)"
python scripts/compare_recipes.py --baselines static,grid --baselines-from $S8/baselines-sgd \
  --reference rollback --dirs "rollback=$(ens $D/rb-sgd)" --dirs "rollback-train=$(ens $D/rbt-sgd)"
for c in eval rescue sgd; do
  echo "######## held out, $c: make train's three ensembles, the rollback over the fall hold"
  B=(--baselines ""); [ $c = sgd ] && B=(--baselines static,grid --baselines-from $S8/baselines-sgd)
  python scripts/compare_recipes.py "${B[@]}" --reference fall-hold \
    --dirs "fall-hold=$(ens $D/fhbs-$c)" --dirs "rollback=$(ens $D/rb-$c)"
  echo "######## held out, $c: the two end-to-end make train runs, the rollback over the fall hold"
  python scripts/compare_recipes.py "${B[@]}" --reference fall-hold \
    --dirs "fall-hold=$D/fhbs-$c-mt0+$D/fhbs-$c-mt100" --dirs "rollback=$D/rb-$c-mt0+$D/rb-$c-mt100"
done
