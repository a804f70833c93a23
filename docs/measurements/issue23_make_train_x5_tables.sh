#!/bin/bash
# The thirteenth session's tables: make train with five members (--ensemble 5) against three, from
# one pool of fifteen members (seeds 5-19, make train's recipe), on the held-out suite (7 tasks x 5
# evaluation seeds). Folders in docs/measurements/data/issue23-session13/ (results.csv,
# config.json; how each was made: that folder's README.md). {5,6,7} and {11,12,13} from bad starts
# and with SGD are the eleventh session's folders (their 1x rows reproduced here, 35 of 35 equal).
source /work/main/.venv/bin/activate
cd /work/main
D=docs/measurements/data/issue23-session13
S12=docs/measurements/data/issue23-session12
source $D/folders.sh
for c in eval rescue sgd; do
  echo "######## held out, $c: three make train runs of five members against their first three members"
  python scripts/compare_recipes.py --baselines "" --reference x3 --dirs "x3=$(x3_dirs $c)" \
    --dirs "x5=$(runs_dirs $D x5 $c)" --dirs "v2.1=$S12/$c-v21"
done
echo "######## bar 5 from the pool: every sub-ensemble measured at 1x, by size"
python $D/spread.py $D/h-eval-x3-* $D/h-eval-x5-5 $D/h-eval-x5-10 $D/h-eval-x5-15 $D/p-eval-r*
echo "######## make train's own run with five members (seeds 0-4, the timed one) beside the three"
python $S12/scores.py "mt0=$D/h-eval-x5-mt0" "x5-5=$D/h-eval-x5-5" "x5-10=$D/h-eval-x5-10" "x5-15=$D/h-eval-x5-15"
