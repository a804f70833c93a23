"""The fall hold (hpenv.hyperparams.FallHold): a layout-1 policy's rate does not fall below
the run's start while the validation loss still improves on its best; the rule, the file's
setting, and the drivers (the harness and the job driver through `PolicyStep`)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from policies import make_policy
from test_restart import controller_beside_harness

from agents.deploy.drive import DriveConfig, drive_task
from agents.evaluation.methods.core import RunSpec
from agents.evaluation.methods.policy import PolicyMethod
from agents.policy.artifact import PolicyLoadError, load_policy
from agents.policy.step import PolicyStep
from hpenv.errors import InputError
from hpenv.hyperparams import FALL_HOLD_THRESHOLD, FallHold
from hpenv.observation import IntervalMetrics
from hpenv.plan import Fidelity


def test_the_rule_holds_a_fall_at_or_below_the_start_while_the_loss_makes_a_new_best():
    hold = FallHold(0.01)
    hold.reset(val_loss=2.3, lr=0.05)

    def step(action, val_loss, lr=0.05, tuned=("lr",), mode="continuous"):
        return hold.filter(tuned, mode, action, val_loss, lr).tolist()

    assert step([-0.7], 2.0) == [0.0]  # 2.3 -> 2.0: a new best, at the start rate: held
    assert step([0.5], 1.9) == [0.5]  # a rise is not the hold's business
    assert step([-0.7], 1.95) == [-0.7]  # above the best (1.9): the fall goes through
    assert step([-0.7], 1.895) == [-0.7]  # a new best by less than 1%
    assert step([-0.7], 1.0, lr=0.06) == [-0.7]  # above the start: never held
    assert step([2, 0], 0.5, tuned=("momentum", "lr"), mode="discrete") == [2, 1]
    assert step([-0.7], math.nan) == [-0.7]  # NaN never improves
    assert hold.held == 2
    resumed = FallHold(0.01)
    resumed.load_state_dict(hold.state_dict())
    assert resumed.state_dict() == hold.state_dict()
    assert resumed.filter(("lr",), "continuous", [-0.5], 0.4, 0.05).tolist() == [0.0]
    hold.reset(val_loss=2.3, lr=0.005)  # a restart: its own start, the count goes on
    assert (hold.best, hold.start_lr, hold.held) == (2.3, 0.005, 2)


@pytest.mark.parametrize("threshold", [-0.01, math.inf, math.nan, True, "0.01"])
def test_bad_thresholds_are_refused(threshold):
    with pytest.raises(ValueError, match="threshold"):
        FallHold(threshold)


def test_the_policy_file_carries_the_fall_hold(tmp_path: Path):
    policy = make_policy(decisions=4)
    on = policy.with_deploy_flags(fall_hold="on")
    assert on.metadata.fall_hold == FALL_HOLD_THRESHOLD
    assert policy.metadata.fall_hold is None
    assert on.fingerprint() != policy.fingerprint()
    assert on.with_fall_hold(0.05).fingerprint() != on.fingerprint()
    assert policy.with_fall_hold(False).fingerprint() == policy.fingerprint()  # absent: as before
    assert on.with_deploy_flags(fall_hold="off").metadata.fall_hold is None
    path = on.save(tmp_path / "p.pt")
    assert load_policy(path).metadata.fall_hold == FALL_HOLD_THRESHOLD
    assert load_policy(path).fingerprint() == on.fingerprint()
    with pytest.raises(ValueError, match="--fall-hold"):
        policy.with_deploy_flags(fall_hold="sometimes")
    with pytest.raises(InputError, match="threshold"):
        policy.with_fall_hold(-1.0)
    with pytest.raises(InputError, match="layout 2"):
        make_policy(decisions=4, obs_version=2).with_fall_hold(True)
    policy._deployed(fall_hold="often").save(tmp_path / "broken.pt")
    with pytest.raises(PolicyLoadError, match="unreadable probe, restart or fall-hold settings"):
        load_policy(tmp_path / "broken.pt")


def _spec(optimizer=None):
    # digits, one epoch (45 steps), 4 decisions: at the default rate the loss falls steadily
    return RunSpec("digits", 1, fidelity=Fidelity(budget_epochs=1.0), decisions=4,
                   optimizer=optimizer)  # fmt: skip


def test_a_policy_that_always_lowers_keeps_its_start_while_the_loss_improves(tmp_path: Path):
    """The harness: a policy that lowers the rate at every decision (x1/3) keeps the start
    rate at every decision whose validation loss is a new best by more than 1% with the fall
    hold, and ends higher than without it; the job driver makes the same run."""
    lowers = make_policy(decisions=4, action_bias=-50.0)
    plain = PolicyMethod(lowers).run(_spec())
    held = PolicyMethod(lowers.with_fall_hold(True)).run(_spec())
    assert [p["lr"] for p in plain.trajectory[2:]] == pytest.approx(
        [plain.trajectory[1]["lr"] / 3**k for k in (1, 2, 3, 4)]
    )
    start = held.trajectory[0]["lr"]
    best = held.trajectory[0]["val_loss"]
    for before, after in zip(held.trajectory[1:], held.trajectory[2:], strict=False):
        improved = math.log(best / before["val_loss"]) > FALL_HOLD_THRESHOLD
        best = min(best, before["val_loss"])
        kept = before["lr"] <= start * (1 + 1e-9) and improved
        assert after["lr"] == pytest.approx(before["lr"] if kept else before["lr"] / 3)
    assert held.trajectory[2]["lr"] == pytest.approx(start)  # the first decision was held
    assert held.trajectory[-1]["lr"] > plain.trajectory[-1]["lr"]
    config = DriveConfig(task="digits", out_dir=str(tmp_path / "job"), epochs=1.0,
                         device="cpu", seed=1)  # fmt: skip
    job = drive_task(config, lowers.with_fall_hold(True))
    assert job["val_loss"] == pytest.approx(held.val_loss, rel=1e-9)


def test_the_controller_holds_as_the_harness_does():
    """`HyperController` on a plain loop: the same rates and end as the harness's policy
    method, and its decision log counts the holds (``falls_held``)."""
    policy = make_policy(decisions=4, action_bias=-50.0).with_fall_hold(True)
    harness, run, controller = controller_beside_harness(policy)
    run.train(harness.samples)
    decided = controller.history[1:]
    assert [h["lr"] for h in decided] == pytest.approx(
        [p["lr"] for p in harness.trajectory[2:]], rel=1e-9
    )
    assert decided[-1]["falls_held"] >= 1
    assert run.evaluate().loss == pytest.approx(harness.val_loss, rel=1e-6)


def test_the_step_resumes_its_fall_hold():
    """`PolicyStep.state_dict` carries the hold (the job driver's and the controller's
    checkpoints): a resumed step decides as the one that went on."""
    from hpenv.hyperparams import HParams

    policy = make_policy(decisions=4, action_bias=-50.0).with_fall_hold(True)
    hparams = HParams(lr=0.05)

    def metrics(val_loss, lr):
        return IntervalMetrics(
            progress=0.5, train_loss=val_loss, train_loss_std=0.1, grad_norm=1.0,
            update_ratio=1e-3, val_loss=val_loss, val_accuracy=0.5, hparams=hparams.replace(lr=lr),
        )  # fmt: skip

    step = PolicyStep(policy)
    step.start(2.3, 0.1, hparams)
    assert step.decide(metrics(2.0, 0.05)).lr == pytest.approx(0.05)  # held
    assert step.log_values()["falls_held"] == 1
    resumed = PolicyStep(policy)
    resumed.start(2.3, 0.1, hparams)
    resumed.load_state_dict(step.state_dict())
    for each in (step, resumed):
        assert each.decide(metrics(1.5, 0.05)).lr == pytest.approx(0.05)
        assert each.decide(metrics(1.6, 0.05)).lr == pytest.approx(0.05 / 3)
