"""HyperController: equivalence with HPTuneEnv, plain PyTorch loops, NaN, resume, refusals."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch
from policies import make_policy

from agents.deploy.controller import HyperController
from agents.policy import IncompatiblePolicyError
from hpenv.tasks import SyntheticSpec

SPEC = SyntheticSpec(input_dim=12, num_classes=3, num_samples=400, width=32, depth=1, seed=4)


def train_plain(controller: HyperController | None, optimizer, model, data, steps: int, bad=None):
    x, y = data
    for step in range(steps):
        index = torch.arange(step * 8, step * 8 + 8) % x.shape[0]
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
        loss.backward()
        if controller is not None:
            controller.report_loss(loss if bad is None or step < bad else loss * math.nan)
        optimizer.step()


def plain_setup(optimizer_cls=torch.optim.SGD, **kwargs):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    groups = [
        {"params": model[0].parameters(), "lr": 0.01},
        {"params": model[2].parameters(), "lr": 0.001},
    ]
    optimizer = optimizer_cls(groups, **kwargs)
    data = SPEC.generate()
    return model, optimizer, (data.train_x, data.train_y), (data.val_x, data.val_y)


def evaluator(model, val):
    def evaluate():
        with torch.no_grad():
            out = model(val[0])
            return float(torch.nn.functional.cross_entropy(out, val[1])), float(
                (out.argmax(1) == val[1]).float().mean()
            )

    return evaluate


@pytest.mark.parametrize(
    ("optimizer_cls", "kwargs"),
    [(torch.optim.SGD, {"momentum": 0.9}), (torch.optim.AdamW, {"weight_decay": 0.01})],
)
def test_plain_pytorch_loop_keeps_group_ratios(optimizer_cls, kwargs, tmp_path: Path):
    model, optimizer, train, val = plain_setup(optimizer_cls, **kwargs)
    controller = HyperController(make_policy(("lr", "momentum", "weight_decay")), optimizer,
                                 total_steps=50, evaluate=evaluator(model, val),
                                 log_dir=tmp_path / "tb")  # fmt: skip
    train_plain(controller, optimizer, model, train, 50)
    groups = optimizer.param_groups
    assert len(controller.history) == 5  # initial + 4 decisions
    assert groups[0]["lr"] == pytest.approx(controller.hparams.lr)
    assert groups[1]["lr"] / groups[0]["lr"] == pytest.approx(0.1)
    assert groups[0]["lr"] != pytest.approx(0.01)
    if "betas" in groups[0]:
        assert groups[0]["betas"][0] == pytest.approx(controller.hparams.momentum)
    else:
        assert groups[0]["momentum"] == pytest.approx(controller.hparams.momentum)
    controller.detach()
    assert list((tmp_path / "tb").glob("events.out.tfevents*"))


def test_closure_steps_read_this_steps_gradients():
    """``optimizer.step(closure)`` (LBFGS, Lightning) computes the gradients inside the
    step: the controller must read them after the closure, as in a plain loop."""
    policy = make_policy()
    histories = []
    for use_closure in (False, True):
        model, optimizer, (x, y), val = plain_setup(momentum=0.9)
        controller = HyperController(policy, optimizer, total_steps=40, decisions=3, batch_size=8,
                                     evaluate=evaluator(model, val))  # fmt: skip

        def closure(index, model=model, optimizer=optimizer, controller=controller, x=x, y=y):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
            loss.backward()
            controller.report_loss(loss)
            return loss

        for step in range(40):
            index = torch.arange(step * 8, step * 8 + 8) % x.shape[0]
            if use_closure:
                optimizer.step(lambda index=index: closure(index))
            else:
                closure(index)
                optimizer.step()
        histories.append(controller.history[1:])
    plain, closured = ([h[key] for h in hs for key in ("grad_norm", "lr")] for hs in histories)
    assert closured == pytest.approx(plain, rel=1e-12)


def test_manual_validation_reports():
    model, optimizer, train, val = plain_setup()
    controller = HyperController(
        make_policy(), optimizer, total_steps=20, decisions=3, batch_size=8
    )
    with pytest.raises(RuntimeError, match="initial validation"):
        train_plain(controller, optimizer, model, train, 5)
    model, optimizer, train, val = plain_setup()
    controller = HyperController(
        make_policy(), optimizer, total_steps=20, decisions=3, batch_size=8
    )
    controller.report_validation(*evaluator(model, val)())
    with pytest.raises(RuntimeError, match="report_validation"):
        train_plain(controller, optimizer, model, train, 5)


def test_nan_losses_never_reach_the_optimizer():
    model, optimizer, train, val = plain_setup()
    controller = HyperController(make_policy(), optimizer, total_steps=40, decisions=3,
                                 batch_size=8, evaluate=evaluator(model, val))  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_plain(controller, optimizer, model, train, 40, bad=15)
    assert controller.diverged
    assert sum("diverged" in str(w.message) for w in caught) == 1
    for group in optimizer.param_groups:
        assert math.isfinite(group["lr"])
        assert math.isfinite(group["momentum"])
    lr_after = optimizer.param_groups[0]["lr"]
    assert lr_after == pytest.approx(controller.hparams.lr)


def test_state_dict_resume_gives_the_same_decisions():
    policy = make_policy()
    model, optimizer, train, val = plain_setup()
    full = HyperController(policy, optimizer, total_steps=40, decisions=3, batch_size=8,
                           evaluate=evaluator(model, val))  # fmt: skip
    train_plain(full, optimizer, model, train, 40)

    model, optimizer, train, val = plain_setup()
    first = HyperController(policy, optimizer, total_steps=40, decisions=3, batch_size=8,
                            evaluate=evaluator(model, val))  # fmt: skip
    train_plain(first, optimizer, model, train, 20)
    saved = {"controller": first.state_dict(), "optimizer": optimizer.state_dict(),
             "model": model.state_dict()}  # fmt: skip
    first.detach()

    model, optimizer, train_data, val = plain_setup()
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    resumed = HyperController(policy, optimizer, total_steps=40, decisions=3, batch_size=8,
                              evaluate=evaluator(model, val))  # fmt: skip
    resumed.load_state_dict(saved["controller"])
    x, y = train_data
    for step in range(20, 40):
        index = torch.arange(step * 8, step * 8 + 8) % x.shape[0]
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
        loss.backward()
        resumed.report_loss(loss)
        optimizer.step()
    assert [h["lr"] for h in resumed.history] == pytest.approx([h["lr"] for h in full.history])


def test_policies_the_optimizer_cannot_serve_are_refused():
    _, optimizer, _, _ = plain_setup()
    with pytest.raises(IncompatiblePolicyError, match=r"\['batch_size'\].*scripts/run_policy\.py"):
        HyperController(make_policy(("lr", "batch_size")), optimizer, total_steps=100)
    with pytest.raises(ValueError, match="total_steps"):
        HyperController(make_policy(), optimizer, total_steps=3)


def _tiny_loop(controller: HyperController, optimizer, model, per_sample: bool, steps: int):
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    for _ in range(steps):
        optimizer.zero_grad()
        losses = torch.nn.functional.cross_entropy(model(x), y, reduction="none")
        losses.mean().backward()
        controller.report_loss(losses if per_sample else losses.mean())
        optimizer.step()


def test_batch_size_is_read_from_per_sample_losses():
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    controller = HyperController(make_policy(), optimizer, total_steps=20,
                                 evaluate=lambda: (0.7, 0.5))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _tiny_loop(controller, optimizer, model, per_sample=True, steps=20)
    assert controller.hparams.batch_size == 32
    assert all(h["batch_size"] == 32 for h in controller.history[1:])


def test_an_unknown_batch_size_is_assumed_with_one_warning():
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    controller = HyperController(make_policy(), optimizer, total_steps=20,
                                 evaluate=lambda: (0.7, 0.5))  # fmt: skip
    with pytest.warns(RuntimeWarning, match="does not know the batch size") as caught:
        _tiny_loop(controller, optimizer, model, per_sample=False, steps=20)
    assert sum("batch size" in str(w.message) for w in caught) == 1
    assert controller.hparams.batch_size == 128


def _loop(controller, optimizer, model, data, val, steps: range):
    """The plain loop with per-sample losses; validation is reported by hand after the step
    before each decision step (so it waits, pending, for one step)."""
    x, y = data
    for step in steps:
        index = torch.arange(step * 8, step * 8 + 8) % x.shape[0]
        optimizer.zero_grad()
        losses = torch.nn.functional.cross_entropy(model(x[index]), y[index], reduction="none")
        losses.mean().backward()
        controller.report_loss(losses)
        optimizer.step()
        if (step + 2) % controller.interval == 0:
            controller.report_validation(*evaluator(model, val)())


@pytest.mark.parametrize("saved_at", [13, 17, 19])
def test_state_dict_mid_interval_continues_identically(saved_at: int, tmp_path: Path):
    """Saved mid-interval (gradient norms summed, losses kept, a validation reported but not
    yet used at step 19) with the model and optimizer, and restored into fresh objects, the
    controller decides every later rate exactly as the uninterrupted run does."""
    from agents.policy.hub import load_pretrained

    policy = load_pretrained(None)  # the shipped policy
    kwargs = {"total_steps": 50, "decisions": 4, "stats_every": 3}

    def fresh():
        model, optimizer, train, val = plain_setup(momentum=0.9)
        controller = HyperController(policy, optimizer, **kwargs)
        controller.report_validation(*evaluator(model, val)())
        return model, optimizer, train, val, controller

    model, optimizer, train, val, full = fresh()
    _loop(full, optimizer, model, train, val, range(50))
    assert len(full.history) == 5

    model, optimizer, train, val, first = fresh()
    _loop(first, optimizer, model, train, val, range(saved_at))
    state = {"controller": first.state_dict(), "optimizer": optimizer.state_dict(),
             "model": model.state_dict()}  # fmt: skip
    first.detach()
    torch.save(state, tmp_path / "checkpoint.pt")
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)

    model, optimizer, train, val = plain_setup(momentum=0.9)
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    resumed = HyperController(policy, optimizer, **kwargs)
    resumed.load_state_dict(saved["controller"])
    _loop(resumed, optimizer, model, train, val, range(saved_at, 50))
    for key in ("lr", "grad_norm", "train_loss", "val_loss", "update_ratio"):
        assert [h.get(key, math.nan) for h in resumed.history] == pytest.approx(
            [h.get(key, math.nan) for h in full.history], rel=0, abs=0, nan_ok=True
        ), key


def test_start_entry_has_the_loops_batch_size(tmp_path: Path):
    """Learned from the first per-sample losses, the batch size is the start entry's too,
    in the history and in TensorBoard; ``decisions_made`` leaves the start entry out."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    controller = HyperController(make_policy(), optimizer, total_steps=20, decisions=3,
                                 evaluate=lambda: (0.7, 0.5), log_dir=tmp_path)  # fmt: skip
    _tiny_loop(controller, optimizer, model, per_sample=True, steps=20)
    controller.detach()
    assert [h["batch_size"] for h in controller.history] == [32] * 4
    assert controller.decisions_made == 3 == len(controller.history) - 1
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    points = events.Scalars("controller/hparams/batch_size")
    assert [(p.step, p.value) for p in points] == [(0, 32.0), (5, 32.0), (10, 32.0), (15, 32.0)]


