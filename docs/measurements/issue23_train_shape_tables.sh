#!/bin/bash
# The twenty-second session's tables (docs/measurements/issue23_train_shape.md): four changes to
# the shape of make train's meta-training, each one change over its command, three runs each on
# the held-out suite's three conditions against make train's own runs (x5s) on the same cells,
# then where the policies take the rate:
#   x5p   the population engine in place of four subprocess environments (--vec-env population
#         --n-envs 32 --n-steps 8: the same 256-step rollout), at make train's wall time
#         (--total-steps 7168), seeds 5, 10, 15;
#   x10h  ten members of half the agent steps (--ensemble 10 --total-steps 2400), seeds 5, 15, 25
#         (members S..S+9, so that no member is in two runs);
#   x5wb  wine and breast cancer beside the synthetic family and digits (--train-tasks
#         synthetic,digits,wine,breast_cancer), seeds 5, 10, 15;
#   x5cv  a quarter of the synthetic tasks convolutional (--synthetic-conv 0.25), seeds 5, 10, 15.
# Folders: docs/measurements/data/issue23-session22/ (its README says how each was made) and
# issue23-session14/ (x5s).
source /work/main/.venv/bin/activate
cd /work/main
D=docs/measurements/data/issue23-session22
source docs/measurements/data/issue23-session13/folders.sh  # runs_dirs, held_tables
echo "######## x5p: the population engine at make train's wall time"
held_tables $D x5p
echo "######## x10h: ten members of 2,400 agent steps (seeds 5, 15, 25)"
SEEDS="5 15 25" held_tables $D x10h
echo "######## x5wb: wine and breast cancer among the training tasks"
held_tables $D x5wb
echo "######## x5cv: a quarter of the synthetic tasks convolutional (--synthetic-conv 0.25)"
held_tables $D x5cv
echo "######## where the policies take the rate (runs.jsonl of the 1x folders)"
python $R17/rates.py "$X5S_RATES" "x5p=$(runs_dirs $D x5p eval)" \
  "x10h=$(SEEDS="5 15 25" runs_dirs $D x10h eval)" "x5wb=$(runs_dirs $D x5wb eval)" \
  "x5cv=$(runs_dirs $D x5cv eval)"
