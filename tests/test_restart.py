"""The restart (hpenv.restart): a first interval that blows up starts again from the start,
lower, in the harness (one run and population members alike), the job driver and the file."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
from policies import make_policy, raising_with_rollback
from test_batched_harness import _same_rows

from agents.deploy.drive import DriveConfig, drive_task
from agents.evaluation.methods.core import CellRun, RunSpec, train_runs
from agents.evaluation.methods.policy import PolicyMethod
from agents.policy.artifact import PolicyLoadError, load_policy
from hpenv.plan import Fidelity
from hpenv.restart import RestartConfig, Restarts

#: digits, one epoch (45 steps), 4 decisions: started 300x too high (Adam at 0.3) the first
#: interval blows the validation loss up (2.31 -> 3.11); started right, it falls.
FIDELITY = Fidelity(budget_epochs=1.0)


def _runs(policy, factors=(1.0, 300.0)):
    method = PolicyMethod(policy)
    made = []
    for factor in factors:
        spec = RunSpec("digits", 1, fidelity=FIDELITY, decisions=4, start_lr_factor=factor)
        made += method.runs(spec)
    return made


def test_the_rule_restarts_a_blown_first_interval_only():
    restarts = Restarts(RestartConfig(tolerance=0.1, cut=10, most=2))
    assert not restarts.after_interval(2.0, 2.3)  # fell: fine, and never again after it
    assert not restarts.after_interval(50.0, 2.3)
    restarts = Restarts(RestartConfig(most=2))
    assert restarts.after_interval(2.6, 2.3)  # above 2.3 x 1.1
    assert restarts.lr(0.3) == pytest.approx(0.03)
    assert restarts.after_interval(float("nan"), 2.3)  # the first interval since the restart
    assert not restarts.after_interval(9.0, 2.3, diverged=True)  # two at most
    assert restarts.count == 2
    assert Restarts(RestartConfig()).after_interval(1.0, 2.3, diverged=True)
    # A run at chance whose training loss climbed: seen only when the training loss is read.
    assert not Restarts(RestartConfig()).after_interval(2.3, 2.3, train_loss=40.0)
    assert Restarts(RestartConfig(train_loss=True)).after_interval(2.3, 2.3, train_loss=40.0)
    assert "train_loss" not in RestartConfig().to_dict()  # off: as files before it read
    assert RestartConfig.from_dict(RestartConfig(train_loss=True).to_dict()).train_loss
    assert Restarts(RestartConfig()).lr(1e-6) == pytest.approx(1e-6)  # the range's floor


@pytest.mark.parametrize(
    "values",
    [{"tolerance": -0.1}, {"cut": 1.0}, {"cut": float("inf")}, {"most": 0}, {"most": True}],
)
def test_bad_restart_settings_are_refused(values):
    with pytest.raises(ValueError, match=next(iter(values))):
        RestartConfig(**values)
    with pytest.raises(ValueError, match="a restart is a mapping"):
        RestartConfig.from_dict({"sideways": 1})


@pytest.mark.parametrize("engine", ["sequential", "population"])
def test_a_run_that_blew_up_restarts_from_its_start_lower(engine):
    """Started 300x too high: the first interval blows up, the run goes back to its
    untrained weights at the rate / 10 (its samples spent, no decision on it) and ends far
    better; started right nothing changes. One run at a time = population members."""
    policy = make_policy(decisions=4)
    rows = train_runs(_runs(policy.with_restart(True)), engine=engine)
    plain = train_runs(_runs(policy), engine=engine)
    _same_rows(rows[:1], plain[:1])  # started right: the same run
    restarted, blown = rows[1], plain[1]
    assert restarted.trajectory[1]["val_loss"] > 1.1 * restarted.trajectory[0]["val_loss"]
    assert restarted.trajectory[1]["lr"] == pytest.approx(0.3)
    assert restarted.trajectory[2]["lr"] == pytest.approx(0.03)  # restarted lower
    assert restarted.trajectory[2]["val_loss"] < 1.5  # from the untrained weights, not 3.11
    assert restarted.samples == blown.samples == 1438  # the budget, the blown interval in it
    assert restarted.val_accuracy > blown.val_accuracy + 0.05
    if engine == "population":
        _same_rows(rows, train_runs(_runs(policy.with_restart(True))))


def test_the_job_driver_restarts_as_the_harness_does(tmp_path: Path):
    """`run_policy.py --restart on`: the job's decisions and end are the harness's, the
    restart is in the decision log, and a resumed job keeps its restart state."""
    policy = make_policy(decisions=4)
    config = DriveConfig(task="digits", out_dir=str(tmp_path / "job"), epochs=1.0, device="cpu",
                         seed=1, lr=0.3, restart="on")  # fmt: skip
    with pytest.warns(RuntimeWarning, match="blew up"):
        job = drive_task(config, policy)
    (cell,) = train_runs(_runs(policy.with_restart(True), factors=(300.0,)))
    assert job["val_loss"] == pytest.approx(cell.val_loss, rel=1e-9)
    assert [h.get("restarts") for h in job["trajectory"]][:2] == [None, 1.0]
    saved = json.loads((tmp_path / "job" / "config.json").read_text())
    assert saved["restart"] == "on"


def test_the_restart_is_a_fingerprinted_deployment_setting(tmp_path: Path):
    policy = make_policy(decisions=4)
    on = policy.with_deploy_flags(restart="on")
    assert on.metadata.restart == RestartConfig()
    assert policy.metadata.restart is None
    assert on.fingerprint() != policy.fingerprint()
    assert policy.with_restart(False).fingerprint() == policy.fingerprint()  # absent: as before
    path = on.save(tmp_path / "p.pt")
    assert load_policy(path).metadata.restart == RestartConfig()
    assert load_policy(path).fingerprint() == on.fingerprint()
    train = policy.with_deploy_flags(restart="train")
    assert train.metadata.restart == RestartConfig(train_loss=True)
    assert train.fingerprint() not in (on.fingerprint(), policy.fingerprint())
    with pytest.raises(ValueError, match="--restart"):
        policy.with_deploy_flags(restart="sometimes")
    broken = policy._deployed(restart={"cut": 0.5})
    broken.save(tmp_path / "broken.pt")
    with pytest.raises(PolicyLoadError, match="unreadable probe, restart or fall-hold settings"):
        load_policy(tmp_path / "broken.pt")


def controller_beside_harness(policy, start_lr_factor: float = 1.0):
    """The harness's policy run on a digits cell (45 full batches, 4 decisions) and, for the
    same cell, a plain loop's `TrainingRun` with a `HyperController` attached (weights reached
    through the optimizer's groups), not trained yet: (the harness's result, run, controller)."""
    from agents.deploy.controller import HyperController
    from hpenv.tasks import get_task
    from hpenv.training import TrainingRun

    # 45 full batches (1440 samples), so the controller's progress (steps) is the harness's
    spec = RunSpec("digits", 1, fidelity=Fidelity(budget=45 * 32), decisions=4, val_size=0,
                   start_lr_factor=start_lr_factor)  # fmt: skip
    harness = PolicyMethod(policy).run(spec)
    run = TrainingRun(get_task("digits"), seed=1, device="cpu", val_size=0)
    run.set_hparams(lr=spec.start_hparams().lr)

    def evaluate() -> tuple[float, float]:
        result = run.evaluate()
        return result.loss, result.accuracy

    controller = HyperController(policy, run.optimizer, total_steps=45, evaluate=evaluate,
                                 batch_size=32)  # fmt: skip
    run.loss_hooks.append(controller.report_loss)
    return harness, run, controller


def test_the_controller_restarts_as_the_harness_does():
    """`HyperController` on a plain loop's optimizer (weights reached through its groups):
    the same restart, the same rates and end as the harness's policy method."""
    policy = make_policy(decisions=4).with_restart(True)
    harness, run, controller = controller_beside_harness(policy, start_lr_factor=300.0)
    with pytest.warns(RuntimeWarning, match="blew up"):
        run.train(harness.samples)
    assert controller.restarts is not None
    assert controller.restarts.count == 1
    # The log: the start, the restart (its new rate), then the decisions; the harness's
    # trajectory holds the rate each interval trained with.
    start, restart, *decided = controller.history
    assert (start["lr"], restart["restarts"], restart["lr"]) == (0.3, 1.0, pytest.approx(0.03))
    trained = [p["lr"] for p in harness.trajectory[1:]]
    assert trained[:2] == pytest.approx([0.3, 0.03])
    assert [h["lr"] for h in decided] == pytest.approx(trained[2:], rel=1e-9)
    assert run.evaluate().loss == pytest.approx(harness.val_loss, rel=1e-6)