def test_a_layout_2_policy_probes_first_then_steers_around_the_base(tmp_path: Path):
    from hpenv.probe import ProbeConfig

    model, optimizer, train, val = plain_setup(torch.optim.Adam)
    start = [p.detach().clone() for p in model.parameters()]
    probe = ProbeConfig(min_steps=8, max_steps=8, rollback="start")
    controller = HyperController(
        make_policy(decisions=4, obs_version=2), optimizer, total_steps=200, batch_size=8,
        evaluate=evaluator(model, val), probe=probe, model=model, log_dir=tmp_path,
    )  # fmt: skip
    assert controller.probe_steps == 8
    assert controller.interval == 39  # the 192 steps after the probe, in 5 intervals
    train_plain(controller, optimizer, model, train, 8)
    assert controller.probe_result is not None
    assert len(controller.probe_result.lrs) <= 8
    for a, b in zip(model.parameters(), start, strict=True):
        torch.testing.assert_close(a.detach(), b)  # rolled back to the start
    assert controller.base is not None
    base_rate = controller.base.lr(8 / 200)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(base_rate)
    assert optimizer.param_groups[1]["lr"] == pytest.approx(base_rate / 10)  # ratio kept
    assert controller.history[0]["lr"] == pytest.approx(base_rate)
    saved = controller.state_dict()
    assert saved["probe"] is not None
    train_plain(controller, optimizer, model, train, 192)
    assert controller.decisions_made == 4
    # resumed after the probe: no second probe, the same base
    model2, optimizer2, _, _ = plain_setup(torch.optim.Adam)
    resumed = HyperController(
        make_policy(decisions=4, obs_version=2), optimizer2, total_steps=200, batch_size=8,
        evaluate=evaluator(model2, val), probe=probe, model=model2,
    )  # fmt: skip
    resumed.load_state_dict(saved)
    assert not resumed.probing
    assert resumed.base == controller.base


