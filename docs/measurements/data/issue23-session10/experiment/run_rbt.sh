#!/bin/bash
# usage: run_rbt.sh NAME POLICY: held-out SGD with the rollback also reading the training loss (prototype)
source /work/main/.venv/bin/activate; cd /work/main
export OMP_NUM_THREADS=1 HPENV_NO_HUB=1
python logs/exp23/s10/rollback_train.py --methods policy --policy $2 --rise-guard on --restart rollback --fall-hold on --optimizer sgd --data-dir /work/shared/datasets --out-dir logs/exp23/s10/rbt/sgd-$1 > logs/exp23/s10/rbt-sgd-$1.log 2>&1
