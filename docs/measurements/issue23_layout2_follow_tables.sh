#!/bin/bash
# The twenty-seventh session's tables (docs/measurements/issue23_layout2_ensemble.md, its section
# "Twenty-seventh session"): the same three v3x5 policies (the twenty-sixth session's layout-2
# ensembles, seeds 20, 25, 30) evaluated again after each of two changes, one at a time:
#   v3x5f  660c307: a layout-2 policy's residual follows a rate a restart or a rollback cut
#          (hpenv.base.ResidualRate.follow);
#   v3x5w  023016d on top: a run whose probe set its rate does not restart after its first
#          interval (hpenv.restart's Restarts.after_probe).
# Against their evaluation before both (v3x5) and make train's runs from the same seeds (x5s);
# then per task and starting factor. Folders: docs/measurements/data/issue23-session27/
# fix-COND-v3x5-S and wv-COND-v3x5-S, issue23-session26/h-COND-v3x5-S,
# issue23-session24/h-COND-x5s-S. Reads the figures through compare_recipes --json-out.
source /work/main/.venv/bin/activate
cd /work/main
source docs/measurements/data/issue23-session13/folders.sh  # runs_dirs
M=docs/measurements/data
F=$M/issue23-session27
export SEEDS="20 25 30"
OUT=$(mktemp -d)
for c in eval rescue sgd; do
  [ -f "$F/wv-$c-v3x5-30/results.csv" ] || continue  # not evaluated (yet)
  echo "######## held out, $c: v3x5 after each change against before both (v3x5) and make train (x5s)"
  python scripts/compare_recipes.py --baselines "" --reference v3x5 \
    --dirs "v3x5=$(runs_dirs $M/issue23-session26 v3x5 $c)" \
    --dirs "v3x5f=$(runs_dirs $F v3x5 $c fix)" --dirs "v3x5w=$(runs_dirs $F v3x5 $c wv)" \
    --dirs "x5s=$(runs_dirs $M/issue23-session24 x5s $c)" --json-out $OUT/$c.json
  echo "######## held out, $c: the second change alone (v3x5w against v3x5f)"
  python scripts/compare_recipes.py --baselines "" --reference v3x5f \
    --dirs "v3x5f=$(runs_dirs $F v3x5 $c fix)" --dirs "v3x5w=$(runs_dirs $F v3x5 $c wv)" \
    --dirs "x5s=$(runs_dirs $M/issue23-session24 x5s $c)" --json-out $OUT/w-$c.json
done
echo "######## summary (points)"
python - "$OUT" "$M" "$F" <<'PY'
import csv, json, os, sys
from collections import defaultdict
out, m, f = sys.argv[1:]
fmt = lambda t: (f"{t['mean_difference']:+.2f} [{t['interval'][0]:+.2f}, {t['interval'][1]:+.2f}], "
                 f"p {t['wilcoxon_p']:.2g}, {t['wins']}/{t['ties']}/{t['losses']}")

def flip(t):
    """The test of the reference against ``t``'s recipe (the same cells, the sign turned)."""
    return {**t, "mean_difference": -t["mean_difference"],
            "interval": sorted(-x for x in t["interval"]), "wins": t["losses"], "losses": t["wins"]}
print("| held out | make train (20-30) | v3x5 before | + follow (v3x5f) | + no restart after a probe (v3x5w) | follow - before | no restart - follow | both - before | v3x5w - make train |")
print("|---|---|---|---|---|---|---|---|---|")
for c in ("eval", "rescue", "sgd"):
    if not os.path.isfile(f"{out}/{c}.json"):
        continue
    s, w = json.load(open(f"{out}/{c}.json")), json.load(open(f"{out}/w-{c}.json"))
    r, a = s["recipes"], s["against_reference"]
    ms = lambda k: f"{r[k]['mean']:.2f} ± {r[k]['std']:.2f}"
    print(f"| {c} | {r['x5s']['mean']:.2f} | {ms('v3x5')} | {ms('v3x5f')} | {ms('v3x5w')} | "
          f"{fmt(a['v3x5f'])} | {fmt(w['against_reference']['v3x5w'])} | {fmt(a['v3x5w'])} | "
          f"{fmt(flip(w['against_reference']['x5s']))} |")

def cells(folder):
    """(task, factor) -> the policy's cell accuracies (%) (a diverged run: 0)."""
    values = defaultdict(list)
    for row in csv.DictReader(open(f"{folder}/results.csv")):
        if row["method"] == "policy" and not row.get("error"):
            diverged = row["diverged"].strip().lower() in ("true", "1")
            acc = 0.0 if diverged else 100 * float(row["val_accuracy"])
            values[(row["task"], float(row["start_lr_factor"]))].append(acc)
    return values

def pooled(folder_of):
    total = defaultdict(list)
    for seed in (20, 25, 30):
        if os.path.isfile(f"{folder_of(seed)}/results.csv"):
            for k, v in cells(folder_of(seed)).items():
                total[k] += v
    return {k: sum(v) / len(v) for k, v in total.items()}

for c in ("eval", "rescue", "sgd"):
    if not os.path.isfile(f"{out}/{c}.json"):
        continue
    x5s = pooled(lambda s: f"{m}/issue23-session24/h-{c}-x5s-{s}")
    before = pooled(lambda s: f"{m}/issue23-session26/h-{c}-v3x5-{s}")
    fol = pooled(lambda s: f"{f}/fix-{c}-v3x5-{s}")
    wv = pooled(lambda s: f"{f}/wv-{c}-v3x5-{s}")
    print(f"\n{c}: per task and starting factor (three runs x 5 seeds each)")
    print("| task | factor | make train | v3x5 before | + follow | + no restart after a probe |")
    print("|---|---|---|---|---|---|")
    for k in sorted(wv):
        print(f"| {k[0]} | {k[1]:g} | {x5s.get(k, float('nan')):.2f} | {before[k]:.2f} | "
              f"{fol[k]:.2f} | {wv[k]:.2f} |")
PY
rm -r "$OUT"
