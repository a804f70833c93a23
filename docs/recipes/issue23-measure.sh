#!/usr/bin/env bash
# Issue 23's measurements, in order, each resumable: run this again after a stop and every
# finished meta-training run and evaluation cell is kept (compare_recipes and evaluate --resume).
# Usage: bash docs/recipes/issue23-measure.sh [DATA_DIR]   (default ~/data; one thread per job)
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${1:-$HOME/data}
export OMP_NUM_THREADS=1 HPENV_NO_HUB=1
PY=${PYTHON:-.venv/bin/python}
BASE1X=static,cosine,prodigy,schedulefree,grid,probe_cosine,lrfind_cosine,mechanic
RESCUE=static,cosine,prodigy,schedulefree,probe_cosine,lrfind_cosine,mechanic  # grid ignores the start

evaluate() {  # OUT_DIR, then evaluate.py's options: continues the folder when it exists
    local out=$1; shift
    local resume=(); [[ -f $out/config.json ]] && resume=(--resume)
    $PY scripts/evaluate.py "$@" --data-dir "$DATA" --out-dir "$out" "${resume[@]}"
}
compare() {  # RECIPES_FILE OUT_DIR, then compare_recipes.py's options
    local file=$1 out=$2; shift 2
    $PY scripts/compare_recipes.py --recipes-file "$file" --out-dir "$out" \
        --meta-seeds 0,1,2,3,4 --data-dir "$DATA" "$@"
}

# 1x baselines, rescue baselines (started 100x low and 30x high), SGD baselines
evaluate logs/exp23/baselines --methods $BASE1X
evaluate logs/exp23/baselines-rescue --methods $RESCUE --start-lr-factors 0.01,30
evaluate logs/exp23/baselines-sgd --methods $BASE1X --optimizer sgd
# the levers, one change at a time, then the v3 candidate
compare docs/recipes/issue23-levers.toml logs/exp23/cmp-levers \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/issue23-v3.toml logs/exp23/cmp-v3 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
# the same policies on the rescue and SGD cells (make-train: v2's recipe; distribution: the
# levers' full design; the v3 candidate)
compare docs/recipes/issue23-levers.toml logs/exp23/cmp-levers-rescue \
    --recipes make-train,distribution --meta-from logs/exp23/cmp-levers \
    --start-lr-factors 0.01,30 --baselines $RESCUE --baselines-from logs/exp23/baselines-rescue
compare docs/recipes/issue23-v3.toml logs/exp23/cmp-v3-rescue --meta-from logs/exp23/cmp-v3 \
    --start-lr-factors 0.01,30 --baselines $RESCUE --baselines-from logs/exp23/baselines-rescue
compare docs/recipes/issue23-levers.toml logs/exp23/cmp-levers-sgd \
    --recipes make-train,distribution --meta-from logs/exp23/cmp-levers \
    --optimizer sgd --baselines $BASE1X --baselines-from logs/exp23/baselines-sgd
compare docs/recipes/issue23-v3.toml logs/exp23/cmp-v3-sgd --meta-from logs/exp23/cmp-v3 \
    --optimizer sgd --baselines $BASE1X --baselines-from logs/exp23/baselines-sgd
# Session of 2026-12-05: one change at a time over the v3 candidate, each over 5 meta-seeds
# (two folders where two jobs ran side by side; the tables join them with compare_recipes --dirs)
compare docs/recipes/issue23-short.toml logs/exp23/cmp-short --meta-seeds 0,1,2 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/issue23-short.toml logs/exp23/cmp-short-b --meta-seeds 3,4 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/issue23-transforms.toml logs/exp23/cmp-transforms --meta-seeds 0,1,2 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/issue23-transforms.toml logs/exp23/cmp-transforms-b --meta-seeds 3,4 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/issue23-shortbase.toml logs/exp23/cmp-shortbase \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
evaluate logs/exp23/baselines-shortbase --methods probe_cosine_short
compare docs/recipes/issue23-longer.toml logs/exp23/cmp-longer --meta-seeds 0,1,2 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/issue23-longer.toml logs/exp23/cmp-longer-b --meta-seeds 3,4 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
# the policies at the end of meta-training (not the snapshot best on synthetic-heldout): the
# candidate's (32,768 steps) and longer's (65,536), which share their first 32,768 steps per seed
compare docs/recipes/issue23-v3.toml logs/exp23/cmp-v3-final --meta-from logs/exp23/cmp-v3 \
    --policy final --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/issue23-longer.toml logs/exp23/cmp-longer-final --meta-from logs/exp23/cmp-longer \
    --meta-seeds 0,1,2 --policy final --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/issue23-longer.toml logs/exp23/cmp-longer-b-final --meta-from logs/exp23/cmp-longer-b \
    --meta-seeds 3,4 --policy final --baselines $BASE1X --baselines-from logs/exp23/baselines
# Session of 2026-12-05 (second): a wider snapshot selection (24 synthetic-heldout episodes per round)
compare docs/recipes/issue23-wideselect.toml logs/exp23/cmp-wideselect \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
# four populations of 8 side by side (local Ray actors) instead of one of 32: each PPO update
# sees up to four task families
compare docs/recipes/issue23-mixed.toml logs/exp23/cmp-mixed \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
# PPO's learning rate annealed linearly to 0 (--lr-schedule linear)
compare docs/recipes/issue23-anneal.toml logs/exp23/cmp-anneal \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
# the policy's rate kept within x10 of its base (--steer-range 10)
compare docs/recipes/issue23-steer10.toml logs/exp23/cmp-steer10 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
# the final policies (end of meta-training, not the selected snapshots) of steer10 and anneal,
# whose changes aim at the late drift
compare docs/recipes/issue23-steer10.toml logs/exp23/cmp-steer10-final --meta-from logs/exp23/cmp-steer10 \
    --policy final --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/issue23-anneal.toml logs/exp23/cmp-anneal-final --meta-from logs/exp23/cmp-anneal \
    --policy final --baselines $BASE1X --baselines-from logs/exp23/baselines
