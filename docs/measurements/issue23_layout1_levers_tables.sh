#!/bin/bash
# The nineteenth session's tables (docs/measurements/issue23_layout1_levers.md): two levers, each
# one change over make train's command (x5s), three runs each (seeds 5, 10, 15) on the held-out
# suite's three conditions, on the same cells as make train's own runs: the paired reward on
# layout 1 (x5lp: --reward paired_log_val_loss, the reference the run held at its start) and the
# last four observations stacked (x5fs: --frame-stack 4), every episode started at the default rate
# (x5r1: --lr-below 1 --lr-above 1, a diagnostic lever); and a diagnostic, the hold policy (a
# make train member with its action network zeroed: static plus make train's deployment rules)
# beside static and the other baselines. Folders:
# docs/measurements/data/issue23-session19/ (its README says how each was made) and
# issue23-session14/ (x5s), issue23-session12/ and issue23-session8/ (the baselines).
source /work/main/.venv/bin/activate
cd /work/main
D=docs/measurements/data/issue23-session19
D14=docs/measurements/data/issue23-session14
source docs/measurements/data/issue23-session13/folders.sh  # runs_dirs, held_tables
held_tables $D x5lp x5fs x5r1
S12=docs/measurements/data/issue23-session12
S8=docs/measurements/data/issue23-session8
for c in eval rescue sgd; do
  B=(--baselines ""); [ $c = eval ] && B=(--baselines static,cosine,prodigy,schedulefree,grid --baselines-from $S12/baselines-eval)
  [ $c = sgd ] && B=(--baselines static,grid --baselines-from $S8/baselines-sgd)
  echo "######## held out, $c: the hold policy (static + make train's deployment rules) against make train's command"
  python scripts/compare_recipes.py "${B[@]}" --reference x5s --dirs "x5s=$(runs_dirs $D14 x5s $c)" --dirs "hold=$D/h-$c-hold"
done
D15=docs/measurements/data/issue23-session15
for c in short-sgd full-sgd short-adam full-adam; do
  echo "######## training side, $c: the hold policy against make train's runs, by start factor, then by task at 1x"
  python $D/by_start.py "x5s=$(runs_dirs $D15 x5s $c ts)" "hold=$D/ts-$c-hold"
done
echo "######## where the policies take the rate (runs.jsonl of the 1x folders)"
python $R17/rates.py "$X5S_RATES" \
  "x5lp=$(runs_dirs $D x5lp eval)" "x5fs=$(runs_dirs $D x5fs eval)" "x5r1=$(runs_dirs $D x5r1 eval)" \
  "hold=$D/h-eval-hold"
echo "######## how much x5fs's policies read the history in their stack (digits, Adam and SGD)"
OMP_NUM_THREADS=1 HPENV_NO_HUB=1 python $D/history_read.py logs/exp23/s19/x5fs-{5,10,15}/policy.pt \
  logs/exp23/s14/x5s-5/policy.pt  # the last: make train's (one frame: no history, the check)
