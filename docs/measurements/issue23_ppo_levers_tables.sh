#!/bin/bash
# The twenty-third session's tables (docs/measurements/issue23_ppo_levers.md): three of PPO's own
# settings, each one change over make train's command, three runs each (seeds 5, 10, 15) on the
# held-out suite's three conditions against make train's own runs (x5s) on the same cells, then
# where the policies take the rate:
#   x5lr   PPO's learning rate 1e-3 instead of 3e-4 (--learning-rate 1e-3);
#   x5sd   a narrower initial Gaussian policy, std e^-1.0 = 0.37 instead of e^-0.5 = 0.61
#          (--log-std-init -1.0);
#   x5ent  an entropy bonus (--ent-coef 0.01 instead of 0), the issue-15 lever never run.
# Folders: docs/measurements/data/issue23-session23/ (its README says how each was made) and
# issue23-session14/ (x5s).
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
echo "######## where the policies take the rate (runs.jsonl of the 1x folders)"
python $R17/rates.py "$X5S_RATES" "x5lr=$(runs_dirs $D x5lr eval)" "x5sd=$(runs_dirs $D x5sd eval)" \
  "x5ent=$(runs_dirs $D x5ent eval)"
