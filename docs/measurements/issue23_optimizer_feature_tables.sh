#!/bin/bash
# The sixteenth session's tables (docs/measurements/issue23_optimizer_feature.md): one change
# over the fifteenth session's optimizer draw (x5opt: make train's command with --optimizers
# adam,adamw,sgd --synthetic-optimizers adam,adamw,sgd), observation layout 3, which adds whether
# the run's optimizer is SGD (x5obs: --layout 3), three runs (seeds 5, 10, 15) on the held-out
# suite and the training side, on the same cells as x5opt and make train's own runs (x5s).
# Folders: docs/measurements/data/issue23-session16/ (its README says how each was made),
# issue23-session15/ and issue23-session14/.
source /work/main/.venv/bin/activate
cd /work/main
D=docs/measurements/data/issue23-session16
D15=docs/measurements/data/issue23-session15
D14=docs/measurements/data/issue23-session14
source docs/measurements/data/issue23-session13/folders.sh  # runs_dirs
for c in eval rescue sgd; do
  echo "######## held out, $c: three runs each, against the optimizer draw without the feature (x5opt)"
  python scripts/compare_recipes.py --baselines "" --reference x5opt --dirs "x5opt=$(runs_dirs $D15 x5opt $c)" \
    --dirs "x5obs=$(runs_dirs $D x5obs $c)" --dirs "x5s=$(runs_dirs $D14 x5s $c)"
done
for c in short-sgd full-sgd short-adam full-adam; do
  echo "######## training side, $c (digits, wine, breast cancer, synthetic; SGD: starts 1x and 30x, Adam: 0.01x, 1x, 30x, 100x)"
  python scripts/compare_recipes.py --baselines "" --reference x5opt --dirs "x5opt=$(runs_dirs $D15 x5opt $c ts)" \
    --dirs "x5obs=$(runs_dirs $D x5obs $c ts)" --dirs "x5s=$(runs_dirs $D15 x5s $c ts)"
done
for c in eval rescue sgd; do
  echo "######## held out, $c: x5obs against make train's command (x5s)"
  python scripts/compare_recipes.py --baselines "" --reference x5s --dirs "x5s=$(runs_dirs $D14 x5s $c)" \
    --dirs "x5obs=$(runs_dirs $D x5obs $c)"
done