# steer10 started 100x too low and 30x too high (a bound of x10 also limits how far a run
# without a probe can climb out of a bad start)
compare docs/recipes/issue23-steer10.toml logs/exp23/cmp-steer10-rescue --meta-from logs/exp23/cmp-steer10 \
    --start-lr-factors 0.01,30 --baselines $RESCUE --baselines-from logs/exp23/baselines-rescue
# steer10 with SGD + momentum as the user's optimizer (two folders: two jobs side by side)
compare docs/recipes/issue23-steer10.toml logs/exp23/cmp-steer10-sgd --meta-from logs/exp23/cmp-steer10 \
    --meta-seeds 0,1,2 --optimizer sgd --baselines $BASE1X --baselines-from logs/exp23/baselines-sgd
compare docs/recipes/issue23-steer10.toml logs/exp23/cmp-steer10-sgd-b --meta-from logs/exp23/cmp-steer10 \
    --meta-seeds 3,4 --optimizer sgd --baselines $BASE1X --baselines-from logs/exp23/baselines-sgd
# Session of 2026-12-05 (third): steer10's bound only where the probe set the base
# (--unprobed-steer-range 1000), at 1x, from bad starts and with SGD (two folders each: two
# jobs side by side)
compare docs/recipes/issue23-probebound.toml logs/exp23/cmp-probebound --meta-seeds 0,1,2 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/issue23-probebound.toml logs/exp23/cmp-probebound-b --meta-seeds 3,4 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/issue23-probebound.toml logs/exp23/cmp-probebound-b-rescue --meta-from logs/exp23/cmp-probebound-b \
    --meta-seeds 3,4 --start-lr-factors 0.01,30 --baselines $RESCUE --baselines-from logs/exp23/baselines-rescue
compare docs/recipes/issue23-probebound.toml logs/exp23/cmp-probebound-rescue --meta-from logs/exp23/cmp-probebound \
    --meta-seeds 0,1,2 --start-lr-factors 0.01,30 --baselines $RESCUE --baselines-from logs/exp23/baselines-rescue
compare docs/recipes/issue23-probebound.toml logs/exp23/cmp-probebound-b-sgd --meta-from logs/exp23/cmp-probebound-b \
    --meta-seeds 3,4 --optimizer sgd --baselines $BASE1X --baselines-from logs/exp23/baselines-sgd
compare docs/recipes/issue23-probebound.toml logs/exp23/cmp-probebound-sgd --meta-from logs/exp23/cmp-probebound \
    --meta-seeds 0,1,2 --optimizer sgd --baselines $BASE1X --baselines-from logs/exp23/baselines-sgd
# probebound's final policies (end of meta-training) at 1x: is the recipe still safe without selection?
compare docs/recipes/issue23-probebound.toml logs/exp23/cmp-probebound-b-final --meta-from logs/exp23/cmp-probebound-b \
    --meta-seeds 3,4 --policy final --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/issue23-probebound.toml logs/exp23/cmp-probebound-final --meta-from logs/exp23/cmp-probebound \
    --meta-seeds 0,1,2 --policy final --baselines $BASE1X --baselines-from logs/exp23/baselines
# the action sets the offset from the base instead of moving it (--steer-mode absolute, over steer10)
compare docs/recipes/issue23-absolute.toml logs/exp23/cmp-absolute --meta-seeds 0,1,2 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/issue23-absolute.toml logs/exp23/cmp-absolute-b --meta-seeds 3,4 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/issue23-absolute.toml logs/exp23/cmp-absolute-rescue --meta-from logs/exp23/cmp-absolute \
    --meta-seeds 0,1,2 --start-lr-factors 0.01,30 --baselines $RESCUE --baselines-from logs/exp23/baselines-rescue
compare docs/recipes/issue23-absolute.toml logs/exp23/cmp-absolute-b-rescue --meta-from logs/exp23/cmp-absolute-b \
    --meta-seeds 3,4 --start-lr-factors 0.01,30 --baselines $RESCUE --baselines-from logs/exp23/baselines-rescue
compare docs/recipes/issue23-absolute.toml logs/exp23/cmp-absolute-sgd --meta-from logs/exp23/cmp-absolute \
    --meta-seeds 0,1,2 --optimizer sgd --baselines $BASE1X --baselines-from logs/exp23/baselines-sgd
compare docs/recipes/issue23-absolute.toml logs/exp23/cmp-absolute-b-sgd --meta-from logs/exp23/cmp-absolute-b \
    --meta-seeds 3,4 --optimizer sgd --baselines $BASE1X --baselines-from logs/exp23/baselines-sgd
compare docs/recipes/issue23-absolute.toml logs/exp23/cmp-absolute-final --meta-from logs/exp23/cmp-absolute \
    --meta-seeds 0,1,2 --policy final --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/issue23-absolute.toml logs/exp23/cmp-absolute-b-final --meta-from logs/exp23/cmp-absolute-b \
    --meta-seeds 3,4 --policy final --baselines $BASE1X --baselines-from logs/exp23/baselines