def test_a_layout_2_run_steers_around_the_cut_base_after_a_restart():
    """A layout-2 policy from 300x too high (too short a run for a probe: its base is the
    rate that blew up): after the restart the decisions steer around the base / 10 (the
    residual follows the cut, `hpenv.base.ResidualRate.follow`), not back to the base;
    `HyperController` decides as the harness does."""
    from hpenv.base import BaseConfig

    policy = make_policy(decisions=4, obs_version=2).with_restart(True)
    (row,) = train_runs(_runs(policy, factors=(300.0,)))
    rates = [p["lr"] for p in row.trajectory]
    assert rates[:3] == pytest.approx([0.3, 0.3, 0.03])  # restarted at 0.3 / 10
    base = BaseConfig().schedule(None, 0.3, 0.0)
    decided_at = row.trajectory[2]["progress"]  # the first decision, one offset step (x3)
    assert base.lr(decided_at) / 30 <= rates[3] <= base.lr(decided_at) * 3 / 10
    with pytest.warns(RuntimeWarning, match="too short for the probe"):
        harness, run, controller = controller_beside_harness(policy, start_lr_factor=300.0)
    with pytest.warns(RuntimeWarning, match="blew up"):
        run.train(harness.samples)
    trained = [p["lr"] for p in harness.trajectory[1:]]
    assert [h["lr"] for h in controller.history[2:]] == pytest.approx(trained[2:], rel=1e-9)
    assert run.evaluate().loss == pytest.approx(harness.val_loss, rel=1e-6)


