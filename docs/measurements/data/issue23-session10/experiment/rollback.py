"""Experiment (not shipped): scripts/evaluate.py with a 'rollback' in the harness's interval loop.

For runs deployed with a restart (a policy's): each new best validation loss keeps a copy of the
run's state and the rate that interval trained with; a later interval whose validation loss is
above the untrained model's x1.1, or that diverged, puts that copy back and sets the rate to that
rate / 10 (the interval's samples stay spent; no decision on it; the policy's episode goes on).
Two rollbacks per run at most. Built by rewriting agents.evaluation.methods.core._train_group's
source (the current code plus the rule), so everything else is the shipped loop."""

import inspect
import runpy
import sys
import textwrap

import agents.evaluation.methods.core as core

src = textwrap.dedent(inspect.getsource(core._train_group))


def sub(a, b):
    global src
    assert src.count(a) == 1, a
    src = src.replace(a, b)


sub(
    """    restarted: set[int] = set()  # this interval: back at the start, no decision
""",
    """    restarted: set[int] = set()  # this interval: back at the start, no decision
    best_loss = [first[i].loss for i in everyone]
    best_state: dict[int, Any] = {}
    rollbacks = [0] * n

    def rollback(i: int, diverged: bool, loss: float) -> bool:
        if i not in restarts or rollbacks[i] >= 2 or i not in best_state:
            return False
        if not diverged and not loss > first[i].loss * 1.1:
            return False
        state, lr = best_state[i]
        group.restore(state, i)
        views[i].set_hparams(lr=max(lr / 10, 1e-6))
        rollbacks[i] += 1
        restarted.add(i)
        return True
""",
)
sub(
    """restart(i, True, math.nan, math.nan):""",
    """(restart(i, True, math.nan, math.nan) or rollback(i, True, math.nan)):""",
)
sub(
    """            if view.samples_done >= budget:
                live[i] = False
            elif i in restarted or restart(i, False, evaluation.loss, stats[i].loss_mean):""",
    """            trained_lr = view.hparams.lr
            if view.samples_done >= budget:
                live[i] = False
            elif (i in restarted or restart(i, False, evaluation.loss, stats[i].loss_mean)
                  or rollback(i, False, evaluation.loss)):""",
)
sub(
    """                changes = runs[i].adjust(report)  # type: ignore[misc]
                if changes:
                    view.set_hparams(**changes)
""",
    """                changes = runs[i].adjust(report)  # type: ignore[misc]
                if changes:
                    view.set_hparams(**changes)
            if (i in restarts and i not in restarted and live[i]
                    and math.isfinite(evaluation.loss) and evaluation.loss < best_loss[i]):
                best_loss[i] = evaluation.loss
                best_state[i] = (group.snapshot([i]), trained_lr)
""",
)
namespace = dict(vars(core))
exec(compile(src, "<rollback _train_group>", "exec"), namespace)
core._train_group = namespace["_train_group"]
sys.argv = ["scripts/evaluate.py", *sys.argv[1:]]
runpy.run_path("scripts/evaluate.py", run_name="__main__")
