#!/bin/bash
# The twenty-seventh session's x5le tables (docs/measurements/issue23_ppo_levers.md, its
# twenty-seventh session section): make train's command with both small levers of the
# twenty-fifth and twenty-sixth sessions together, twice the agent steps per member
# (--total-steps 9600, x5l) and the entropy bonus (--ent-coef 0.01, x5ent). Its runs (NEW:
# the seeds evaluated so far, default those with a folder in data/issue23-session27/) against
# x5l's runs from the same seeds (one change: + the entropy bonus), x5ent's (one change: +
# the agent steps) and make train's (x5s), then all of them against make train's nine.
# Folders: data/issue23-session27 (x5le), issue23-session21 + issue23-session26 (x5l),
# issue23-session23 + issue23-session25 (x5ent), issue23-session14 + issue23-session24 (x5s).
# Reads the figures through compare_recipes --json-out.
source /work/main/.venv/bin/activate
cd /work/main
source docs/measurements/data/issue23-session13/folders.sh  # runs_dirs
M=docs/measurements/data
F=$M/issue23-session27
if [ -z "$NEW" ]; then
  for s in 5 10 15 20 25 30; do [ -f $F/h-sgd-x5le-$s/results.csv ] && NEW+="${NEW:+ }$s"; done
fi
[ -n "$NEW" ] || { echo "no x5le run evaluated yet"; exit 1; }
echo "x5le runs: $NEW"
dirs() {  # RUN COND: RUN's folders for the seeds NEW, wherever each seed's run lives
  local out="" s d
  for s in $NEW; do
    case $1 in
      x5le) d=$F ;;
      x5l) if [ $s -le 15 ]; then d=$M/issue23-session21; else d=$M/issue23-session26; fi ;;
      x5ent) if [ $s -le 15 ]; then d=$M/issue23-session23; else d=$M/issue23-session25; fi ;;
      x5s) if [ $s -le 15 ]; then d=$M/issue23-session14; else d=$M/issue23-session24; fi ;;
    esac
    out+="${out:++}$d/h-$2-$1-$s"
  done
  echo "$out"
}
OUT=$(mktemp -d)
for c in eval rescue sgd; do
  NINE="$(runs_dirs $M/issue23-session14 x5s $c)+$(SEEDS="20 25 30 35 40 45" runs_dirs $M/issue23-session24 x5s $c)"
  echo "######## held out, $c: x5le against x5l, x5ent and make train from the same seeds"
  python scripts/compare_recipes.py --baselines "" --reference x5le --dirs "x5le=$(dirs x5le $c)" \
    --dirs "x5l=$(dirs x5l $c)" --dirs "x5ent=$(dirs x5ent $c)" --dirs "x5s=$(dirs x5s $c)" \
    --json-out $OUT/same-$c.json
  echo "######## held out, $c: x5le against make train's nine"
  python scripts/compare_recipes.py --baselines "" --reference x5s9 --dirs "x5s9=$NINE" \
    --dirs "x5le=$(dirs x5le $c)" --json-out $OUT/nine-$c.json
done
echo "######## summary (points; 'other - x5le' rows are read as x5le's gain with the sign flipped)"
python - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
def fmt(t, flip=False):
    s = -1 if flip else 1
    lo, hi = sorted((s * t["interval"][0], s * t["interval"][1]))
    return (f"{s * t['mean_difference']:+.2f} [{lo:+.2f}, {hi:+.2f}], p {t['wilcoxon_p']:.2g}")
print("| held out | x5le (runs) | x5le - x5l | x5le - x5ent | x5le - make train | make train nine | x5le - nine |")
print("|---|---|---|---|---|---|---|")
for c in ("eval", "rescue", "sgd"):
    same, nine = (json.load(open(f"{out}/{k}-{c}.json")) for k in ("same", "nine"))
    r, a = same["recipes"], same["against_reference"]
    each = ", ".join(f"{x:.2f}" for x in r["x5le"]["run_means"])
    print(f"| {c} | {r['x5le']['mean']:.2f} ({each}) | {fmt(a['x5l'], True)} | "
          f"{fmt(a['x5ent'], True)} | {fmt(a['x5s'], True)} | "
          f"{nine['recipes']['x5s9']['mean']:.2f} ± {nine['recipes']['x5s9']['std']:.2f} | "
          f"{fmt(nine['against_reference']['x5le'])} |")
PY
rm -r "$OUT"
