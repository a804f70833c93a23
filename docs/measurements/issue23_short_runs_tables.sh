#!/bin/bash
# The ninth session's comparisons (tables printed by compare_recipes.py --dirs); every folder
# is in docs/measurements/data/issue23-session9/ (results.csv, config.json).
source /work/main/.venv/bin/activate
cd /work/main
D=docs/measurements/data/issue23-session9
echo "######## training-side short runs (45-67 steps), starts 0.01x, 1x, 30x: a probe start with the floor lowered to 8"
python scripts/compare_recipes.py --baselines "" --reference as-written \
  --dirs "as-written=$D/short-asw" --dirs "floor8=$D/short-f8w1" \
  --dirs "floor8-within10=$D/short-f8w10" --dirs "floor8-within10-rollback-start=$D/short-f8w10s"
echo "######## training-side short runs, starts 1x, 30x, 100x: a cut of the rate on a blow-up"
python scripts/compare_recipes.py --baselines "" --reference as-written \
  --dirs "as-written=$D/ts-short-off" --dirs "blowup-cut-1.25=$D/ts-short-f125" --dirs "blowup-cut-2=$D/ts-short-f2"
echo "######## training-side short runs, starts 0.01x, 1x, 30x, 100x: a floor-8 probe that only lowers the start"
python scripts/compare_recipes.py --baselines "" --reference as-written \
  --dirs "as-written=$D/ts-short-asw4" --dirs "floor8-down-within3=$D/ts-short-f8w3s-down" \
  --dirs "floor8-down-within10=$D/ts-short-f8w10s-down"
T6=docs/measurements/data/issue23-session6; T7=docs/measurements/data/issue23-session7
S8=docs/measurements/data/issue23-session8
j() { local p=$1; shift; local out=""; for x in "$@"; do out="$out+$p$x"; done; echo "${out#+}"; }
echo "######## meta-trained with short budgets too (--synthetic-steps 30,1500), seeds 5-10 alone at 1x, without the guard"
python scripts/compare_recipes.py --baselines "" --reference make-train \
  --dirs "make-train=$(j $T6/make-train-s 5 6 7 8 9 10)" --dirs "make-train-short=$(j $D/cmp-short-eval-s 5 6 7 8 9 10)"
echo "######## the same seeds with the guard at deployment"
python scripts/compare_recipes.py --baselines "" --reference make-train+guard \
  --dirs "make-train+guard=$(j $T7/deploy-guard-s 5 6 7 8 9 10)" --dirs "make-train-short+guard=$(j $D/short-guard-s 5 6 7 8 9 10)"
for c in eval rescue sgd; do
  echo "######## $c: the ensembles {5,6,7} and {8,9,10}, guard on"
  B=(--baselines ""); [ $c = sgd ] && B=(--baselines static,grid --baselines-from $S8/baselines-sgd)
  python scripts/compare_recipes.py "${B[@]}" --reference make-train \
    --dirs "make-train=$T7/ens-guard-$c-make-train-mean-567+$T7/ens-guard-$c-make-train-mean-8910" \
    --dirs "make-train-short=$D/short-ens-$c-567+$D/short-ens-$c-8910"
done
echo "######## training-side short runs, starts 0.01x, 1x, 30x, 100x: the restart; the short-budget ensemble {5,6,7}"
python scripts/compare_recipes.py --baselines "" --reference as-written \
  --dirs "as-written=$D/ts-short-asw4" --dirs "restart=$D/ts-short-restart" --dirs "short-budgets=$D/ts-short-ens567"
ens() { local d=$1 c=$2; echo "$d-$c-make-train-mean-567+$d-$c-make-train-mean-8910+$d-$c-make-train-mean-111213"; }
for c in eval rescue sgd; do
  echo "######## $c: make train's three ensembles, guard on: the restart, with and without the probe start (rolled back to its start)"
  B=(--baselines ""); [ $c = sgd ] && B=(--baselines static,grid --baselines-from $S8/baselines-sgd)
  python scripts/compare_recipes.py "${B[@]}" --reference guard \
    --dirs "guard=$(ens $T7/ens-guard $c)" --dirs "guard+restart=$(ens $D/restart $c)" \
    --dirs "guard+pstart+rbstart=$(ens $S8/pstart-rbstart $c)" \
    --dirs "guard+pstart+rbstart+restart=$(ens $D/restart-pstart-rbstart $c)"
  python scripts/compare_recipes.py "${B[@]}" --reference guard+pstart+rbstart \
    --dirs "guard+pstart+rbstart=$(ens $S8/pstart-rbstart $c)" \
    --dirs "guard+pstart+rbstart+restart=$(ens $D/restart-pstart-rbstart $c)"
done
echo "######## training-side runs, starts 0.01x, 1x, 30x, 100x: the restart reading the training loss too (RestartConfig(train_loss=True))"
python scripts/compare_recipes.py --baselines "" --reference as-written \
  --dirs "as-written=$D/ts-short-asw4" --dirs "restart=$D/ts-short-restart" --dirs "restart+train-loss=$D/ts-short-restart-train"
python scripts/compare_recipes.py --baselines "" --reference as-written \
  --dirs "as-written=$D/ts-full-asw4" --dirs "restart=$D/ts-full-restart" --dirs "restart+train-loss=$D/ts-full-restart-train"
for c in eval rescue sgd; do
  echo "######## $c: make train's three ensembles, guard on: the restart reading the training loss too"
  B=(--baselines ""); [ $c = sgd ] && B=(--baselines static,grid --baselines-from $S8/baselines-sgd)
  python scripts/compare_recipes.py "${B[@]}" --reference guard \
    --dirs "guard=$(ens $T7/ens-guard $c)" --dirs "guard+restart=$(ens $D/restart $c)" \
    --dirs "guard+restart-train=$(ens $D/restart-train $c)"
done
for c in eval rescue sgd; do
  echo "######## $c: the eighth session's probe-start-trained ensembles, guard on: + the restart (to the untrained weights)"
  B=(--baselines ""); [ $c = sgd ] && B=(--baselines static,grid --baselines-from $S8/baselines-sgd)
  python scripts/compare_recipes.py "${B[@]}" --reference trained-pstart \
    --dirs "trained-pstart=$S8/trained-pstart-$c-pstart-567+$S8/trained-pstart-$c-pstart-8910+$S8/trained-pstart-$c-pstart-111213" \
    --dirs "trained-pstart+restart=$D/trained-pstart-restart-$c-pstart-567+$D/trained-pstart-restart-$c-pstart-8910+$D/trained-pstart-restart-$c-pstart-111213"
done
echo "######## bad starts: the seventh session's two end-to-end make train runs ({0,1,2}, {100,101,102}, written with the guard): + the restart reading the training loss"
python scripts/compare_recipes.py --baselines "" --reference as-written \
  --dirs "as-written=$D/make-train-run-rescue-mt0-asw+$D/make-train-run-rescue-mt100-asw" \
  --dirs "restart-train=$D/make-train-run-rescue-mt0-restart-train+$D/make-train-run-rescue-mt100-restart-train"
for c in eval rescue sgd; do
  echo "######## $c: the shipped hpenv-lr-v2 with the guard: + the restart reading the training loss"
  case $c in eval) R=$T7/ens-guard-eval-hpenv-lr-v2;; *) R=$S8/guard-$c-hpenv-lr-v2;; esac
  python scripts/compare_recipes.py --baselines "" --reference v2-guard \
    --dirs "v2-guard=$R" --dirs "v2-guard+restart-train=$D/v2-restart-train-$c"
done