# Session of 2026-12-05 (fourth): ensembles of the candidate's meta-training seeds. Five more
# seeds of the candidate (two folders: two jobs side by side), then each five-seed ensemble
# (the mean of its members' actions, scripts/ensemble_policy.py) of the selected snapshots and
# of the final policies, at 1x, from bad starts and with SGD
compare docs/recipes/issue23-v3.toml logs/exp23/cmp-v3-c --meta-seeds 5,6,7 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/issue23-v3.toml logs/exp23/cmp-v3-d --meta-seeds 8,9 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
ensemble() {  # OUT, then the member files: written once
    local out=$1; shift
    [[ -f $out ]] || $PY scripts/ensemble_policy.py --out "$out" --policies "$(IFS=,; echo "$*")"
}
M=logs/exp23/cmp-v3/meta/distribution-population
C=logs/exp23/cmp-v3-c/meta/distribution-population
D=logs/exp23/cmp-v3-d/meta/distribution-population
E=logs/exp23/ensembles
ensemble $E/v3-s0-4.pt $M/s{0,1,2,3,4}/best_policy.pt
ensemble $E/v3-final-s0-4.pt $M/s{0,1,2,3,4}/policy.pt
ensemble $E/v3-s5-9.pt $C/s{5,6,7}/best_policy.pt $D/s{8,9}/best_policy.pt
ensemble $E/v3-final-s5-9.pt $C/s{5,6,7}/policy.pt $D/s{8,9}/policy.pt
for name in v3 v3-final; do
    for seeds in s0-4 s5-9; do
        policy=(--methods policy --policy $E/$name-$seeds.pt)
        evaluate logs/exp23/ens-$name/$seeds "${policy[@]}"
        evaluate logs/exp23/ens-$name-rescue/$seeds "${policy[@]}" --start-lr-factors 0.01,30
        evaluate logs/exp23/ens-$name-sgd/$seeds "${policy[@]}" --optimizer sgd
    done
done
# the candidate's seeds 5-9 from bad starts and with SGD (each ensemble beside its own members)
compare docs/recipes/issue23-v3.toml logs/exp23/cmp-v3-d-rescue --meta-from logs/exp23/cmp-v3-d \
    --meta-seeds 8,9 --start-lr-factors 0.01,30 --baselines $RESCUE --baselines-from logs/exp23/baselines-rescue
compare docs/recipes/issue23-v3.toml logs/exp23/cmp-v3-d-sgd --meta-from logs/exp23/cmp-v3-d \
    --meta-seeds 8,9 --optimizer sgd --baselines $BASE1X --baselines-from logs/exp23/baselines-sgd
compare docs/recipes/issue23-v3.toml logs/exp23/cmp-v3-c-rescue --meta-from logs/exp23/cmp-v3-c \
    --meta-seeds 5,6,7 --start-lr-factors 0.01,30 --baselines $RESCUE --baselines-from logs/exp23/baselines-rescue
compare docs/recipes/issue23-v3.toml logs/exp23/cmp-v3-c-sgd --meta-from logs/exp23/cmp-v3-c \
    --meta-seeds 5,6,7 --optimizer sgd --baselines $BASE1X --baselines-from logs/exp23/baselines-sgd
# the shipped hpenv-lr-v2 on the same cells (the issue's "beats v2", paired over the cells)
evaluate logs/exp23/v2-shipped --methods policy --policy hpenv-lr-v2
evaluate logs/exp23/v2-shipped-rescue --methods policy --policy hpenv-lr-v2 --start-lr-factors 0.01,30
evaluate logs/exp23/v2-shipped-sgd --methods policy --policy hpenv-lr-v2 --optimizer sgd
# the final policies of the candidate's seeds 5-9 (the members of the final-policy ensemble)
compare docs/recipes/issue23-v3.toml logs/exp23/cmp-v3-d-final --meta-from logs/exp23/cmp-v3-d \
    --meta-seeds 8,9 --policy final --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/issue23-v3.toml logs/exp23/cmp-v3-c-final --meta-from logs/exp23/cmp-v3-c \
    --meta-seeds 5,6,7 --policy final --baselines $BASE1X --baselines-from logs/exp23/baselines
# ten-member ensembles (seeds 0-9), selected snapshots and final policies, at 1x
ensemble $E/v3-s0-9.pt $M/s{0,1,2,3,4}/best_policy.pt $C/s{5,6,7}/best_policy.pt $D/s{8,9}/best_policy.pt
ensemble $E/v3-final-s0-9.pt $M/s{0,1,2,3,4}/policy.pt $C/s{5,6,7}/policy.pt $D/s{8,9}/policy.pt
evaluate logs/exp23/ens10-v3 --methods policy --policy $E/v3-s0-9.pt
evaluate logs/exp23/ens10-v3-final --methods policy --policy $E/v3-final-s0-9.pt
# ensembles of make-train (v2's lineage, layout 1; the issue-22 seeds 0-4): all five, and every
# three of them (make train's 20 minutes hold about three seeds), at 1x
T=logs/exp22/cmp-timing/meta/make-train
ensemble $E/mt-s01234.pt $T/s{0,1,2,3,4}/best_policy.pt
evaluate logs/exp23/ens-mt/s01234 --methods policy --policy $E/mt-s01234.pt
for c in 012 013 014 023 024 034 123 124 134 234; do
    ensemble $E/mt-s$c.pt $T/s${c:0:1}/best_policy.pt $T/s${c:1:1}/best_policy.pt $T/s${c:2:1}/best_policy.pt
    evaluate logs/exp23/ens-mt/s$c --methods policy --policy $E/mt-s$c.pt
done
# nine more make-train seeds (trained after the evaluation fix; two folders side by side), then
# three disjoint three-member ensembles of them: bar 5 with make train as "three seeds, one
# ensemble" (about 9 minutes of meta-training on the 2 cores)
compare docs/recipes/make-train.toml logs/exp23/cmp-mt-e --meta-seeds 5,6,7,8,9 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/make-train.toml logs/exp23/cmp-mt-f --meta-seeds 10,11,12,13 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
TE=logs/exp23/cmp-mt-e/meta/make-train; TF=logs/exp23/cmp-mt-f/meta/make-train
ensemble $E/mt-s567.pt $TE/s{5,6,7}/best_policy.pt
ensemble $E/mt-s8910.pt $TE/s{8,9}/best_policy.pt $TF/s10/best_policy.pt
ensemble $E/mt-s111213.pt $TF/s{11,12,13}/best_policy.pt
for c in 567 8910 111213; do
    evaluate logs/exp23/ens-mt/s$c --methods policy --policy $E/mt-s$c.pt