def test_a_restart_after_a_probe_goes_back_to_the_untrained_weights(tmp_path: Path):
    """A probe rolled back to its best point leaves trained weights; a restart still goes
    back to the untrained ones (here the first interval diverges: the run is evaluated right
    after the restart, at the untrained model's loss), one run or a population member alike,
    and the job driver restarts the same way."""
    from dataclasses import asdict

    from hpenv.base import ProbeStart
    from hpenv.probe import ProbeConfig

    policy = make_policy(decisions=4).with_probe_start(ProbeStart(within=1000.0))  # keeps 0.3
    probe = ProbeConfig(min_steps=5, max_steps=5)  # rolled back to its best point
    policy = policy.with_restart(True)._deployed(probe=asdict(probe))
    runs = [train_runs(_runs(policy, factors=(300.0,)), engine=e)[0]
            for e in ("sequential", "population")]  # fmt: skip
    _same_rows(runs[:1], runs[1:])
    row = runs[0]
    assert row.extra["probe"]["kept"] > 0  # the probe trained the weights it kept
    untrained, restarted = row.trajectory[:2]
    assert restarted["lr"] == pytest.approx(0.03)
    assert restarted["val_loss"] == pytest.approx(untrained["val_loss"], rel=1e-6)
    config = DriveConfig(task="digits", out_dir=str(tmp_path / "job"), epochs=1.0,
                         device="cpu", seed=1, lr=0.3)  # fmt: skip
    with pytest.warns(RuntimeWarning, match="blew up"):
        job = drive_task(config, policy)
    assert job["val_loss"] == pytest.approx(row.val_loss, rel=1e-9)


def test_a_run_whose_probe_set_its_rate_does_not_restart():
    """`Restarts.after_probe`: after a probe that moved the run's rate (`rate_after_probe`)
    the first interval does not restart, even blown up (here the probe's step sets 0.3 on
    digits, and the first interval diverges); a probe that left the rate alone keeps the
    restart (started at 0.3 itself). One run and a population member alike."""
    from hpenv.probe import ProbeConfig

    rule = Restarts(RestartConfig())
    assert not rule.after_probe(1e-3, None)  # the probe kept the rate
    assert not rule.after_probe(1e-3, 1e-3)
    assert not rule.over
    assert rule.after_probe(1e-3, 3e-4)
    assert rule.over
    assert not rule.after_interval(10.0, 2.3)  # blown up, but the probe set the rate
    probe = ProbeConfig(min_steps=5, max_steps=5)

    def cell(factor: float, moves: bool):
        spec = RunSpec("digits", 1, fidelity=FIDELITY, decisions=4, start_lr_factor=factor)
        return CellRun(spec, spec.start_hparams(), method="moved" if moves else "kept",
                       probe=probe, after_probe=lambda found, plan: {"lr": 0.3} if moves else {},
                       restart=RestartConfig())  # fmt: skip

    for engine in ("sequential", "population"):
        moved, kept = train_runs([cell(1.0, True), cell(300.0, False)], engine=engine)
        # blown up (here diverged) and not restarted: the rate the probe set stays
        assert moved.diverged
        assert [p["lr"] for p in moved.trajectory[1:]] == pytest.approx([0.3])
        assert not kept.diverged  # its first interval diverged too: restarted lower
        assert kept.trajectory[1]["lr"] == pytest.approx(0.03)
        assert kept.trajectory[1]["val_loss"] == pytest.approx(kept.trajectory[0]["val_loss"])


