#!/bin/bash
# All of the eighth session's comparisons (tables printed by compare_recipes.py --dirs)
source /work/main/.venv/bin/activate
cd /work/main
G=logs/exp23/s7/ens-guard; S=logs/exp23/s8
ens() { local d=$1 c=$2; echo "$d/$c-make-train-mean-567+$d/$c-make-train-mean-8910+$d/$c-make-train-mean-111213"; }
for c in eval rescue sgd; do
  echo "######## $c: make train's three ensembles, guard on"
  python scripts/compare_recipes.py --baselines "" --reference guard \
    --dirs "guard=$(ens $G $c)" \
    --dirs "guard+pstart=$(ens $S/pstart $c)" \
    --dirs "guard+pstart10=$(ens $S/pstart10 $c)" \
    --dirs "guard+pstart+rbstart=$(ens $S/pstart-rbstart $c)"
  echo "######## $c: the same seeds' ensembles trained with the probe start"
  B=(--baselines ""); [ $c = sgd ] && B=(--baselines static,grid --baselines-from $S/baselines-sgd)
  python scripts/compare_recipes.py "${B[@]}" --reference guard \
    --dirs "guard=$(ens $G $c)" \
    --dirs "guard+pstart=$(ens $S/pstart $c)" \
    --dirs "trained-pstart+guard=$S/trained-pstart/$c-pstart-567+$S/trained-pstart/$c-pstart-8910+$S/trained-pstart/$c-pstart-111213"
  echo "######## $c: hpenv-lr-v2"
  python scripts/compare_recipes.py --baselines "" --reference guard \
    --dirs "guard=$G/$c-hpenv-lr-v2" --dirs "guard+pstart=$S/pstart/$c-hpenv-lr-v2"
done
D=docs/measurements/data/issue23-session6; T=docs/measurements/data/issue23-session7; C=$S/cmp-pstart
echo "######## singles at 1x, seeds 5-13 (without the guard), 5-10 (with it)"
python scripts/compare_recipes.py --baselines "" --reference make-train \
  --dirs "make-train=$D/make-train-s5+$D/make-train-s6+$D/make-train-s7+$D/make-train-s8+$D/make-train-s9+$D/make-train-s10+$D/make-train-s11+$D/make-train-s12+$D/make-train-s13" \
  --dirs "make-train+guard=$T/deploy-guard-s5+$T/deploy-guard-s6+$T/deploy-guard-s7+$T/deploy-guard-s8+$T/deploy-guard-s9+$T/deploy-guard-s10+$T/deploy-guard-s11+$T/deploy-guard-s12+$T/deploy-guard-s13" \
  --dirs "trained-pstart=$C-a/eval/make-train-pstart/s5+$C-a/eval/make-train-pstart/s6+$C-a/eval/make-train-pstart/s7+$C-b/eval/make-train-pstart/s8+$C-b/eval/make-train-pstart/s9+$C-b/eval/make-train-pstart/s10+$C-c/eval/make-train-pstart/s11+$C-c/eval/make-train-pstart/s12+$C-d/eval/make-train-pstart/s13"
python scripts/compare_recipes.py --baselines "" --reference make-train \
  --dirs "make-train=$D/make-train-s5+$D/make-train-s6+$D/make-train-s7+$D/make-train-s8+$D/make-train-s9+$D/make-train-s10" \
  --dirs "make-train+guard=$T/deploy-guard-s5+$T/deploy-guard-s6+$T/deploy-guard-s7+$T/deploy-guard-s8+$T/deploy-guard-s9+$T/deploy-guard-s10" \
  --dirs "trained-pstart=$C-a/eval/make-train-pstart/s5+$C-a/eval/make-train-pstart/s6+$C-a/eval/make-train-pstart/s7+$C-b/eval/make-train-pstart/s8+$C-b/eval/make-train-pstart/s9+$C-b/eval/make-train-pstart/s10" \
  --dirs "trained-pstart+guard=$S/trained-pstart-guard/s5+$S/trained-pstart-guard/s6+$S/trained-pstart-guard/s7+$S/trained-pstart-guard/s8+$S/trained-pstart-guard/s9+$S/trained-pstart-guard/s10"
