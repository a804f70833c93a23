#!/bin/bash
# The twenty-first session's tables (docs/measurements/issue23_accuracy_reward.md): the reward
# scored on validation accuracy, the harness's own score, in place of ln(previous / new
# validation loss), each one change: x5va (--reward val_accuracy, the dense increments, over make
# train's command) and x5bfa (--reward final_accuracy, the final accuracy alone, over x5bt's
# --budget-end termination, so that no value is bootstrapped after it); three runs each (seeds 5,
# 10, 15) on the held-out suite's three conditions against make train's own runs (x5s) and x5bt
# on the same cells. Then where the policies take the rate. Then make train's command with twice
# the agent steps per member (x5l: --total-steps 9600), three runs, the same way. Folders:
# docs/measurements/data/issue23-session21/ (its README says how each was made),
# issue23-session20/ (x5bt) and issue23-session14/ (x5s).
source /work/main/.venv/bin/activate
cd /work/main
D=docs/measurements/data/issue23-session21
source docs/measurements/data/issue23-session13/folders.sh  # runs_dirs, held_tables
held_tables $D x5va x5bfa
echo "######## x5bfa against x5bt (its one change), held out, three runs each"
for c in eval rescue sgd; do
  echo "######## $c"
  python scripts/compare_recipes.py --baselines "" --reference x5bt \
    --dirs "x5bt=$(runs_dirs docs/measurements/data/issue23-session20 x5bt $c)" \
    --dirs "x5bfa=$(runs_dirs $D x5bfa $c)" | grep -A3 "mean diff"
done
echo "######## where the policies take the rate (runs.jsonl of the 1x folders)"
python $R17/rates.py "$X5S_RATES" \
  "x5va=$(runs_dirs $D x5va eval)" "x5bfa=$(runs_dirs $D x5bfa eval)"
echo "######## x5l: make train's command with twice the agent steps per member (--total-steps 9600)"
held_tables $D x5l
python $R17/rates.py "$X5S_RATES" \
  "x5l=$(runs_dirs $D x5l eval)"