done
# `make train` as three seeds and their ensemble (train_agent.py --ensemble 3): the real command
# once, timed alone (members 0-2; OMP_NUM_THREADS unset, as a user runs it), then two more runs
# of it through the comparison (members 100-102 and 200-202, two folders side by side), each
# ensemble at 1x, from bad starts and with SGD (bar 5, and whether it could ship)
OMP_NUM_THREADS= /usr/bin/time -v make train   # writes logs/meta-ppo-s0x3-<time>/policy.pt
MT=$(ls -d logs/meta-ppo-s0x3-* | tail -1)
evaluate logs/exp23/mt3/s0 --methods policy --policy $MT/policy.pt
evaluate logs/exp23/mt3/s0-rescue --methods policy --policy $MT/policy.pt --start-lr-factors 0.01,30
evaluate logs/exp23/mt3/s0-sgd --methods policy --policy $MT/policy.pt --optimizer sgd
for s in 100 200; do
    compare docs/recipes/make-train-ensemble.toml logs/exp23/cmp-mt3-$s --meta-seeds $s \
        --baselines $BASE1X --baselines-from logs/exp23/baselines
    compare docs/recipes/make-train-ensemble.toml logs/exp23/cmp-mt3-$s-rescue --meta-seeds $s \
        --meta-from logs/exp23/cmp-mt3-$s --start-lr-factors 0.01,30 --baselines $RESCUE \
        --baselines-from logs/exp23/baselines-rescue
    compare docs/recipes/make-train-ensemble.toml logs/exp23/cmp-mt3-$s-sgd --meta-seeds $s \
        --meta-from logs/exp23/cmp-mt3-$s --optimizer sgd --baselines $BASE1X \
        --baselines-from logs/exp23/baselines-sgd
