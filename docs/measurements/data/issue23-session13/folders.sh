# Sourced by the thirteenth to fifteenth sessions' tables scripts (from the repository root):
# the harness folders of their ensembles on the held-out suite for a condition COND (eval,
# rescue, sgd), joined by '+' as compare_recipes.py --dirs takes a recipe's meta-seeds.
D13=docs/measurements/data/issue23-session13
S11=docs/measurements/data/issue23-session11
R17=docs/measurements/data/issue23-session17
# make train's three runs (x5s) at 1x as rates.py takes them (the seventeenth session's copies)
X5S_RATES="x5s=$R17/runs-eval-x5s-5.jsonl+$R17/runs-eval-x5s-10.jsonl+$R17/runs-eval-x5s-15.jsonl"
x3_dirs() {  # COND: the three-member ensembles {5,6,7}, {11,12,13}, {15,16,17} (away from 1x the
  # first two are the eleventh session's folders, whose 1x rows these reproduce 35 of 35)
  if [ $1 = eval ]; then echo "$D13/h-eval-x3-567+$D13/h-eval-x3-111213+$D13/h-eval-x3-151617"
  else echo "$S11/collapse-$1-567+$S11/collapse-$1-111213+$D13/h-$1-x3-151617"; fi
}
runs_dirs() {  # DIR RUN COND [PREFIX]: the runs RUN-5, RUN-10, RUN-15 in DIR (folders
  # PREFIX-COND-RUN-S; PREFIX h, the held-out suite, unless given: ts, training side); SEEDS
  # names other runs' seeds (the twenty-second session's x10h: SEEDS="5 15 25")
  local p=${4:-h} s out=""
  for s in ${SEEDS:-5 10 15}; do out+="${out:++}$1/$p-$3-$2-$s"; done
  echo "$out"
}
held_tables() {  # DIR RUN...: each RUN's runs in DIR (SEEDS) against make train's (x5s, the
  # fourteenth session's folders) on the held-out suite's three conditions (the nineteenth and
  # twentieth sessions' tables scripts; the earlier ones write the same loop out)
  local c r args
  for c in eval rescue sgd; do
    echo "######## held out, $c: three runs each, against make train's command (x5s)"
    args=()
    for r in "${@:2}"; do args+=(--dirs "$r=$(runs_dirs "$1" "$r" $c)"); done
    python scripts/compare_recipes.py --baselines "" --reference x5s \
      --dirs "x5s=$(SEEDS="" runs_dirs docs/measurements/data/issue23-session14 x5s $c)" \
      "${args[@]}"
  done
}