def test_the_job_driver_drops_the_restart_of_a_run_its_probe_set(tmp_path: Path):
    """The job driver (`agents.deploy.drive`): a layout-2 job whose probe anchored its base
    makes no restart (as the harness's run of the same cell); a job too short for a probe
    keeps it."""
    from agents.deploy.drive import _Job

    policy = make_policy(decisions=4, obs_version=2).with_restart(True)
    for epochs, probed in ((3.0, True), (1.0, False)):
        config = DriveConfig(task="digits", out_dir=str(tmp_path / f"job{epochs}"),
                             epochs=epochs, device="cpu", seed=1, lr=0.3)  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a short job's probe warning
            job = _Job(config, policy)
        assert job.base is not None
        assert job.base.probed == probed
        assert job.driver.restarts is not None
        assert job.driver.restarts.over == probed


def test_the_rollback_rule_goes_back_to_the_best_state_of_a_later_blow_up():
    restarts = Restarts(RestartConfig(rollback=True, most=2))
    assert not restarts.after_interval(2.0, 2.3)  # the first interval: fine
    assert not restarts.new_best(2.4, 0.01, initial_loss=2.3)  # above the untrained loss
    assert not restarts.after_later_interval(9.0, 2.3, diverged=False)  # no best state yet
    assert restarts.new_best(1.0, 0.03, initial_loss=2.3)
    assert not restarts.new_best(1.2, 0.09, initial_loss=2.3)
    assert not restarts.after_later_interval(2.5, 2.3, diverged=False)  # not above x1.1
    assert restarts.after_later_interval(2.6, 2.3, diverged=False)
    assert restarts.rollback_lr() == pytest.approx(0.003)  # the best interval's rate / 10
    assert restarts.after_later_interval(math.nan, 2.3, diverged=True)
    assert not restarts.after_later_interval(9.0, 2.3, diverged=True)  # two at most
    resumed = Restarts(RestartConfig(rollback=True))
    resumed.load_state_dict(restarts.state_dict())
    assert resumed.state_dict() == restarts.state_dict()
    resumed.load_state_dict({"count": 0, "since": 1})  # a state from before the rollback
    assert (resumed.rollbacks, resumed.best) == (0, math.inf)
    off = Restarts(RestartConfig())
    assert not off.new_best(1.0, 0.03, initial_loss=2.3)
    assert not off.after_later_interval(9.0, 2.3, diverged=True)
    assert "rollback" not in RestartConfig().to_dict()  # off: as files before it read
    assert RestartConfig.from_dict(RestartConfig(rollback=True).to_dict()).rollback
    with pytest.raises(ValueError, match="rollback"):
        RestartConfig(rollback=1)  # type: ignore[arg-type]


# `raising_with_rollback` (x3 at every decision, with the rollback): from 30x on digits (one
# epoch, 4 decisions) the fourth interval (at 0.81) blows the validation loss up (2.31 ->
# 4.25) after a best of 0.56 at 0.09 (on the controller's cell from 10x: the fourth interval,
# at 0.27).


