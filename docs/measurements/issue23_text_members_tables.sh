#!/bin/bash
# The eighteenth session's tables (docs/measurements/issue23_text_members.md): one change over
# make train's command (x5s), token tasks in the synthetic family (x5lt: --synthetic-text 0.25, a
# quarter of the generated tasks are token sequences through an embedding and a 1-D
# convolution), three runs (seeds 5, 10, 15) on the held-out suite, the training side and six
# token tasks of the family, on the same cells as make train's own runs. Folders:
# docs/measurements/data/issue23-session18/ (its README says how each was made),
# issue23-session15/ and issue23-session14/.
source /work/main/.venv/bin/activate
cd /work/main
D=docs/measurements/data/issue23-session18
D15=docs/measurements/data/issue23-session15
D14=docs/measurements/data/issue23-session14
source docs/measurements/data/issue23-session13/folders.sh  # runs_dirs
for c in eval rescue sgd; do
  echo "######## held out, $c: three runs each, against make train's command (x5s)"
  python scripts/compare_recipes.py --baselines "" --reference x5s --dirs "x5s=$(runs_dirs $D14 x5s $c)" \
    --dirs "x5lt=$(runs_dirs $D x5lt $c)"
done
for c in short-sgd full-sgd short-adam full-adam; do
  echo "######## training side, $c (digits, wine, breast cancer, synthetic; SGD: starts 1x and 30x, Adam: 0.01x, 1x, 30x, 100x)"
  python scripts/compare_recipes.py --baselines "" --reference x5s --dirs "x5s=$(runs_dirs $D15 x5s $c ts)" \
    --dirs "x5lt=$(runs_dirs $D x5lt $c ts)"
done
echo "######## six token tasks of the synthetic family (textside.py 6, seeds 0-2 at 1x), static beside"
python scripts/compare_recipes.py --baselines static --baselines-from $D/text-static \
  --reference x5s --dirs "x5s=$(runs_dirs $D x5s 1x text)" --dirs "x5lt=$(runs_dirs $D x5lt 1x text)"
echo "######## the same tasks, evaluation seed 0 only, with the 8-point grid (8x compute) and its pick"
python $D/seed0.py $D/text-grid $D/text-static "x5s=$(runs_dirs $D x5s 1x text)" "x5lt=$(runs_dirs $D x5lt 1x text)"
echo "######## where the policies take the rate (runs.jsonl of the 1x folders): held out, then the token tasks"
python $R17/rates.py "$X5S_RATES" \
  "x5lt=$(runs_dirs $D x5lt eval)"
python $R17/rates.py "x5s=$(runs_dirs $D x5s 1x text)" "x5lt=$(runs_dirs $D x5lt 1x text)"
