#!/bin/bash
# The fourteenth session's tables: make train with five members of 4,800 agent steps each (x5s,
# about the agent steps of three default members) against the thirteenth session's three and five
# members of 8,000 (x3, x5: the same seeds, of which x5s's members are the first 4,864 steps), on
# the held-out suite (7 tasks x 5 evaluation seeds). Folders: docs/measurements/data/
# issue23-session14/ (this session's; its README says how each was made) and issue23-session13/.
source /work/main/.venv/bin/activate
cd /work/main
D=docs/measurements/data/issue23-session14
S12=docs/measurements/data/issue23-session12
source docs/measurements/data/issue23-session13/folders.sh  # D13, x3_dirs, runs_dirs
for c in eval rescue sgd; do
  X3=$(x3_dirs $c); X5=$(runs_dirs $D13 x5 $c); X5S=$(runs_dirs $D x5s $c)
  echo "######## held out, $c: three runs each, against make train's three members (x3)"
  python scripts/compare_recipes.py --baselines "" --reference x3 --dirs "x3=$X3" --dirs "x5=$X5" \
    --dirs "x5s=$X5S" --dirs "v2.1=$S12/$c-v21"
  echo "######## held out, $c: the short members against the same seeds at full length (x5)"
  python scripts/compare_recipes.py --baselines "" --reference x5 --dirs "x5=$X5" --dirs "x5s=$X5S" \
    | sed -n '/^Against/,/^The interval/p'
done
echo "######## bar 5 from the pool of short members: every five-member ensemble measured at 1x"
python $D13/spread.py $D/h-eval-x5s-5 $D/h-eval-x5s-10 $D/h-eval-x5s-15 $D/p-eval-r5-*
echo "######## the same draws from the thirteenth session's pool of full-length members (and its three-member ones)"
python $D13/spread.py $D13/h-eval-x3-* $D13/h-eval-x5-5 $D13/h-eval-x5-10 $D13/h-eval-x5-15 $D13/p-eval-r*
for c in eval rescue sgd; do
  echo "######## $c: make train's own run with the short members (seeds 0-4, the timed one) beside the three"
  python $S12/scores.py "mt0=$D/h-$c-x5s-mt0" "x5s-5=$D/h-$c-x5s-5" "x5s-10=$D/h-$c-x5s-10" \
    "x5s-15=$D/h-$c-x5s-15"
done