def test_a_later_blow_up_rolls_back_in_the_harness_and_the_job_driver(tmp_path: Path):
    """The harness (one run and a population member alike) and the job driver go back to the
    best state at its rate / 10; the run ends well below the blow-up."""
    policy = raising_with_rollback()
    assert policy.metadata.restart == RestartConfig(train_loss=True, rollback=True)
    spec = RunSpec("digits", 1, fidelity=FIDELITY, decisions=4, start_lr_factor=30.0)
    rows = [train_runs(PolicyMethod(policy).runs(spec), engine=e)[0]
            for e in ("sequential", "population")]  # fmt: skip
    for row in rows:
        rates = [p["lr"] for p in row.trajectory]
        losses = [p["val_loss"] for p in row.trajectory]
        assert rates == pytest.approx([0.03, 0.03, 0.09, 0.27, 0.81, 0.009])
        assert losses[4] > 1.1 * losses[0]  # blew up, then back to the best (0.09's) state
        assert row.val_loss < min(losses[1:4])
    assert rows[1].val_loss == pytest.approx(rows[0].val_loss, rel=1e-3)
    config = DriveConfig(task="digits", out_dir=str(tmp_path / "job"), epochs=1.0,
                         device="cpu", seed=1, lr=0.03)  # fmt: skip
    with pytest.warns(RuntimeWarning, match="best state"):
        job = drive_task(config, policy)
    assert job["val_loss"] == pytest.approx(rows[0].val_loss, rel=1e-9)


def test_the_controller_rolls_back_as_the_harness_does():
    """`HyperController`: the same rollback, rates and end as the harness's policy method;
    its decision log records it (``rollbacks``)."""
    harness, run, controller = controller_beside_harness(
        raising_with_rollback(), start_lr_factor=10.0
    )
    with pytest.warns(RuntimeWarning, match="best state"):
        run.train(harness.samples)
    assert controller.restarts is not None
    assert controller.restarts.rollbacks == 1
    assert any(h.get("rollbacks") == 1.0 for h in controller.history)
    trained = [p["lr"] for p in harness.trajectory[1:]]
    assert controller.hparams.lr == pytest.approx(trained[-1])
    assert run.evaluate().loss == pytest.approx(harness.val_loss, rel=1e-6)


def test_a_resumed_job_rolls_back_like_an_uninterrupted_one(tmp_path: Path):
    """The best state travels with the job's checkpoint: a job interrupted after two intervals
    (its best state taken) rolls back after its fourth as the uninterrupted job does."""
    from test_drive import driver_interrupted_after

    policy = raising_with_rollback()

    def job(name: str, **extra) -> DriveConfig:
        return DriveConfig(task="digits", out_dir=str(tmp_path / name), epochs=1.0,
                           device="cpu", seed=1, lr=0.03, **extra)  # fmt: skip

    with pytest.warns(RuntimeWarning, match="best state"):
        full = drive_task(job("full"), policy)
    with driver_interrupted_after(2):
        drive_task(job("part"), policy)
    with pytest.warns(RuntimeWarning, match="best state"):
        resumed = drive_task(job("part", resume=True), policy)
    assert resumed["val_loss"] == pytest.approx(full["val_loss"], rel=1e-9)
    assert [h["lr"] for h in resumed["trajectory"]] == pytest.approx(
        [h["lr"] for h in full["trajectory"]]
    )


def test_the_collapse_rule_rolls_back_a_run_that_forgot_what_it_learned():
    restarts = Restarts(RestartConfig(rollback=True, collapse=True))
    assert not restarts.after_interval(1.5, 2.3)
    assert restarts.new_best(1.0, 0.05, initial_loss=2.3)  # learned: 1.0 <= 0.8 x 2.3
    # back at 1.0 + 0.9 x (2.3 - 1.0) = 2.17 or above, below the blow-up limit (2.53):
    assert not restarts.after_later_interval(2.25, 2.3, diverged=False, train_loss=0.3)  # overfit
    assert not restarts.after_later_interval(2.0, 2.3, diverged=False, train_loss=2.3)
    assert not restarts.after_later_interval(2.3, 2.3, diverged=False)  # no training loss read
    assert restarts.after_later_interval(2.3, 2.3, diverged=False, train_loss=2.29)
    assert restarts.collapsed
    assert restarts.rollback_lr() == pytest.approx(0.005)
    assert "collapsed" in restarts.rollback_message(2.3, 2.3, 0.005)
    assert restarts.after_later_interval(9.0, 2.3, diverged=False)  # a blow-up, as before
    assert not restarts.collapsed
    assert "blew up" in restarts.rollback_message(9.0, 2.3, 0.005)
    unlearned = Restarts(RestartConfig(rollback=True, collapse=True))
    unlearned.new_best(2.0, 0.05, initial_loss=2.3)  # 2.0 > 0.8 x 2.3: noise, not a collapse
    assert not unlearned.after_later_interval(2.3, 2.3, diverged=False, train_loss=2.3)
    plain = Restarts(RestartConfig(rollback=True))
    plain.new_best(1.0, 0.05, initial_loss=2.3)
    assert not plain.after_later_interval(2.3, 2.3, diverged=False, train_loss=2.3)
    assert "collapse" not in RestartConfig(rollback=True).to_dict()  # off: as files before it
    on = RestartConfig(train_loss=True, rollback=True, collapse=True)
    assert RestartConfig.from_dict(on.to_dict()) == on
    with pytest.raises(ValueError, match="needs rollback"):
        RestartConfig(collapse=True)


