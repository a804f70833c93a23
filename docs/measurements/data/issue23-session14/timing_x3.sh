#!/bin/bash
# make train's previous command (three members of 8,000 agent steps) timed alone, the same day as
# the five-member command of 4,800 steps (`/usr/bin/time -v make train` at the new Makefile), from the
# frozen copy of 64df9fe in /work/s14b (the command its Makefile ran)
cd /work/s14b
export PYTHONPATH=/work/s14b
/usr/bin/time -v /work/main/.venv/bin/python scripts/train_agent.py --ensemble 3 --deploy-rise-guard on \
  --deploy-restart collapse --deploy-fall-hold on --out-dir /work/main/logs/exp23/s14/x3-timed
