#!/bin/bash
# The fifteenth session's tables: two meta-training levers, each one change over make train's
# command (five members of 4,800 agent steps, x5s): the user's optimizer drawn from Adam, AdamW
# and SGD with momentum in every episode (x5opt: --optimizers adam,adamw,sgd
# --synthetic-optimizers adam,adamw,sgd) and the fall hold inside the episodes (x5fh:
# --fall-hold), each as three runs (seeds 5, 10, 15) on the held-out suite (7 tasks x 5
# evaluation seeds), on the same cells as the fourteenth session's x5s runs of the same seeds.
# Folders: docs/measurements/data/issue23-session15/ (its README says how each was made),
# issue23-session14/ and issue23-session12/ (v2.1).
source /work/main/.venv/bin/activate
cd /work/main
D=docs/measurements/data/issue23-session15
D14=docs/measurements/data/issue23-session14
S12=docs/measurements/data/issue23-session12
source docs/measurements/data/issue23-session13/folders.sh  # runs_dirs
for c in eval rescue sgd; do
  echo "######## held out, $c: three runs each, against make train's command (x5s)"
  python scripts/compare_recipes.py --baselines "" --reference x5s --dirs "x5s=$(runs_dirs $D14 x5s $c)" \
    --dirs "x5opt=$(runs_dirs $D x5opt $c)" --dirs "x5fh=$(runs_dirs $D x5fh $c)" --dirs "v2.1=$S12/$c-v21"
done
for c in short-sgd full-sgd short-adam full-adam; do
  echo "######## training side, $c (digits, wine, breast cancer, synthetic; SGD: starts 1x and 30x, Adam: 0.01x, 1x, 30x, 100x)"
  python scripts/compare_recipes.py --baselines "" --reference x5s --dirs "x5s=$(runs_dirs $D x5s $c ts)" \
    --dirs "x5opt=$(runs_dirs $D x5opt $c ts)" --dirs "x5fh=$(runs_dirs $D x5fh $c ts)"
done
