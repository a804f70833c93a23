#!/bin/bash
# The twentieth session's tables (docs/measurements/issue23_return.md): two levers on what PPO's
# return is, each one change over make train's command (x5s), three runs each (seeds 5, 10, 15)
# on the held-out suite's three conditions, on the same cells as make train's own runs: no
# discount (x5g1: --gamma 1.0) and the budget's end read as the episode's end, without SB3's
# bootstrap (x5bt: --budget-end termination); and x5bt with noisy-label digits among the training
# tasks (x5btn). Then where the policies take the rate, and the
# bootstrap's size at the budget's end on the training tasks. Folders:
# docs/measurements/data/issue23-session20/ (its README says how each was made) and
# issue23-session14/ (x5s).
source /work/main/.venv/bin/activate
cd /work/main
D=docs/measurements/data/issue23-session20
source docs/measurements/data/issue23-session13/folders.sh  # runs_dirs, held_tables
held_tables $D x5g1 x5bt x5btn
echo "######## where the policies take the rate (runs.jsonl of the 1x folders)"
python $R17/rates.py "$X5S_RATES" \
  "x5g1=$(runs_dirs $D x5g1 eval)" "x5bt=$(runs_dirs $D x5bt eval)" "x5btn=$(runs_dirs $D x5btn eval)"
echo "######## the bootstrap at the budget's end: gamma x V(last observation), make train's member and x5g1's"
OMP_NUM_THREADS=1 HPENV_NO_HUB=1 python $D/terminal_value.py logs/exp23/s20/mt-s5 logs/exp23/s20/x5g1-5/s5 --episodes 24