done
# the members of those three make train runs alone (is the ensemble above its members' mean?)
for spec in $MT:0 $MT:1 $MT:2 logs/exp23/cmp-mt3-100/meta/make-train-x3/s100:{100,101,102} \
        logs/exp23/cmp-mt3-200/meta/make-train-x3/s200:{200,201,202}; do
    dir=${spec%%:*}; s=${spec##*:}
    evaluate logs/exp23/mt3/member-s$s --methods policy --policy $dir/s$s/best_policy.pt
done
# the shipped v2's own recipe (issue 5's command, 24,000 agent steps) over five seeds, seed 1 the
# shipped one's: is the shipped policy a typical seed of its recipe? (two folders side by side)
compare docs/recipes/v2-recipe.toml logs/exp23/cmp-v2r-a --meta-seeds 1,3,5 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/v2-recipe.toml logs/exp23/cmp-v2r-b --meta-seeds 2,4 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
# one change to make train's recipe against its collapsed seeds: a quarter of the synthetic
# family convolutional (informed by held-out tasks: see the recipes file), seeds 5-13 as
# make-train's, two folders side by side
compare docs/recipes/issue23-mt-conv.toml logs/exp23/cmp-mtconv-a --meta-seeds 5,6,7,8,9 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
compare docs/recipes/issue23-mt-conv.toml logs/exp23/cmp-mtconv-b --meta-seeds 10,11,12,13 \
    --baselines $BASE1X --baselines-from logs/exp23/baselines
# --- sixth session (2026-12-05, afternoon): the logs of the steps above were lost with the
# machine; these were rerun from scratch. The convolutional lever and make train retrained side
# by side on seeds 5-13 (static as the only baseline; docs/measurements/issue23_conv_vs_make_train.md):
compare docs/recipes/issue23-conv-vs-make-train.toml logs/exp23/cmp-conv-a --meta-seeds 5,6,7,8,9 \
    --baselines static
compare docs/recipes/issue23-conv-vs-make-train.toml logs/exp23/cmp-conv-b --meta-seeds 10,11,12,13 \
    --baselines static
# mean and median ensembles of their members: the disjoint triplets {5,6,7}, {8,9,10}, {11,12,13}
# and the five-member sets {5..9}, {9..13}, for both recipes
for seeds in "5 6 7" "8 9 10" "11 12 13" "5 6 7 8 9" "9 10 11 12 13"; do
    tag=${seeds// /}
    for r in make-train make-train-conv; do
        files=""
        for s in $seeds; do
            half=a; [ "$s" -gt 9 ] && half=b
            files="$files,logs/exp23/cmp-conv-$half/meta/$r/s$s/best_policy.pt"
        done
        for red in mean median; do
            $PY scripts/ensemble_policy.py --out logs/exp23/ens6/$r-$red-$tag.pt \
                --policies "${files#,}" --reduce $red
            evaluate logs/exp23/ens6/eval-$r-$red-$tag --methods policy \
                --policy logs/exp23/ens6/$r-$red-$tag.pt
        done
    done
done
# the shipped v2's own recipe over seeds 1-3 (seed 1 the shipped one's), restarted from scratch
compare docs/recipes/v2-recipe.toml logs/exp23/cmp-v2r --meta-seeds 1,2,3 --baselines ""
# the shipped v2 and make train's three mean ensembles from bad starts and with SGD
for p in hpenv-lr-v2 logs/exp23/ens6/make-train-mean-{567,8910,111213}.pt; do
    n=$(basename $p .pt)
    evaluate logs/exp23/ens6/rescue-$n --methods policy --policy $p --start-lr-factors 0.01,30
    evaluate logs/exp23/ens6/sgd-$n --methods policy --policy $p --optimizer sgd
done
# two more seeds of v2's own recipe (one folder each, side by side)
compare docs/recipes/v2-recipe.toml logs/exp23/cmp-v2r-4 --meta-seeds 4 --baselines ""
compare docs/recipes/v2-recipe.toml logs/exp23/cmp-v2r-5 --meta-seeds 5 --baselines ""
# is meta-training deterministic? The same seed twice (compare the policies' fingerprints:
# python -c "from agents.policy import load_policy; print(load_policy('/tmp/det1/policy.pt').fingerprint())")
for i in 1 2; do
    $PY scripts/train_agent.py --total-steps 512 --seed 10 --data-dir "$DATA" --out-dir /tmp/det$i
    $PY scripts/train_agent.py --total-steps 2560 --eval-every 1024 --seed 10 --data-dir "$DATA" \
        --out-dir /tmp/det-eval$i
done

# ---- seventh session: the rise guard (docs/measurements/issue23_rise_guard.md) ----
# make train's seeds 5-13 alone with the guard at deployment; seed 8 re-evaluated without it
# and retrained, to check the sixth session's folders still reproduce (fingerprint, 35 cells)
for s in 5 6 7 8 9 10 11 12 13; do
    half=a; [ "$s" -gt 9 ] && half=b
    evaluate logs/exp23/s7/deploy-on/s$s --methods policy --rise-guard on \
        --policy logs/exp23/cmp-conv-$half/meta/make-train/s$s/best_policy.pt
done
evaluate logs/exp23/s7/deploy-off/s8 --methods policy --rise-guard off \
    --policy logs/exp23/cmp-conv-a/meta/make-train/s8/best_policy.pt
compare docs/recipes/issue23-rise-guard.toml logs/exp23/s7/cmp-repro --recipes make-train \
    --meta-seeds 8 --baselines ""
# the guard in meta-training too (seeds 5-13), and its three disjoint mean ensembles
compare docs/recipes/issue23-rise-guard.toml logs/exp23/s7/cmp-guard-a --recipes make-train-guard \
    --meta-seeds 5,6,7,8,9 --baselines ""
compare docs/recipes/issue23-rise-guard.toml logs/exp23/s7/cmp-guard-b --recipes make-train-guard \
    --meta-seeds 10,11,12,13 --baselines ""
for seeds in "5 6 7" "8 9 10" "11 12 13"; do
    t=$(echo $seeds | tr -d ' '); m=""
    for s in $seeds; do
        half=a; [ "$s" -gt 9 ] && half=b
        m="$m,logs/exp23/s7/cmp-guard-$half/meta/make-train-guard/s$s/best_policy.pt"
    done
    $PY scripts/ensemble_policy.py --out logs/exp23/s7/ens-trained/guard-mean-$t.pt --policies "${m#,}"
    evaluate logs/exp23/s7/ens-trained/eval-guard-mean-$t --methods policy \
        --policy logs/exp23/s7/ens-trained/guard-mean-$t.pt
done
# make train's three ensembles and v2 with the guard at deployment: 1x, bad starts, SGD
for p in logs/exp23/ens6/make-train-mean-{567,8910,111213}.pt hpenv-lr-v2; do
    n=$(basename $p .pt)
    evaluate logs/exp23/s7/ens-guard/eval-$n --methods policy --policy $p --rise-guard on
    evaluate logs/exp23/s7/ens-guard/rescue-$n --methods policy --policy $p --rise-guard on \
        --start-lr-factors 0.01,30
    evaluate logs/exp23/s7/ens-guard/sgd-$n --methods policy --policy $p --rise-guard on --optimizer sgd
done
# make train's worst run of the fifth session (seed 100) retrained, without and with the guard
$PY scripts/train_agent.py --ensemble 3 --seed 100 --data-dir "$DATA" --out-dir logs/exp23/s7/mt100
for g in off on; do
    evaluate logs/exp23/s7/mt100/eval-$g --methods policy --policy logs/exp23/s7/mt100/policy.pt \
        --rise-guard $g
    for s in 100 101 102; do
        evaluate logs/exp23/s7/mt100/eval-s$s-$g --methods policy --rise-guard $g \
            --policy logs/exp23/s7/mt100/s$s/best_policy.pt
    done
done
# seeds 7 and 8 alone from bad starts and with SGD, without and with the guard
for s in 8 7; do for g in off on; do
    p=logs/exp23/cmp-conv-a/meta/make-train/s$s/best_policy.pt
    evaluate logs/exp23/s7/single-bad/rescue-s$s-$g --methods policy --policy $p --rise-guard $g \
        --start-lr-factors 0.01,30
    evaluate logs/exp23/s7/single-bad/sgd-s$s-$g --methods policy --policy $p --rise-guard $g \
        --optimizer sgd
done; done
# make train's own command end to end (seed 0), as written and with the guard off
$PY scripts/train_agent.py --ensemble 3 --deploy-rise-guard on --data-dir "$DATA" --out-dir logs/exp23/s7/mt0
for g in policy off; do
    evaluate logs/exp23/s7/mt0/eval-$g --methods policy --policy logs/exp23/s7/mt0/policy.pt --rise-guard $g
done
# the layout-2 v3 candidate, two meta-seeds (one folder each, side by side), with the guard
for s in 0 1; do
    compare docs/recipes/issue23-v3.toml logs/exp23/s7/cmp-v3-s$s --meta-seeds $s --baselines ""
    evaluate logs/exp23/s7/v3-guard/s$s --methods policy --rise-guard on \
        --policy logs/exp23/s7/cmp-v3-s$s/meta/distribution-population/s$s/best_policy.pt
done

# ---- eighth session: the probe start (hpenv.base.ProbeStart) for layout-1 policies ----
# make train's three ensembles of the sixth session (seeds {5,6,7}, {8,9,10}, {11,12,13}, built
# by ensemble_policy.py into logs/exp23/ens6/) and the shipped v2, all with the guard; the
# reference rows are the seventh session's logs/exp23/s7/ens-guard/ folders
cells() {  # OUT_PREFIX NAME, then evaluate.py's options: 1x, rescue, SGD
    local out=$1 name=$2; shift 2
    evaluate $out/eval-$name "$@"
    evaluate $out/rescue-$name "$@" --start-lr-factors 0.01,30
    evaluate $out/sgd-$name "$@" --optimizer sgd
}
for name in make-train-mean-567 make-train-mean-8910 make-train-mean-111213 hpenv-lr-v2; do
    p=logs/exp23/ens6/$name.pt; [[ $name == hpenv-lr-v2 ]] && p=hpenv-lr-v2
    cells logs/exp23/s8/pstart $name --methods policy --policy $p --rise-guard on --probe-start on
done
for name in make-train-mean-567 make-train-mean-8910 make-train-mean-111213; do
    p=logs/exp23/ens6/$name.pt
    cells logs/exp23/s8/pstart10 $name --methods policy --policy $p --rise-guard on --probe-start on:10
    cells logs/exp23/s8/pstart-rbstart $name --methods policy --policy $p --rise-guard on \
        --probe-start on --probe-rollback start
done
# the SGD baselines of bar 4 (static and the 8-point grid), re-run on these cells
evaluate logs/exp23/s8/baselines-sgd --methods static,grid --optimizer sgd
# the probe's rollback on training-side tasks only (114-135 steps, then full length)
$PY scripts/choose_base.py --seeds 0,1,2,3,4 --optimizers task,sgd --start-lr-factors 1 \
    --candidates "min/30 cosine,min/30 cosine rollback=start,default cosine" \
    --fidelity digits:1:3 --fidelity breast_cancer:1:8 --fidelity wine:1:8 --fidelity synthetic:1:2 \
    --data-dir "$DATA" --out logs/exp23/s8/choose_rollback_mid.json
$PY scripts/choose_base.py --seeds 0,1,2,3,4 --optimizers task,sgd --start-lr-factors 1 \
    --candidates "min/30 cosine,min/30 cosine rollback=start,default cosine" \
    --data-dir "$DATA" --out logs/exp23/s8/choose_rollback_full.json
# meta-trained with the probe start (make train's recipe + --probe-start on), seeds 5-13, and
# their three three-member ensembles with the guard
$PY scripts/compare_recipes.py --recipes-file docs/recipes/issue23-probe-start.toml \
    --recipes make-train-pstart --out-dir logs/exp23/s8/cmp-pstart-a --meta-seeds 5,6,7 \
    --data-dir "$DATA" --baselines ""
$PY scripts/compare_recipes.py --recipes-file docs/recipes/issue23-probe-start.toml \
    --recipes make-train-pstart --out-dir logs/exp23/s8/cmp-pstart-b --meta-seeds 8,9,10 \
    --data-dir "$DATA" --baselines ""
$PY scripts/compare_recipes.py --recipes-file docs/recipes/issue23-probe-start.toml \
    --recipes make-train-pstart --out-dir logs/exp23/s8/cmp-pstart-c --meta-seeds 11,12 \
    --data-dir "$DATA" --baselines ""
$PY scripts/compare_recipes.py --recipes-file docs/recipes/issue23-probe-start.toml \
    --recipes make-train-pstart --out-dir logs/exp23/s8/cmp-pstart-d --meta-seeds 13 \
    --data-dir "$DATA" --baselines ""
A=logs/exp23/s8/cmp-pstart-a/meta/make-train-pstart; B=logs/exp23/s8/cmp-pstart-b/meta/make-train-pstart
M=logs/exp23/s8/cmp-pstart-c/meta/make-train-pstart; N=logs/exp23/s8/cmp-pstart-d/meta/make-train-pstart
$PY scripts/ensemble_policy.py --out logs/exp23/s8/ens/pstart-567.pt \
    --policies $A/s5/best_policy.pt,$A/s6/best_policy.pt,$A/s7/best_policy.pt
$PY scripts/ensemble_policy.py --out logs/exp23/s8/ens/pstart-8910.pt \
    --policies $B/s8/best_policy.pt,$B/s9/best_policy.pt,$B/s10/best_policy.pt
$PY scripts/ensemble_policy.py --out logs/exp23/s8/ens/pstart-111213.pt \
    --policies $M/s11/best_policy.pt,$M/s12/best_policy.pt,$N/s13/best_policy.pt
for name in pstart-567 pstart-8910 pstart-111213; do
    cells logs/exp23/s8/trained-pstart $name --methods policy --policy logs/exp23/s8/ens/$name.pt \
        --rise-guard on
done
# the probe's rollback to the start on the layout-2 v3 candidate (the seventh session's two seeds)
for s in 0 1; do
    evaluate logs/exp23/s8/v3-rbstart/s$s --methods policy --probe-rollback start \
        --policy logs/exp23/s7/cmp-v3-s$s/meta/distribution-population/s$s/best_policy.pt
done

# ---- ninth session: runs too short for a probe, and the restart (hpenv.restart) ----
# training-side short runs (45-67 steps) and full length, starts 0.01x-100x, guard on
SHORT=(--fidelity digits:1:1 --fidelity breast_cancer:1:3 --fidelity wine:1:8 --fidelity synthetic:1:1)
side() {  # OUT_DIR POLICY, then evaluate.py's options
    local out=$1 policy=$2; shift 2
    evaluate $out --methods policy --policy $policy --rise-guard on \
        --tasks digits,wine,breast_cancer,synthetic --include-training-tasks \
        --start-lr-factors 0.01,1,30,100 "$@"
}
E=logs/exp23/ens6/make-train-mean-567.pt
side logs/exp23/s9/ts/short-asw4 $E "${SHORT[@]}"
side logs/exp23/s9/ts/short-restart-real $E "${SHORT[@]}" --restart on
side logs/exp23/s9/ts/full-asw4 $E
side logs/exp23/s9/ts/full-restart $E --restart on
X=docs/measurements/data/issue23-session9/experiment
$PY $X/restart_variant.py $E logs/exp23/s9/pol/mt567-restart-train.pt
side logs/exp23/s9/ts/short-restart-train logs/exp23/s9/pol/mt567-restart-train.pt "${SHORT[@]}"
side logs/exp23/s9/ts/full-restart-train logs/exp23/s9/pol/mt567-restart-train.pt
# (the rejected deployment levers: $X/deploy_variant.py and the patches in $X, commands in
# $X/run_training_side*.sh)
# meta-training with short budgets too (rejected), seeds 5-10, and their ensembles
compare docs/recipes/issue23-short-runs.toml logs/exp23/s9/cmp-short-a --recipes make-train-short \
    --meta-seeds 5,6 --baselines ""
compare docs/recipes/issue23-short-runs.toml logs/exp23/s9/cmp-short-b --recipes make-train-short \
    --meta-seeds 7 --baselines ""
compare docs/recipes/issue23-short-runs.toml logs/exp23/s9/cmp-short-c --recipes make-train-short \
    --meta-seeds 8,9 --baselines ""
compare docs/recipes/issue23-short-runs.toml logs/exp23/s9/cmp-short-d --recipes make-train-short \
    --meta-seeds 10 --baselines ""
A=logs/exp23/s9/cmp-short-a/meta/make-train-short; B=logs/exp23/s9/cmp-short-b/meta/make-train-short
C=logs/exp23/s9/cmp-short-c/meta/make-train-short; D=logs/exp23/s9/cmp-short-d/meta/make-train-short
$PY scripts/ensemble_policy.py --out logs/exp23/s9/ens/short-567.pt \
    --policies $A/s5/best_policy.pt,$A/s6/best_policy.pt,$B/s7/best_policy.pt
$PY scripts/ensemble_policy.py --out logs/exp23/s9/ens/short-8910.pt \
    --policies $C/s8/best_policy.pt,$C/s9/best_policy.pt,$D/s10/best_policy.pt
for s in 5 6 7 8 9 10; do
    evaluate logs/exp23/s9/short-guard/s$s --methods policy --rise-guard on \
        --policy "$(ls logs/exp23/s9/cmp-short-*/meta/make-train-short/s$s/best_policy.pt)"
done
for name in short-567 short-8910; do
    cells logs/exp23/s9/short-ens $name --methods policy --policy logs/exp23/s9/ens/$name.pt \
        --rise-guard on
done
# the restart on the held-out suite: make train's three ensembles, alone and with the probe start
for name in make-train-mean-567 make-train-mean-8910 make-train-mean-111213; do
    cells logs/exp23/s9/restart $name --methods policy --policy logs/exp23/ens6/$name.pt \
        --rise-guard on --restart on
    cells logs/exp23/s9/restart-pstart-rbs $name --methods policy --policy logs/exp23/ens6/$name.pt \
        --rise-guard on --restart on --probe-start on --probe-rollback start
    $PY $X/restart_variant.py logs/exp23/ens6/$name.pt logs/exp23/s9/pol/$name-restart-train.pt
    cells logs/exp23/s9/restart-train $name --methods policy --rise-guard on \
        --policy logs/exp23/s9/pol/$name-restart-train.pt
done
for name in pstart-567 pstart-8910 pstart-111213; do  # meta-trained with the probe start
    cells logs/exp23/s9/trained-pstart-restart $name --methods policy \
        --policy logs/exp23/s8/ens/$name.pt --rise-guard on --restart on
done
# ---- tenth session: the fall hold (hpenv.hyperparams.FallHold) ----
# (the session ran the variants through docs/measurements/data/issue23-session10/experiment/
# fallhold*.py, monkeypatches of evaluate.py; the shipped --fall-hold on gives the same rows)
E=logs/exp23/ens6/make-train-mean-567.pt
sgdside() {  # OUT_DIR, then evaluate.py's options: training-side tasks with SGD, 1x and 30x
    local out=$1; shift
    evaluate $out --policy $E --rise-guard on --restart train --optimizer sgd \
        --tasks digits,wine,breast_cancer,synthetic --include-training-tasks --start-lr-factors 1,30 "$@"
}
sgdside logs/exp23/s10/ts/short-sgd --methods policy,static "${SHORT[@]}"
sgdside logs/exp23/s10/ts/full-sgd --methods policy,static
sgdside logs/exp23/s10/ts/short-sgd-fhbs --methods policy --fall-hold on "${SHORT[@]}"
sgdside logs/exp23/s10/ts/full-sgd-fhbs --methods policy --fall-hold on
side logs/exp23/s10/ts/short-adam $E --restart train "${SHORT[@]}"
side logs/exp23/s10/ts/short-adam-fhbs $E --restart train --fall-hold on "${SHORT[@]}"
side logs/exp23/s10/ts/full-adam $E --restart train
side logs/exp23/s10/ts/full-adam-fhbs $E --restart train --fall-hold on
# held out: make train's three ensembles, the two end-to-end make train runs, hpenv-lr-v2
for name in make-train-mean-567 make-train-mean-8910 make-train-mean-111213; do
    cells logs/exp23/s10/fhbs $name --methods policy --policy logs/exp23/ens6/$name.pt \
        --rise-guard on --restart train --fall-hold on
done
for run in mt0 mt100; do
    cells logs/exp23/s10/fhbs $run --methods policy --policy logs/exp23/s7/$run/policy.pt \
        --rise-guard on --restart train --fall-hold on
    evaluate logs/exp23/s10/base/eval-$run --methods policy --policy logs/exp23/s7/$run/policy.pt \
        --rise-guard on --restart train
    evaluate logs/exp23/s10/base/sgd-$run --methods policy --policy logs/exp23/s7/$run/policy.pt \
        --rise-guard on --restart train --optimizer sgd
done
cells logs/exp23/s10/fhbs hpenv-lr-v2 --methods policy --policy hpenv-lr-v2 --rise-guard on \
    --restart train --fall-hold on
# the rollback (--restart rollback) over the fall hold: the same policies, and v2
for name in make-train-mean-567 make-train-mean-8910 make-train-mean-111213; do
    cells logs/exp23/s10/rb $name --methods policy --policy logs/exp23/ens6/$name.pt \
        --rise-guard on --restart rollback --fall-hold on
done
for run in mt0 mt100; do
    cells logs/exp23/s10/rb $run --methods policy --policy logs/exp23/s7/$run/policy.pt \
        --rise-guard on --restart rollback --fall-hold on
done
cells logs/exp23/s10/rb hpenv-lr-v2 --methods policy --policy hpenv-lr-v2 --rise-guard on \
    --restart rollback --fall-hold on
# ---- eleventh session: the rollback of a collapse (--restart collapse) ----
# (the session ran the rules through docs/measurements/data/issue23-session11/experiment/
# collapse*.py and cut3.py, monkeypatches of evaluate.py; the shipped --restart collapse gives
# collapse2.py's rows)
sgdside logs/exp23/s11/ts/short-sgd-collapse --methods policy --restart collapse --fall-hold on "${SHORT[@]}"
sgdside logs/exp23/s11/ts/full-sgd-collapse --methods policy --restart collapse --fall-hold on
side logs/exp23/s11/ts/short-adam-collapse $E --restart collapse --fall-hold on "${SHORT[@]}"
side logs/exp23/s11/ts/full-adam-collapse $E --restart collapse --fall-hold on
for name in make-train-mean-567 make-train-mean-8910 make-train-mean-111213; do
    cells logs/exp23/s11/collapse $name --methods policy --policy logs/exp23/ens6/$name.pt \
        --rise-guard on --restart collapse --fall-hold on
done
for run in mt0 mt100; do
    cells logs/exp23/s11/collapse $run --methods policy --policy logs/exp23/s7/$run/policy.pt \
        --rise-guard on --restart collapse --fall-hold on
done
cells logs/exp23/s11/collapse hpenv-lr-v2 --methods policy --policy hpenv-lr-v2 --rise-guard on \
    --restart collapse --fall-hold on
# ---- twelfth session: hpenv-lr-v2.1 (the default) against hpenv-lr-v2, same cells ----
cells logs/exp23/s12 v2 --methods policy --policy hpenv-lr-v2
cells logs/exp23/s12 v21 --methods policy --policy hpenv-lr-v2.1
# the fall-hold rules over v2.1 ran through docs/measurements/data/issue23-session12/experiment/
# (patience.py, unlearned.py, with its ts.sh and held.sh), monkeypatches of evaluate.py, not
# shipped; make train's ensemble {5,6,7} was rebuilt from retrained seeds:
for s in 5 6 7; do python scripts/train_agent.py --seed $s --out-dir logs/exp23/s12/members/s$s; done
python scripts/ensemble_policy.py --out logs/exp23/s12/members/mean-567.pt --rise-guard on \
    --restart collapse --fall-hold on --policies \
    logs/exp23/s12/members/s5/best_policy.pt,logs/exp23/s12/members/s6/best_policy.pt,logs/exp23/s12/members/s7/best_policy.pt
# every task given a test split (half its validation split), a prototype: splitval.py wraps the
# data loader; its own cache so the tasks' processed data is not replaced
SPLIT=docs/measurements/data/issue23-session12/experiment/splitval.py
export HPENV_CACHE_DIR=/tmp/hpenv-splitcache
python $SPLIT --methods grid --data-dir ~/data --out-dir logs/exp23/s12/split/grid
python $SPLIT --methods static,cosine,prodigy,schedulefree --data-dir ~/data --out-dir logs/exp23/s12/split/base
python $SPLIT --methods policy --policy hpenv-lr-v2.1 --data-dir ~/data --out-dir logs/exp23/s12/split/v21
python $SPLIT --methods policy --policy hpenv-lr-v2 --data-dir ~/data --out-dir logs/exp23/s12/split/v2
unset HPENV_CACHE_DIR
# ---- thirteenth session: make train with five members (bar 5) ----
# three real runs of the new command (members 5-9, 10-14, 15-19), each paired with its first
# three members; 24 random sub-ensembles of the pool at 1x
# (docs/measurements/data/issue23-session13/: x5.sh, qa.sh, qb.sh, draws.py, pool.sh)
for s in 5 10 15; do
    python scripts/train_agent.py --ensemble 5 --seed $s --deploy-rise-guard on \
        --deploy-restart collapse --deploy-fall-hold on --out-dir logs/exp23/s13/x5-$s
    cells logs/exp23/s13 x5-$s --methods policy --policy logs/exp23/s13/x5-$s/policy.pt
done
python scripts/ensemble_policy.py --out logs/exp23/s13/x3-151617.pt --rise-guard on \
    --restart collapse --fall-hold on --policies \
    logs/exp23/s13/x5-15/s15/best_policy.pt,logs/exp23/s13/x5-15/s16/best_policy.pt,logs/exp23/s13/x5-15/s17/best_policy.pt
cells logs/exp23/s13 x3-151617 --methods policy --policy logs/exp23/s13/x3-151617.pt

# ---- fourteenth session: make train with five members of 4,800 agent steps (bar 5) ----
# the same seeds as the thirteenth session, members cut to 4,800 steps; the thirteenth session's
# five-member draws rebuilt from them at 1x (docs/measurements/data/issue23-session14/:
# queue.sh, calling ../issue23-session13/x5.sh; ../issue23-session13/pool.sh with S=logs/exp23/s14 RUN=x5s ONLY=r5-)
for s in 5 10 15; do
    python scripts/train_agent.py --ensemble 5 --total-steps 4800 --seed $s --deploy-rise-guard on \
        --deploy-restart collapse --deploy-fall-hold on --out-dir logs/exp23/s14/x5s-$s
    cells logs/exp23/s14 x5s-$s --methods policy --policy logs/exp23/s14/x5s-$s/policy.pt
done

# ---- fifteenth session: two meta-training levers over make train (neither adopted) ----
# the fourteenth session's seeds with the user's optimizer drawn per episode (x5opt) and with the
# fall hold inside the episodes (x5fh) (docs/measurements/data/issue23-session15/README.md:
# ../issue23-session14/queue.sh with S, ROOT, RUN and FLAGS)
for s in 5 10 15; do
    for lever in "x5opt --optimizers adam,adamw,sgd --synthetic-optimizers adam,adamw,sgd" "x5fh --fall-hold"; do
        set -- $lever; run=$1; shift
        python scripts/train_agent.py --ensemble 5 --total-steps 4800 --seed $s --deploy-rise-guard on \
            --deploy-restart collapse --deploy-fall-hold on --out-dir logs/exp23/s15/$run-$s "$@"
        cells logs/exp23/s15 $run-$s --methods policy --policy logs/exp23/s15/$run-$s/policy.pt
    done
done
