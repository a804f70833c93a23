"""Experiment (not shipped): the shipped rollback also reading the interval's mean training loss
(a later interval whose validation OR mean training loss is above the untrained model's
validation loss x1.1 rolls back), by rewriting agents.evaluation.methods.core._train_group's
source; run with the shipped --restart rollback."""

import inspect
import runpy
import sys
import textwrap

import agents.evaluation.methods.core as core

src = textwrap.dedent(inspect.getsource(core._train_group))
old = "or rollback(i, False, evaluation.loss)"
assert src.count(old) == 1
src = src.replace(old, "or rollback(i, False, max(evaluation.loss, stats[i].loss_mean))")
namespace = dict(vars(core))
exec(compile(src, "<rollback-train _train_group>", "exec"), namespace)
core._train_group = namespace["_train_group"]
sys.argv = ["scripts/evaluate.py", *sys.argv[1:]]
runpy.run_path("scripts/evaluate.py", run_name="__main__")
