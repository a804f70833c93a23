#!/bin/bash
# waiver.sh COND...: the v3x5 policies (seeds 20, 25, 30) under 023016d (a run whose probe set
# its rate does not restart, hpenv.restart's Restarts.after_probe) on top of 660c307 (the
# residual follows a restart's or rollback's cut). For each COND (eval, rescue, sgd) and seed:
# S/held/fix-COND-v3x5-SEED (the 660c307 evaluation) copied to S/held/wv-COND-v3x5-SEED with
# the cells of TASKS (default mnist_rotated,imdb_conv: the only tasks whose probe-set first
# interval restarted in any v3x5 cell, docs/measurements/issue23_layout2_ensemble.md) taken
# out of results.csv and runs.jsonl, then the harness resumed there from the frozen copy ROOT
# of 023016d: it runs those cells again. Every other cell is the 660c307 row (the change only
# removes restarts of probe-set runs; VERIFY=1 instead evaluates every task from scratch into
# S/held/wvall-COND-v3x5-SEED, to check that the other tasks' rows are unchanged).
S=${S:-/work/main/logs/exp27}; ROOT=${ROOT:-/work/s27wv}; TASKS=${TASKS:-mnist_rotated,imdb_conv}
export PYTHONPATH=$ROOT OMP_NUM_THREADS=1 HPENV_NO_HUB=1
PY=/work/main/.venv/bin/python
for cond in "$@"; do
  extra=""
  [ $cond = rescue ] && extra="--start-lr-factors 0.01,30"
  [ $cond = sgd ] && extra="--optimizer sgd"
  for seed in ${SEEDS:-20 25 30}; do
    pol=/work/main/logs/exp26/v3x5-$seed/policy.pt
    if [ "${VERIFY:-0}" = 1 ]; then
      out=$S/held/wvall-$cond-v3x5-$seed
      [ -f $out/summary.md ] && continue
      r=""; [ -d $out ] && r="--resume"
    else
      out=$S/held/wv-$cond-v3x5-$seed; src=$S/held/fix-$cond-v3x5-$seed
      [ -f $out/summary.md ] && continue
      [ -f $src/summary.md ] || { echo "$src not finished"; exit 1; }
      if [ ! -d $out ]; then
        mkdir -p $out && cp $src/config.json $out/
        $PY - "$src" "$out" "$TASKS" <<'PY'
import csv, json, sys
src, out, tasks = sys.argv[1], sys.argv[2], set(sys.argv[3].split(","))
with open(f"{src}/results.csv", newline="") as fh, open(f"{out}/results.csv", "w", newline="") as w:
    reader = csv.DictReader(fh)
    writer = csv.DictWriter(w, reader.fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(row for row in reader if row["task"] not in tasks)
with open(f"{src}/runs.jsonl") as fh, open(f"{out}/runs.jsonl", "w") as w:
    w.writelines(line for line in fh if json.loads(line)["task"] not in tasks)
PY
      fi
      r="--resume"
    fi
    (cd $ROOT && $PY scripts/evaluate.py --methods policy --policy $pol $extra \
      --data-dir /work/shared/datasets --out-dir $out $r) > $out.log 2>&1
  done
done
echo done
