"""One policy-in-the-loop step: the env, the harness's policy method and the controller agree.

The same frozen policy, seed, task, budget and starting learning rate, run
three ways: as an `HPTuneEnv` episode (what meta-training sees), as the
evaluation harness's ``policy`` method on a cell, and as a `HyperController`
attached to a plain `TrainingRun`'s optimizer. All three must choose the same
learning rate at every decision and reach the same final validation loss.
"""

from __future__ import annotations

import pytest
from policies import make_policy

from agents.deploy.controller import HyperController
from agents.evaluation.methods.core import RunSpec
from agents.evaluation.methods.policy import PolicyMethod
from agents.metatrain.rollout import run_episode
from agents.policy.artifact import PolicyActor
from hpenv.env import HPTuneEnv
from hpenv.hyperparams import FALL_HOLD_THRESHOLD
from hpenv.plan import Fidelity
from hpenv.tasks import get_task
from hpenv.training import TrainingRun

DECISIONS = 4
BATCH = 64  # the default synthetic task's batch size
STEPS = 5 * 12  # 5 intervals of 12 optimizer steps
BUDGET = BATCH * STEPS


@pytest.mark.parametrize(
    ("rise_guard", "fall_hold"), [(False, False), (True, False), (False, True)]
)
def test_env_harness_and_controller_take_the_same_decisions(rise_guard, fall_hold):
    # With the guard, a policy that mostly raises the rate from 30x the default: the loss
    # stops improving, so the guard holds some of its rises, in all three alike. With the
    # fall hold (trained with it: the policy's file says so), a policy that mostly lowers the
    # rate from the default while the loss still falls: the hold keeps some of its falls.
    threshold = FALL_HOLD_THRESHOLD if fall_hold else None
    bias = 2.0 * rise_guard - 2.0 * fall_hold
    policy = make_policy(decisions=DECISIONS, action_bias=bias, rise_guard=rise_guard,
                         fall_hold=threshold)  # fmt: skip
    task = get_task("synthetic")
    assert task.defaults.batch_size == BATCH

    env = HPTuneEnv(task, budget=BUDGET, decisions=DECISIONS, val_size=0, device="cpu",
                    initial={"lr": task.defaults.lr * (30.0 if rise_guard else 1.0)},
                    rise_guard=rise_guard, fall_hold=threshold)  # fmt: skip
    actor = PolicyActor(policy)
    episode = run_episode(env, actor, seed=5, on_reset=actor.reset, test=False)
    assert env.run is not None
    seed = env.run.generator.initial_seed()  # the training seed the episode drew

    assert env.episode is not None
    held = env.episode.guard.held if env.episode.guard is not None else 0
    assert (held > 0) == rise_guard
    falls_held = env.episode.fall_hold.held if env.episode.fall_hold is not None else 0
    assert (falls_held > 0) == fall_hold

    spec = RunSpec("synthetic", seed, fidelity=Fidelity(budget=BUDGET), decisions=DECISIONS,
                   val_size=0, start_lr_factor=30.0 if rise_guard else 1.0)  # fmt: skip
    harness = PolicyMethod(policy).run(spec)

    start = task.defaults.replace(lr=episode.trajectory[0]["lr"])  # default, or 30x it
    run, controller = _controller_run(policy, task, seed, start)

    env_lrs = [p["lr"] for p in episode.trajectory[1:]]  # warm-up, then after each decision
    harness_lrs = [p["lr"] for p in harness.trajectory[1:]]
    controller_lrs = [h["lr"] for h in controller.history]
    assert len(env_lrs) == DECISIONS + 1
    assert harness_lrs == pytest.approx(env_lrs, rel=1e-12)
    assert controller_lrs == pytest.approx(env_lrs, rel=1e-12)
    moved = len({round(lr, 12) for lr in env_lrs}) > 2
    assert moved or rise_guard or fall_hold  # the policy moved the rate
    assert env_lrs[0] == pytest.approx(task.defaults.lr * (30.0 if rise_guard else 1.0))
    assert harness.val_loss == pytest.approx(episode.val_loss, rel=1e-9)
    # the decision log says how many rises the guard held (TensorBoard: controller/metrics/...)
    assert [h.get("rises_held", 0) for h in controller.history][-1] == held
    assert [h.get("falls_held", 0) for h in controller.history][-1] == falls_held
    assert run.evaluate().loss == pytest.approx(episode.val_loss, rel=1e-9)


def test_layout_3_policy_reads_the_optimizer_alike_in_env_harness_and_controller():
    # A layout-3 policy (layout 1 and whether the optimizer is SGD) on an SGD run: the
    # environment, the harness (--optimizer sgd) and the controller (which reads SGD off the
    # torch optimizer's class) give it the same observation, so the same decisions.
    import numpy as np

    from hpenv.hyperparams import with_optimizer
    from hpenv.observation import INDEX, OPTIMIZER_FEATURES

    policy = make_policy(decisions=DECISIONS, obs_version=3)
    flag = len(INDEX)  # the optimizer feature follows layout 1's
    assert [f.name for f in OPTIMIZER_FEATURES] == ["optimizer_sgd"]
    probe = PolicyActor(policy)
    obs = np.zeros(flag + 1, dtype=np.float32)
    action_adam = probe(obs)
    obs[flag] = 1.0
    probe.reset()
    assert not np.allclose(probe(obs), action_adam)  # the flag moves this policy's action

    task = get_task("synthetic")
    env = HPTuneEnv(task, budget=BUDGET, decisions=DECISIONS, val_size=0, device="cpu",
                    optimizer="sgd", observe_optimizer=True, initial={})  # fmt: skip
    actor = PolicyActor(policy)
    episode = run_episode(env, actor, seed=5, on_reset=actor.reset, test=False)
    assert env.run is not None
    assert env.run.hparams.optimizer == "sgd"
    assert env.observation_space.shape == (flag + 1,)
    seed = env.run.generator.initial_seed()

    spec = RunSpec("synthetic", seed, fidelity=Fidelity(budget=BUDGET), decisions=DECISIONS,
                   val_size=0, optimizer="sgd")  # fmt: skip
    harness = PolicyMethod(policy).run(spec)

    hparams = with_optimizer(task.defaults, "sgd")
    _, controller = _controller_run(policy, task, seed, hparams)

    env_lrs = [p["lr"] for p in episode.trajectory[1:]]
    assert env_lrs[0] == pytest.approx(hparams.lr)
    assert len({round(lr, 12) for lr in env_lrs}) > 2  # the policy moved the rate
    assert [p["lr"] for p in harness.trajectory[1:]] == pytest.approx(env_lrs, rel=1e-12)
    assert [h["lr"] for h in controller.history] == pytest.approx(env_lrs, rel=1e-12)
    assert harness.val_loss == pytest.approx(episode.val_loss, rel=1e-9)


def _controller_run(policy, task, seed: int, hparams) -> tuple[TrainingRun, HyperController]:
    """A plain `TrainingRun` from ``hparams``, driven by a `HyperController` over the budget."""
    run = TrainingRun(task, hparams=hparams, seed=seed, device="cpu", val_size=0)

    def evaluate() -> tuple[float, float]:
        result = run.evaluate()
        return result.loss, result.accuracy

    controller = HyperController(
        policy, run.optimizer, total_steps=STEPS, decisions=DECISIONS, evaluate=evaluate,
        batch_size=BATCH,
    )  # fmt: skip
    run.loss_hooks.append(controller.report_loss)
    run.train(BUDGET)
    return run, controller
