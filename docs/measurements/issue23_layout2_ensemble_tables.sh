#!/bin/bash
# The twenty-sixth session's tables (docs/measurements/issue23_layout2_ensemble.md): the issue's
# design (layout 2: probe, min/30 cosine base, residual rate; the paired reward with one hidden
# reference member per group of 4; the issue's distribution; the population engine: the
# v3 candidate's flags, docs/recipes/issue23-v3.toml) packaged as make train packages layout 1
# today: five members of 9,600 agent steps each, their ensemble, the rise guard and the
# collapse rollback (the fall hold is layout-1 only). Three runs (seeds 20, 25, 30) on the
# held-out suite's three conditions against make train's runs from the same seeds and its nine,
# the layout-2 policies' base alone (probe_cosine) and the static baseline beside them per task.
# Folders: docs/measurements/data/issue23-session26/ (v3x5, probe_cosine), issue23-session24/ and
# issue23-session14/ (make train, x5s), issue23-session12/baselines-eval and
# issue23-session8/baselines-sgd (static). Reads the figures through compare_recipes --json-out.
source /work/main/.venv/bin/activate
cd /work/main
source docs/measurements/data/issue23-session13/folders.sh  # runs_dirs
M=docs/measurements/data
D=$M/issue23-session26
OUT=$(mktemp -d)
for c in eval rescue sgd; do
  NINE="$(runs_dirs $M/issue23-session14 x5s $c)+$(SEEDS="20 25 30 35 40 45" runs_dirs $M/issue23-session24 x5s $c)"
  echo "######## held out, $c: v3x5 (layout 2 as make train's ensemble) against make train (x5s)"
  python scripts/compare_recipes.py --baselines "" --reference x5s \
    --dirs "x5s=$(SEEDS="20 25 30" runs_dirs $M/issue23-session24 x5s $c)" \
    --dirs "v3x5=$(SEEDS="20 25 30" runs_dirs $D v3x5 $c)" --dirs "x5s9=$NINE" \
    --json-out $OUT/$c.json
done
echo "######## summary and per task (points; probe_cosine: the layout-2 base alone)"
python - "$OUT" "$D" "$M" <<'PY'
import csv, json, os, sys
from collections import defaultdict
out, d, m = sys.argv[1:]
static = {"eval": f"{m}/issue23-session12/baselines-eval", "sgd": f"{m}/issue23-session8/baselines-sgd"}

def per_task(folder, method):
    values = defaultdict(list)
    if not os.path.isfile(f"{folder}/results.csv"):  # not evaluated (yet)
        return {}
    for row in csv.DictReader(open(f"{folder}/results.csv")):
        if row["method"] == method and not row.get("error"):
            diverged = row["diverged"].strip().lower() in ("true", "1")
            values[row["task"]].append(0.0 if diverged else 100 * float(row["val_accuracy"]))
    return {t: sum(v) / len(v) for t, v in values.items()}

print("| held out | make train, seeds 20-30 | v3x5, seeds 20-30 | v3x5 - make train [interval], p, w/t/l | make train, nine | v3x5 - nine [interval] |")
print("|---|---|---|---|---|---|")
for c in ("eval", "rescue", "sgd"):
    s = json.load(open(f"{out}/{c}.json"))
    r, a = s["recipes"], s["against_reference"]
    v, n = a["v3x5"], a["x5s9"]
    # v3x5 against the nine: the difference of the two against x5s is not it; recompute below
    print(f"| {c} | {r['x5s']['mean']:.2f} ± {r['x5s']['std']:.2f} | {r['v3x5']['mean']:.2f} ± "
          f"{r['v3x5']['std']:.2f} ({', '.join(f'{x:.2f}' for x in r['v3x5']['run_means'])}) | "
          f"{v['mean_difference']:+.2f} [{v['interval'][0]:+.2f}, {v['interval'][1]:+.2f}], "
          f"p {v['wilcoxon_p']:.2g}, {v['wins']}/{v['ties']}/{v['losses']} | "
          f"{r['x5s9']['mean']:.2f} ± {r['x5s9']['std']:.2f} | "
          f"{r['v3x5']['mean'] - r['x5s9']['mean']:+.2f} |")
for c in ("eval", "rescue", "sgd"):
    s = json.load(open(f"{out}/{c}.json"))
    pc = per_task(f"{d}/base-{c}-probe_cosine", "probe_cosine")
    st = per_task(static[c], "static") if c in static else {}
    print(f"\n{c}: per task")
    print("| task | make train (3) | v3x5 (3) | make train (9) | probe_cosine | static |")
    print("|---|---|---|---|---|---|")
    for t in sorted(s["recipes"]["v3x5"]["per_task"]):
        row = [s["recipes"][k]["per_task"].get(t, float("nan")) for k in ("x5s", "v3x5", "x5s9")]
        row += [pc.get(t, float("nan")), st.get(t, float("nan"))]
        print(f"| {t} | " + " | ".join(f"{x:.2f}" for x in row) + " |")
    mean = lambda x: sum(x.values()) / len(x) if x else float("nan")
    print(f"| mean | | | | {mean(pc):.2f} | {mean(st):.2f} |")
PY
rm -r "$OUT"
