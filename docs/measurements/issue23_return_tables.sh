#!/bin/bash
# The twentieth session's tables (docs/measurements/issue23_return.md): two levers on what PPO's
# return is, each one change over make train's command (x5s), three runs each (seeds 5, 10, 15)
# on the held-out suite's three conditions, on the same cells as make train's own runs: no
# discount (x5g1: --gamma 1.0) and the budget's end read as the episode's end, without SB3's
# bootstrap (x5bt: --budget-end termination). Then where the policies take the rate, and the
# bootstrap's size at the budget's end on the training tasks. Folders:
# docs/measurements/data/issue23-session20/ (its README says how each was made) and
# issue23-session14/ (x5s).
source /work/main/.venv/bin/activate
cd /work/main
D=docs/measurements/data/issue23-session20
source docs/measurements/data/issue23-session13/folders.sh  # runs_dirs, held_tables
held_tables $D x5g1 x5bt
echo "######## where the policies take the rate (runs.jsonl of the 1x folders)"
R=docs/measurements/data/issue23-session17
python $R/rates.py "x5s=$R/runs-eval-x5s-5.jsonl+$R/runs-eval-x5s-10.jsonl+$R/runs-eval-x5s-15.jsonl" \
  "x5g1=$(runs_dirs $D x5g1 eval)" "x5bt=$(runs_dirs $D x5bt eval)"
echo "######## the bootstrap at the budget's end: gamma x V(last observation), make train's member and x5g1's"
OMP_NUM_THREADS=1 HPENV_NO_HUB=1 python $D/terminal_value.py logs/exp23/s20/mt-s5 logs/exp23/s20/x5g1-5/s5 --episodes 24
echo "######## started at the session's end: x5btn (x5bt + noisy-label digits), seeds 5 and 10 only, against x5s and x5bt on the same seeds"
D14=docs/measurements/data/issue23-session14
for c in eval rescue sgd; do
  echo "######## held out, $c: two runs each (seeds 5, 10)"
  python scripts/compare_recipes.py --baselines "" --reference x5s --dirs "x5s=$D14/h-$c-x5s-5+$D14/h-$c-x5s-10" \
    --dirs "x5bt=$D/h-$c-x5bt-5+$D/h-$c-x5bt-10" --dirs "x5btn=$D/h-$c-x5btn-5+$D/h-$c-x5btn-10"
done
python $R/rates.py "x5s=$R/runs-eval-x5s-5.jsonl+$R/runs-eval-x5s-10.jsonl" \
  "x5bt=$D/h-eval-x5bt-5+$D/h-eval-x5bt-10" "x5btn=$D/h-eval-x5btn-5+$D/h-eval-x5btn-10"
