#!/bin/bash
# Every single change to make train's command measured since the fifteenth session (issue 23),
# against make train's nine runs (seeds 5-45, the twenty-fourth session) instead of its first
# three (x5s, seeds 5, 10, 15: the reference each lever was first judged against). One
# compare_recipes.py call per held-out condition, then the "against x5s9" rows of the three side
# by side. Each lever's folders are its own session's (data/issue23-sessionNN/, whose README
# names the frozen copy that made them); make train's nine come from two copies (the
# fourteenth's, 64df9fe, and the twenty-third's, package code a54c71b). Output:
# issue23_levers_vs_nine.txt beside this script (~6 min alone).
source /work/main/.venv/bin/activate
cd /work/main
source docs/measurements/data/issue23-session13/folders.sh  # runs_dirs
M=docs/measurements/data
LEVERS="15:x5opt 15:x5fh 16:x5obs 17:x5ls 17:x5ls30 17:x5lsn 18:x5lt 19:x5lp 19:x5fs 19:x5r1
  20:x5g1 20:x5bt 20:x5btn 21:x5va 21:x5bfa 21:x5l 22:x5p 22:x10h 22:x5wb 22:x5cv 23:x5lr
  23:x5sd 23:x5ent"
OUT=$(mktemp -d)
for c in eval rescue sgd; do
  args=()
  for l in $LEVERS; do
    n=${l%%:*} r=${l#*:} seeds="5 10 15"
    [ $r = x10h ] && seeds="5 15 25"
    args+=(--dirs "$r=$(SEEDS=$seeds runs_dirs $M/issue23-session$n $r $c)")
  done
  args+=(--dirs "x5sw=$(runs_dirs $M/issue23-session23 x5sw $c)+$(SEEDS="20 25 30" runs_dirs $M/issue23-session24 x5sw $c)")
  NINE="$(runs_dirs $M/issue23-session14 x5s $c)+$(SEEDS="20 25 30 35 40 45" runs_dirs $M/issue23-session24 x5s $c)"
  echo "######## held out, $c: every lever against make train's nine runs (x5s9)"
  python scripts/compare_recipes.py --baselines "" --reference x5s9 --dirs "x5s9=$NINE" "${args[@]}" \
    | tee $OUT/$c.txt
done
echo "######## summary: mean difference to make train's nine runs [95% interval, runs and cells"
echo "######## resampled], Wilcoxon p; ** where the interval excludes 0"
python - "$OUT" <<'PY'
import re, sys
rows = {}
for c in ("eval", "rescue", "sgd"):
    text = open(f"{sys.argv[1]}/{c}.txt").read()
    part = text.split("Against `x5s9`")[1].split("The interval")[0]
    for line in part.splitlines():
        f = [x.strip() for x in line.strip("|").split("|")]
        if len(f) == 7 and re.match(r"^[+-]\d", f[2]):
            lo, hi = (float(x) for x in f[3].strip("[]").split(","))
            star = "**" if lo > 0 or hi < 0 else ""
            rows.setdefault(f[0], {})[c] = f"{star}{f[2]} {f[3]}{star}, p {float(f[5]):.2g}"
print("| lever | default rate (35) | 100x low, 30x high (70) | SGD + momentum (35) |")
print("|---|---|---|---|")
for r, v in rows.items():
    print(f"| {r} | {v['eval']} | {v['rescue']} | {v['sgd']} |")
PY
