#!/bin/bash
# The twenty-sixth session's x5l tables (docs/measurements/issue23_ppo_levers.md, its
# twenty-sixth session section): make train's command with twice the agent steps per member
# (--total-steps 9600), the lever the twenty-fifth session's shrinkage ranked first, rerun from
# make train's seeds (NEW, default "20 25 30"; the folders of data/issue23-session26/) against
# make train's runs from the same seeds (data/issue23-session24/), then all of x5l's runs (the
# twenty-first session's seeds 5, 10, 15 and the new ones) against make train's nine. Reads the
# figures through compare_recipes --json-out.
source /work/main/.venv/bin/activate
cd /work/main
source docs/measurements/data/issue23-session13/folders.sh  # runs_dirs
M=docs/measurements/data
NEW=${NEW:-20 25 30}
OUT=$(mktemp -d)
for c in eval rescue sgd; do
  NINE="$(runs_dirs $M/issue23-session14 x5s $c)+$(SEEDS="20 25 30 35 40 45" runs_dirs $M/issue23-session24 x5s $c)"
  ALL="$(runs_dirs $M/issue23-session21 x5l $c)+$(SEEDS="$NEW" runs_dirs $M/issue23-session26 x5l $c)"
  echo "######## held out, $c: x5l's new runs against make train's runs from the same seeds"
  python scripts/compare_recipes.py --baselines "" --reference x5s \
    --dirs "x5s=$(SEEDS="$NEW" runs_dirs $M/issue23-session24 x5s $c)" \
    --dirs "x5l=$(SEEDS="$NEW" runs_dirs $M/issue23-session26 x5l $c)" --json-out $OUT/new-$c.json
  echo "######## held out, $c: all of x5l's runs against make train's nine"
  python scripts/compare_recipes.py --baselines "" --reference x5s9 --dirs "x5s9=$NINE" \
    --dirs "x5l=$ALL" --json-out $OUT/all-$c.json
done
echo "######## summary (points)"
python - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
fmt = lambda t: (f"{t['mean_difference']:+.2f} [{t['interval'][0]:+.2f}, {t['interval'][1]:+.2f}], "
                 f"p {t['wilcoxon_p']:.2g}, {t['wins']}/{t['ties']}/{t['losses']}")
print("| held out | make train, same seeds | x5l, new runs | new - make train (same seeds) | make train, nine | x5l, all runs | all - nine |")
print("|---|---|---|---|---|---|---|")
for c in ("eval", "rescue", "sgd"):
    new, al = (json.load(open(f"{out}/{k}-{c}.json")) for k in ("new", "all"))
    rn, ra = new["recipes"], al["recipes"]
    each = ", ".join(f"{x:.2f}" for x in rn["x5l"]["run_means"])
    print(f"| {c} | {rn['x5s']['mean']:.2f} | {rn['x5l']['mean']:.2f} ({each}) | "
          f"{fmt(new['against_reference']['x5l'])} | {ra['x5s9']['mean']:.2f} ± {ra['x5s9']['std']:.2f} | "
          f"{ra['x5l']['mean']:.2f} ± {ra['x5l']['std']:.2f} ({len(ra['x5l']['run_means'])} runs) | "
          f"{fmt(al['against_reference']['x5l'])} |")
PY
rm -r "$OUT"
