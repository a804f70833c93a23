"""HyperController: equivalence with HPTuneEnv, plain PyTorch loops, NaN, resume, refusals."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from agents.controller import HyperController
from agents.policy import FrozenPolicy, IncompatiblePolicyError, PolicyActor
from agents.rollout import run_episode
from hpenv.env import HPTuneEnv
from hpenv.hyperparams import HParams
from hpenv.observation import OBS_SIZE
from hpenv.tasks import SyntheticSpec
from hpenv.training import TrainingRun

SPEC = SyntheticSpec(input_dim=12, num_classes=3, num_samples=400, width=32, depth=1, seed=4)


def make_policy(tuned=("lr",), seed: int = 0, decisions: int = 4) -> FrozenPolicy:
    """An untrained but non-trivial frozen policy (random weights, wide action noise)."""
    from gymnasium import spaces
    from stable_baselines3.common.running_mean_std import RunningMeanStd

    from hpenv.observation import OBS_HIGH, OBS_LOW

    class Dummy:
        observation_space = spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32)
        action_space = spaces.Box(-1.0, 1.0, shape=(len(tuned),), dtype=np.float32)

    import gymnasium as gym

    class DummyEnv(gym.Env):
        observation_space = Dummy.observation_space
        action_space = Dummy.action_space

        def reset(self, *, seed=None, options=None):
            return self.observation_space.sample(), {}

        def step(self, action):
            return self.observation_space.sample(), 0.0, False, False, {}

    model = PPO("MlpPolicy", DummyEnv(), seed=seed, device="cpu", policy_kwargs={"net_arch": [8]})
    with torch.no_grad():  # make actions large enough to move the learning rate visibly
        for p in model.policy.action_net.parameters():
            p.mul_(20.0)
    rms = RunningMeanStd(shape=(OBS_SIZE,))
    return FrozenPolicy.from_model(
        model, rms, 10.0, 1e-8, tuned=tuned, action_mode="continuous",
        env_config={"decisions": decisions},
    )  # fmt: skip


def test_same_trajectory_as_the_environment():
    policy = make_policy()
    batch, decisions, total_steps = 16, 4, 105  # 5 intervals of 21 steps
    budget = batch * total_steps
    hparams = HParams(lr=2e-3, batch_size=batch)

    env = HPTuneEnv(SPEC.task(), budget=budget, decisions=decisions, initial={"lr": 2e-3,
                    "batch_size": batch}, device="cpu", val_size=0)  # fmt: skip
    actor = PolicyActor(policy)
    episode = run_episode(env, actor, seed=3, on_reset=actor.reset, test=False)
    run_seed = env.run.generator.initial_seed() if env.run else None
    assert run_seed is not None

    run = TrainingRun(SPEC.task(), hparams=hparams, seed=run_seed, device="cpu", val_size=0)

    def evaluate() -> tuple[float, float]:
        result = run.evaluate()
        return result.loss, result.accuracy

    controller = HyperController(
        policy, run.optimizer, total_steps=total_steps, decisions=decisions, evaluate=evaluate,
        batch_size=batch,
    )  # fmt: skip
    run.loss_hooks.append(controller.report_loss)
    run.train(budget)
    lrs = [h["lr"] for h in controller.history]
    assert len(lrs) == decisions + 1
    assert lrs == pytest.approx(episode.lr, rel=1e-12)
    assert len(set(np.round(np.log10(lrs), 6))) > 2  # the policy really moved it


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


def test_manual_validation_reports():
    model, optimizer, train, val = plain_setup()
    controller = HyperController(make_policy(), optimizer, total_steps=20, decisions=3)
    with pytest.raises(RuntimeError, match="initial validation"):
        train_plain(controller, optimizer, model, train, 5)
    model, optimizer, train, val = plain_setup()
    controller = HyperController(make_policy(), optimizer, total_steps=20, decisions=3)
    controller.report_validation(*evaluator(model, val)())
    with pytest.raises(RuntimeError, match="report_validation"):
        train_plain(controller, optimizer, model, train, 5)


def test_nan_losses_never_reach_the_optimizer():
    model, optimizer, train, val = plain_setup()
    controller = HyperController(make_policy(), optimizer, total_steps=40, decisions=3,
                                 evaluate=evaluator(model, val))  # fmt: skip
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
    full = HyperController(policy, optimizer, total_steps=40, decisions=3,
                           evaluate=evaluator(model, val))  # fmt: skip
    train_plain(full, optimizer, model, train, 40)

    model, optimizer, train, val = plain_setup()
    first = HyperController(policy, optimizer, total_steps=40, decisions=3,
                            evaluate=evaluator(model, val))  # fmt: skip
    train_plain(first, optimizer, model, train, 20)
    saved = {"controller": first.state_dict(), "optimizer": optimizer.state_dict(),
             "model": model.state_dict()}  # fmt: skip
    first.detach()

    model, optimizer, train_data, val = plain_setup()
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    resumed = HyperController(policy, optimizer, total_steps=40, decisions=3,
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
    with pytest.raises(IncompatiblePolicyError, match="batch_size"):
        HyperController(make_policy(("lr", "batch_size")), optimizer, total_steps=100)
    with pytest.raises(ValueError, match="total_steps"):
        HyperController(make_policy(), optimizer, total_steps=3)
