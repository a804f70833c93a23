#!/bin/bash
# The twenty-third session's tables (docs/measurements/issue23_ppo_levers.md): three of PPO's own
# settings, each one change over make train's command, three runs each (seeds 5, 10, 15) on the
# held-out suite's three conditions against make train's own runs (x5s) on the same cells, then
# where the policies take the rate:
#   x5lr   PPO's learning rate 1e-3 instead of 3e-4 (--learning-rate 1e-3);
#   x5sd   a narrower initial Gaussian policy, std e^-1.0 = 0.37 instead of e^-0.5 = 0.61
#          (--log-std-init -1.0);
#   x5ent  an entropy bonus (--ent-coef 0.01 instead of 0), the issue-15 lever never run;
#   x5sw   a wider initial Gaussian policy, std e^0 = 1.0 (--log-std-init 0.0), finished by the
#          twenty-fourth session, which also ran x5sw and make train's own command (x5s) from
#          seeds 20, 25, 30: the last tables put six runs of each side by side.
# Folders: docs/measurements/data/issue23-session23/ and issue23-session24/ (their READMEs say
# how each was made) and issue23-session14/ (x5s, seeds 5, 10, 15).
source /work/main/.venv/bin/activate
cd /work/main
D=docs/measurements/data/issue23-session23
source docs/measurements/data/issue23-session13/folders.sh  # runs_dirs, held_tables, X5S_RATES
echo "######## x5lr: PPO's learning rate 1e-3"
held_tables $D x5lr
echo "######## x5sd: the policy's initial log std -1.0"
held_tables $D x5sd
echo "######## x5ent: an entropy bonus of 0.01"
held_tables $D x5ent
echo "######## x5sw: the policy's initial log std 0.0"
held_tables $D x5sw
echo "######## where the policies take the rate (runs.jsonl of the 1x folders)"
python $R17/rates.py "$X5S_RATES" "x5lr=$(runs_dirs $D x5lr eval)" "x5sd=$(runs_dirs $D x5sd eval)" \
  "x5ent=$(runs_dirs $D x5ent eval)" "x5sw=$(runs_dirs $D x5sw eval)"
D24=docs/measurements/data/issue23-session24
D14=docs/measurements/data/issue23-session14
six() {  # RUN COND: RUN's six runs: seeds 5, 10, 15 from D (x5s: D14), 20, 25, 30 from D24
  local d5=$D; [ $1 = x5s ] && d5=$D14
  echo "$(runs_dirs $d5 $1 $2)+$(SEEDS="20 25 30" runs_dirs $D24 $1 $2)"
}
for c in eval rescue sgd; do
  echo "######## held out, $c: make train's second three runs (seeds 20, 25, 30) against its first"
  python scripts/compare_recipes.py --baselines "" --reference x5s \
    --dirs "x5s=$(runs_dirs $D14 x5s $c)" --dirs "x5s-b=$(SEEDS="20 25 30" runs_dirs $D24 x5s $c)"
  echo "######## held out, $c: six runs each, x5sw against make train's command (x5s)"
  python scripts/compare_recipes.py --baselines "" --reference x5s \
    --dirs "x5s=$(six x5s $c)" --dirs "x5sw=$(six x5sw $c)"
  echo "######## held out, $c: the session's other levers (three runs) against make train's six"
  python scripts/compare_recipes.py --baselines "" --reference x5s --dirs "x5s=$(six x5s $c)" \
    --dirs "x5lr=$(runs_dirs $D x5lr $c)" --dirs "x5sd=$(runs_dirs $D x5sd $c)" \
    --dirs "x5ent=$(runs_dirs $D x5ent $c)"
done
echo "######## held out, eval: make train's seed 5 retrained from the same copy against the first"
python scripts/compare_recipes.py --baselines "" --reference x5s-5 \
  --dirs "x5s-5=$D14/h-eval-x5s-5" --dirs "x5s-5r=$D24/h-eval-x5s-5r"
echo "######## where the policies take the rate, six runs each, then the second three of each (1x)"
# (the fourteenth session's folders keep no runs.jsonl: x5s's first three are X5S_RATES's copies)
python $R17/rates.py "$X5S_RATES+$(SEEDS="20 25 30" runs_dirs $D24 x5s eval)" "x5sw=$(six x5sw eval)" \
  "x5s-b=$(SEEDS="20 25 30" runs_dirs $D24 x5s eval)" "x5sw-b=$(SEEDS="20 25 30" runs_dirs $D24 x5sw eval)"
for c in eval rescue sgd; do
  echo "######## held out, $c: make train's third three runs (seeds 35, 40, 45), and nine runs"
  NINE="$(runs_dirs $D14 x5s $c)+$(SEEDS="20 25 30 35 40 45" runs_dirs $D24 x5s $c)"
  python scripts/compare_recipes.py --baselines "" --reference x5s \
    --dirs "x5s=$(runs_dirs $D14 x5s $c)" --dirs "x5s-c=$(SEEDS="35 40 45" runs_dirs $D24 x5s $c)" \
    --dirs "x5s9=$NINE"   # (x5s-b against x5s: the first loop)
  echo "######## held out, $c: x5sw's six runs and the other levers' three against make train's nine"
  python scripts/compare_recipes.py --baselines "" --reference x5s9 --dirs "x5s9=$NINE" \
    --dirs "x5sw=$(six x5sw $c)" --dirs "x5lr=$(runs_dirs $D x5lr $c)" \
    --dirs "x5sd=$(runs_dirs $D x5sd $c)" --dirs "x5ent=$(runs_dirs $D x5ent $c)"
done
# The twenty-fifth session: x5ent from seeds 20-45 (data/issue23-session25/), nine runs against
# make train's nine, and its new six alone against make train's six at the same seeds.
D25=docs/measurements/data/issue23-session25
for c in eval rescue sgd; do
  NINE="$(runs_dirs $D14 x5s $c)+$(SEEDS="20 25 30 35 40 45" runs_dirs $D24 x5s $c)"
  echo "######## held out, $c: x5ent's nine runs against make train's nine; their second and third draws"
  python scripts/compare_recipes.py --baselines "" --reference x5s9 --dirs "x5s9=$NINE" \
    --dirs "x5ent9=$(runs_dirs $D x5ent $c)+$(SEEDS="20 25 30 35 40 45" runs_dirs $D25 x5ent $c)" \
    --dirs "x5ent-b=$(SEEDS="20 25 30" runs_dirs $D25 x5ent $c)" \
    --dirs "x5ent-c=$(SEEDS="35 40 45" runs_dirs $D25 x5ent $c)"
  echo "######## held out, $c: x5ent's six new runs against make train's six at the same seeds (20-45)"
  python scripts/compare_recipes.py --baselines "" --reference x5s6 \
    --dirs "x5s6=$(SEEDS="20 25 30 35 40 45" runs_dirs $D24 x5s $c)" \
    --dirs "x5ent6=$(SEEDS="20 25 30 35 40 45" runs_dirs $D25 x5ent $c)"
done