@pytest.mark.parametrize(("steps", "probed"), [(8, False), (20, True)])
def test_a_probe_that_set_the_rate_drops_the_restart(steps: int, probed: bool):
    """A layout-2 policy with the restart: a probe that anchored the base at its reading (20
    steps here) set the rate, so the first interval does not restart (`Restarts.after_probe`)
    and the controller drops its copy of the start; a probe too short to read (8 steps: the
    base starts at the loop's rate) keeps both."""
    from hpenv.probe import ProbeConfig

    model, optimizer, train, val = plain_setup(torch.optim.Adam)
    controller = HyperController(
        make_policy(decisions=4, obs_version=2).with_restart(True), optimizer, total_steps=400,
        batch_size=8, evaluate=evaluator(model, val), model=model,
        probe=ProbeConfig(min_steps=steps, max_steps=steps, rollback="start"),
    )  # fmt: skip
    assert controller.restarts is not None
    assert controller._restart_state is not None
    train_plain(controller, optimizer, model, train, steps)
    assert controller.base is not None
    assert controller.base.probed == probed
    assert controller.restarts.over == probed
    assert (controller._restart_state is None) == probed


def test_the_probe_is_off_on_request_and_refused_for_a_layout_1_policy():
    model, optimizer, train, val = plain_setup(torch.optim.Adam)
    with pytest.raises(ValueError, match=r"layout 1.*with_probe_start"):
        HyperController(make_policy(decisions=4), optimizer, total_steps=200, probe=True)
    controller = HyperController(
        make_policy(decisions=4, obs_version=2), optimizer, total_steps=200, batch_size=8,
        evaluate=evaluator(model, val), probe=False,
    )  # fmt: skip
    assert controller.probe_steps == 0
    assert controller.base is not None
    assert controller.base.anchor == pytest.approx(0.01)  # the loop's own rate
    train_plain(controller, optimizer, model, train, 200)
    assert controller.decisions_made == 4