def test_the_drivers_read_a_collapse_alike(tmp_path: Path, monkeypatch):
    """The harness (one run and a population member), the job driver and `HyperController`
    each give the rule the interval's mean training loss: with the rule made to see a collapse
    in every later interval (``COLLAPSE_UNDONE`` -10), each rolls back twice, at the same
    intervals, and ends where the others end."""
    import hpenv.restart

    monkeypatch.setattr(hpenv.restart, "COLLAPSE_UNDONE", -10.0)
    policy = make_policy(decisions=4).with_deploy_flags(restart="collapse")
    assert policy.metadata.restart == RestartConfig(train_loss=True, rollback=True, collapse=True)
    spec = RunSpec("digits", 1, fidelity=FIDELITY, decisions=4, start_lr_factor=10.0)
    rows = [train_runs(PolicyMethod(policy).runs(spec), engine=e)[0]
            for e in ("sequential", "population")]  # fmt: skip
    rates = [p["lr"] for p in rows[0].trajectory]
    assert rates == pytest.approx([p["lr"] for p in rows[1].trajectory])
    # the second and third intervals roll back to the first's state, at its rate / 10
    assert rates[3:5] == pytest.approx([rates[1] / 10] * 2)
    assert rows[1].val_loss == pytest.approx(rows[0].val_loss, rel=1e-3)
    config = DriveConfig(task="digits", out_dir=str(tmp_path / "job"), epochs=1.0,
                         device="cpu", seed=1, lr=0.01)  # fmt: skip
    with pytest.warns(RuntimeWarning, match="collapsed"):
        job = drive_task(config, policy)
    assert [h.get("rollbacks") for h in job["trajectory"]] == [None, None, 1.0, 2.0, None]
    assert job["val_loss"] == pytest.approx(rows[0].val_loss, rel=1e-9)
    harness, run, controller = controller_beside_harness(policy, start_lr_factor=10.0)
    with pytest.warns(RuntimeWarning, match="collapsed"):
        run.train(harness.samples)
    assert controller.restarts is not None
    assert controller.restarts.rollbacks == 2
    assert run.evaluate().loss == pytest.approx(harness.val_loss, rel=1e-6)


def test_the_controllers_copy_of_the_run_lives_in_host_memory(monkeypatch):
    """Every copy the controller takes (at attach, at each new best) goes to
    `SNAPSHOT_DEVICE`, each tensor straight there (the optimizer's state too): asked for
    the ``meta`` device here (no GPU in CI), the copies hold meta tensors only."""
    import torch

    from agents.deploy import controller as controller_module
    from hpenv.probe import optimizer_snapshot

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(8, 3)).sum().backward()
    optimizer.step()
    copy = optimizer_snapshot(optimizer, model, device="meta")
    tensors = [*copy["params"], *copy["buffers"].values()]
    tensors += [t for s in copy["optimizer"]["state"].values() for t in s.values()]
    assert len(tensors) == 4 + 3 + 4 * 3  # weights, BatchNorm's buffers, Adam's 3 per weight
    assert all(t.device.type == "meta" for t in tensors)
    here = optimizer_snapshot(optimizer, model)  # beside the weights: copies, not views
    assert here["params"][0].data_ptr() != model[0].weight.data_ptr()

    devices: list[object] = []

    def recorded(*args, device=None):
        devices.append(device)
        return optimizer_snapshot(*args, device=device)

    monkeypatch.setattr(controller_module, "optimizer_snapshot", recorded)
    harness, run, _ = controller_beside_harness(raising_with_rollback(), start_lr_factor=10.0)
    with pytest.warns(RuntimeWarning, match="best state"):
        run.train(harness.samples)
    assert len(devices) >= 2  # at attach, then each new best
    assert set(devices) == {controller_module.SNAPSHOT_DEVICE} == {"cpu"}
