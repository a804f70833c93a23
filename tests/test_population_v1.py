"""PopulationVecEnv with observation layout 2: the probe, the base, residual actions and the
paired reward's hidden reference members (one per group of members sharing task, seed, start)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_population import _OneExploding

from agents.metatrain.population_vec import PopulationVecEnv
from hpenv.base import BaseConfig
from hpenv.env import Around, HPTuneEnv
from hpenv.errors import InputError
from hpenv.observation import LAYOUTS
from hpenv.population import Member, Population
from hpenv.probe import ProbeConfig
from hpenv.tasks import SyntheticFamily, SyntheticSpec
from hpenv.testing import tiny_task_data
from hpenv.training import TrainingRun

torch.set_num_threads(1)

SHAPE = {"input_dim": 6, "num_classes": 3, "num_samples": 160, "width": 16, "depth": 2}
FAMILY = SyntheticFamily(
    input_dim=(4, 8), num_classes=(2, 4), num_samples=(120, 160), widths=(8, 16),
    depth=(1, 2), batch_sizes=(16,), steps=(40, 40),
)  # fmt: skip
#: 512 samples at batch 16: 32 optimizer steps, an 8-step probe, 3 decisions.
V1 = {
    "decisions": 3,
    "device": "cpu",
    "budget": 512,
    "probe": ProbeConfig(min_steps=4, max_steps=8),
    "base": BaseConfig(),
    "reward": "paired_log_val_loss",
    "initial": {"lr": Around(100.0, 30.0)},
}


def make_venv(tasks=FAMILY, num_envs: int = 4, group_size: int = 2, **kwargs) -> PopulationVecEnv:
    return PopulationVecEnv(tasks, num_envs, group_size=group_size, **{**V1, **kwargs})


def actions(venv: PopulationVecEnv, value: float = 0.0) -> np.ndarray:
    return np.full((venv.num_envs, 1), value, np.float32)


def test_member_trajectory_equals_an_hptuneenv_v1_episode():
    """Probe, base, residual steps and the paired reward: one episode, whatever trains it."""
    task = SyntheticSpec(**SHAPE, steps=40, batch_size=16, seed=4).task()
    venv = make_venv(task, num_envs=2, group_size=1)
    venv.seed(3)
    obs = venv.reset()
    assert obs.shape == (2, len(LAYOUTS[2]))
    assert venv.population.size == 4  # two members, each with its reference
    envs = []
    for i in range(2):
        env = HPTuneEnv(task, **V1)
        first, info = env.reset(seed=venv.episode_seeds[i], options={"task": task})
        np.testing.assert_allclose(first, obs[i], atol=1e-4)
        assert info["hparams"] == venv.reset_infos[i]["hparams"]
        assert info["base_lr"] == pytest.approx(venv.reset_infos[i]["base_lr"], rel=1e-5)
        assert info["probe"] == venv.reset_infos[i]["probe"]
        envs.append(env)
    for a in (0.5, -1.0):
        step = np.array([[a], [-a]], np.float32)
        obs, rewards, dones, infos = venv.step(step)
        for i, env in enumerate(envs):
            o, r, terminated, truncated, info = env.step(step[i])
            np.testing.assert_allclose(infos[i].get("terminal_observation", obs[i]), o, atol=1e-4)
            assert rewards[i] == pytest.approx(r, abs=1e-4)
            assert dones[i] == (terminated or truncated)
            assert infos[i]["hparams"]["lr"] == pytest.approx(info["hparams"]["lr"], rel=1e-6)
            ref = infos[i]["reference_val_loss"]
            assert ref == pytest.approx(info["reference_val_loss"], rel=1e-5)


def test_layout_1_references_keep_the_start_as_hptuneenv_does():
    """The paired reward without a base (layout 1): each reference member holds its group's
    start (static), and a member's rewards equal an `HPTuneEnv` episode's."""
    task = SyntheticSpec(**SHAPE, steps=40, batch_size=16, seed=4).task()
    layout1 = {"probe": None, "base": None}
    venv = make_venv(task, num_envs=2, group_size=1, **layout1)
    venv.seed(3)
    obs = venv.reset()
    assert obs.shape == (2, len(LAYOUTS[1]))
    assert venv.population.size == 4
    envs = []
    for i in range(2):
        env = HPTuneEnv(task, **{**V1, **layout1})
        first, _ = env.reset(seed=venv.episode_seeds[i], options={"task": task})
        np.testing.assert_allclose(first, obs[i], atol=1e-4)
        envs.append(env)
    starts = [venv.population.hparams[r].lr for r in venv.references]
    for a in (0.5, -1.0):
        step = np.array([[a], [-a]], np.float32)
        _, rewards, _, infos = venv.step(step)
        for i, env in enumerate(envs):
            _, r, _, _, info = env.step(step[i])
            assert rewards[i] == pytest.approx(r, abs=1e-4)
            assert rewards[i] != 0.0  # a move of the rate is paid against the held start
            ref = infos[i]["reference_val_loss"]
            assert ref == pytest.approx(info["reference_val_loss"], rel=1e-5)
    assert [venv.population.hparams[r].lr for r in venv.references] == starts


def test_groups_share_their_start_and_the_neutral_action_ties_the_reference():
    venv = make_venv(num_envs=4, group_size=2)
    venv.seed(0)
    venv.reset()
    population = venv.population
    assert population.size == 6  # 4 members + 2 references
    assert venv.references == [4, 4, 5, 5]
    assert venv.get_attr("reference") == [4, 4, 5, 5]
    assert venv.run_seeds[0] == venv.run_seeds[1] == venv.slot_seeds[4]
    assert venv.run_seeds[2] != venv.run_seeds[0]
    for i, r in ((0, 4), (1, 4), (3, 5)):  # same weights after probe and warm-up, bitwise
        mine, ref = population.parameters(i), population.parameters(r)
        assert all(torch.equal(mine[k], ref[k]) for k in mine)
        assert population.hparams[i].lr == population.hparams[r].lr
    infos: list = []
    done = False
    while not done:
        _, rewards, dones, infos = venv.step(actions(venv, 0.0))
        assert rewards.tolist() == [0.0] * 4  # the base's own run: no margin at all
        for info in infos:
            assert info["reference_val_loss"] == info["val_loss"]
        done = bool(dones.all())


def test_steering_away_from_the_base_is_paid_by_the_margin_over_the_reference():
    venv = make_venv(num_envs=2, group_size=2)
    venv.seed(1)
    venv.reset()
    _, rewards, _, infos = venv.step(np.array([[0.0], [-1.0]], np.float32))
    assert rewards[0] == 0.0
    assert infos[1]["hparams"]["lr"] < infos[0]["hparams"]["lr"]  # residual below the base
    expected = np.log(infos[1]["reference_val_loss"]) - np.log(infos[1]["val_loss"])
    assert rewards[1] != 0.0
    assert np.sign(rewards[1]) == np.sign(expected)


def test_a_restarted_member_gets_a_reference_of_its_own():
    source = _OneExploding(SHAPE, scale=1e8)  # its group's probe explodes too
    venv = make_venv(source, num_envs=4, group_size=2, optimizer="sgd",
                     initial={"lr": 1.0, "momentum": 0.99})  # fmt: skip
    venv.seed(2)
    venv.reset()
    size = venv.population.size
    restarted = False
    for _ in range(venv.plan.intervals - 1):
        _, _, dones, _infos = venv.step(actions(venv, 0.0))
        if dones.all():
            break
        for i in np.flatnonzero(dones):
            restarted = True
            r = venv.references[i]
            assert r >= 4
            assert venv.references.count(r) == 1
            mine, ref = venv.population.parameters(int(i)), venv.population.parameters(r)
            assert all(torch.equal(mine[k], ref[k]) for k in mine)
    assert restarted
    assert source.redraws >= 1
    assert venv.population.size <= size + venv.num_envs


def test_population_add_appends_a_fresh_run():
    spec = SyntheticSpec(**SHAPE, steps=20, batch_size=16, seed=1)
    population = Population([Member(spec.task(), seed=3)], device="cpu", val_size=16)
    population.train(64)
    index = population.add(Member(spec.task(), seed=5))
    assert (index, population.size) == (1, 2)
    run = TrainingRun(spec.task(), seed=5, device="cpu", val_size=16)
    for got, expected in zip(population.train(48, members=[1]), [run.train(48)], strict=True):
        assert got.loss_mean == pytest.approx(expected.loss_mean, rel=1e-4)
    weights = population.parameters(1)
    for name, value in run.model.state_dict().items():
        torch.testing.assert_close(weights[name], value, atol=1e-5, rtol=0)


def test_the_population_draws_one_optimizer_for_all_its_members():
    seen = set()
    for seed in range(6):
        venv = PopulationVecEnv(
            "digits", 3, decisions=3, budget=256, device="cpu", optimizers=("adam", "sgd"),
            data_fn=tiny_task_data, seed=seed,
        )  # fmt: skip
        venv.reset()
        kinds = {hp.optimizer for hp in venv.population.hparams}
        assert len(kinds) == 1
        seen |= kinds
    assert seen == {"adam", "sgd"}


def test_group_size_must_divide_the_members_with_a_paired_reward():
    with pytest.raises(InputError, match="group_size"):
        make_venv(num_envs=3, group_size=2)
    plain = {k: v for k, v in V1.items() if k != "reward"}
    venv = PopulationVecEnv(FAMILY, 3, group_size=2, **plain)  # no reference members
    venv.seed(0)
    venv.reset()
    assert venv.population.size == 3
    assert venv.get_attr("reference") == [None] * 3