def test_a_layout_1_policy_with_a_probe_start_probes_then_starts_at_the_probes_rate():
    """`FrozenPolicy.with_probe_start`: the controller probes by default (the loop's first
    steps), then every group runs at the probe's reading (ratios kept) and the layout-1
    policy decides as usual; probe=False keeps the loop's rate."""
    from hpenv.base import ProbeStart
    from hpenv.probe import ProbeConfig

    model, optimizer, train, val = plain_setup(torch.optim.Adam)
    policy = make_policy(decisions=4).with_probe_start(True)
    controller = HyperController(
        policy, optimizer, total_steps=200, batch_size=8, evaluate=evaluator(model, val),
        model=model,
    )  # fmt: skip
    assert controller.probe_steps == ProbeConfig().steps_for(200) == 20
    train_plain(controller, optimizer, model, train, 20)
    assert controller.probe_result is not None
    rate = ProbeStart().lr(controller.probe_result, 0.01)
    assert rate != pytest.approx(0.01)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(rate)
    assert optimizer.param_groups[1]["lr"] == pytest.approx(rate / 10)  # ratio kept
    assert controller.history[0]["lr"] == pytest.approx(rate)
    train_plain(controller, optimizer, model, train, 180)
    assert controller.decisions_made == 4
    model, optimizer, train, val = plain_setup(torch.optim.Adam)
    off = HyperController(policy, optimizer, total_steps=200, batch_size=8,
                          evaluate=evaluator(model, val), probe=False)  # fmt: skip
    assert off.probe_steps == 0
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)


def test_a_short_loop_anchors_at_the_policys_short_rule():
    """A policy whose base reads short runs by another rule: the controller knows its loop's
    length (total_steps) and reads the probe that way."""
    from hpenv.probe import ProbeConfig

    model, optimizer, train, val = plain_setup(torch.optim.Adam)
    short = {"short_rule": "min/10", "short_steps": 300}
    controller = HyperController(
        make_policy(decisions=4, obs_version=2, base=short), optimizer, total_steps=200,
        batch_size=8, evaluate=evaluator(model, val), model=model,
        probe=ProbeConfig(min_steps=40, max_steps=40, rollback="start"),
    )  # fmt: skip
    train_plain(controller, optimizer, model, train, 40)
    found = controller.probe_result
    assert found is not None
    assert found.doubt() is None
    assert controller.base is not None
    assert controller.base.anchor == pytest.approx(found.suggestion("min/10"))


def test_every_driver_anchors_the_base_the_policy_was_trained_with():
    """A layout-2 policy records its probe and base (env_config); the controller and the
    harness's policy method rebuild them, not today's defaults."""
    from agents.evaluation.methods.core import RunSpec
    from agents.evaluation.methods.policy import PolicyMethod
    from hpenv.base import BaseConfig
    from hpenv.probe import ProbeConfig

    recorded = {"rule": "min/100", "decay": "constant"}
    policy = make_policy(decisions=4, obs_version=2, base=recorded, probe={"max_steps": 40})
    assert policy.metadata.base_config() == BaseConfig(rule="min/100", decay="constant")
    assert policy.metadata.probe_config() == ProbeConfig(max_steps=40)
    assert make_policy().metadata.base_config() is None  # layout 1: no base
    assert make_policy(obs_version=2).metadata.base_config() == BaseConfig()  # none recorded
    model, optimizer, _, _ = plain_setup(torch.optim.Adam)
    controller = HyperController(policy, optimizer, total_steps=400, batch_size=8, model=model)
    assert controller.base_config == BaseConfig(rule="min/100", decay="constant")
    (run,) = PolicyMethod(policy).runs(RunSpec("digits", 0))
    assert run.probe == ProbeConfig(max_steps=40)
