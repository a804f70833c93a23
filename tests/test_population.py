"""Population: each member matches a sequential TrainingRun; PopulationVecEnv meets SB3's API."""

from __future__ import annotations

import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

from agents.metatrain.population_tasks import MemberTask
from agents.metatrain.population_vec import PopulationVecEnv
from hpenv.env import Around, HPTuneEnv
from hpenv.hyperparams import HParams
from hpenv.observation import OBS_SIZE
from hpenv.population import Member, Population
from hpenv.tasks import SyntheticFamily, SyntheticSpec, get_task
from hpenv.testing import tiny_task_data
from hpenv.training import IntervalStats, TrainingRun

torch.set_num_threads(1)

SHAPE = {"input_dim": 6, "num_classes": 3, "num_samples": 120, "width": 16, "depth": 2}
SPECS = [
    SyntheticSpec(**SHAPE, seed=1),
    SyntheticSpec(**SHAPE, seed=2, noise=0.2, input_scale=3.0),
    SyntheticSpec(**SHAPE, seed=3, conditioning=1.0),
]
ATOL = 1e-5


def hparams(optimizer: str, **changes) -> list[HParams]:
    base = HParams(optimizer=optimizer, batch_size=16)  # type: ignore[arg-type]
    return [
        base.replace(lr=1e-2, momentum=0.9, weight_decay=1e-3, dropout=0.25, **changes),
        base.replace(lr=3e-3, momentum=0.5, **changes),
        base.replace(lr=3e-2, momentum=0.0 if optimizer == "sgd" else 0.8, weight_decay=1e-2),
    ]


def pair(
    hps: list[HParams], seeds=(3, 4, 5), specs=SPECS, **kwargs
) -> tuple[Population, list[TrainingRun]]:
    members = [
        Member(spec.task(), seed=s, hparams=h) for spec, s, h in zip(specs, seeds, hps, strict=True)
    ]
    population = Population(members, device="cpu", val_size=16, **kwargs)
    runs = [
        TrainingRun(spec.task(), hparams=h, seed=s, device="cpu", val_size=16, **kwargs)
        for spec, s, h in zip(specs, seeds, hps, strict=True)
    ]
    return population, runs


def assert_stats_match(got: IntervalStats, expected: IntervalStats) -> None:
    for field in ("loss_mean", "loss_std", "grad_norm", "update_ratio"):
        a, b = getattr(got, field), getattr(expected, field)
        assert a == pytest.approx(b, abs=ATOL, rel=1e-4, nan_ok=True), field
    assert (got.samples, got.steps, got.diverged) == (
        expected.samples,
        expected.steps,
        expected.diverged,
    )
    assert (got.samples_done, got.steps_done) == (expected.samples_done, expected.steps_done)


def assert_weights_match(population: Population, index: int, run: TrainingRun) -> None:
    weights = population.parameters(index)
    for name, value in run.model.state_dict().items():
        torch.testing.assert_close(weights[name], value, atol=ATOL, rtol=0, equal_nan=True)


def step_both(population: Population, runs: list[TrainingRun], samples: int) -> None:
    for got, run in zip(population.train(samples), runs, strict=True):
        assert_stats_match(got, run.train(samples))


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_members_match_training_runs(optimizer: str):
    """Different lrs, decay and momentum per member, dropout on one, lr changed mid-run."""
    population, runs = pair(hparams(optimizer))
    step_both(population, runs, 56)  # 3 full batches and a partial one
    for i, lr in enumerate((5e-2, 1e-3, 1e-2)):
        population.set_hparams(i, lr=lr, momentum=0.7, dropout=0.1 * i)
        runs[i].set_hparams(lr=lr, momentum=0.7, dropout=0.1 * i)
    step_both(population, runs, 150)  # wraps around the 120 samples
    for i, (got, run) in enumerate(zip(population.evaluate(), runs, strict=True)):
        expected = run.evaluate()
        assert got.loss == pytest.approx(expected.loss, abs=ATOL)
        assert (got.accuracy, got.samples) == (expected.accuracy, expected.samples)
        assert_weights_match(population, i, run)


def test_sgd_momentum_switched_on_later_starts_its_buffer_at_the_gradient():
    hps = [h.replace(momentum=0.0) for h in hparams("sgd")]
    population, runs = pair(hps)
    step_both(population, runs, 32)
    population.set_hparams(1, momentum=0.9)
    runs[1].set_hparams(momentum=0.9)
    step_both(population, runs, 48)
    for i, run in enumerate(runs):
        assert_weights_match(population, i, run)


def test_gradient_clipping_per_member():
    hps = hparams("sgd")
    hps = [hps[0].replace(grad_clip=0.05), hps[1], hps[2].replace(grad_clip=1.0)]
    population, runs = pair(hps)
    step_both(population, runs, 40)
    step_both(population, runs, 40)
    for i, run in enumerate(runs):
        assert_weights_match(population, i, run)


def test_diverging_member_is_frozen_and_the_others_still_match():
    hps = hparams("sgd")
    hps[1] = hps[1].replace(lr=1.0, momentum=0.99)  # explodes on inputs of scale 1e4
    huge = SyntheticSpec(**SHAPE, seed=2, input_scale=1e4)
    population, runs = pair(hps, specs=[SPECS[0], huge, SPECS[2]])
    step_both(population, runs, 64)
    assert population.diverged == [False, True, False]
    frozen = population.parameters(1)
    step_both(population, runs, 64)  # the diverged member reports TrainingRun's NaN stats
    stats = population.train(32)
    assert stats[1].steps == 0
    assert math.isnan(stats[1].loss_mean)
    assert stats[1].diverged
    for name, value in population.parameters(1).items():
        torch.testing.assert_close(value, frozen[name], equal_nan=True, atol=0, rtol=0)
    runs[0].train(32), runs[2].train(32)
    for i in (0, 2):
        assert_weights_match(population, i, runs[i])
        assert all(torch.isfinite(v).all() for v in population.parameters(i).values())


def test_reinit_starts_a_member_afresh_in_place():
    hps = hparams("adam")
    population, runs = pair(hps)
    step_both(population, runs, 48)
    new_spec = SyntheticSpec(**SHAPE, seed=9, noise=0.1)
    new_hp = hps[2].replace(lr=2e-3, dropout=0.3)
    population.reinit(2, Member(new_spec.task(), seed=11, hparams=new_hp))
    runs[2] = TrainingRun(new_spec.task(), hparams=new_hp, seed=11, device="cpu", val_size=16)
    step_both(population, runs, 48)
    for i, run in enumerate(runs):
        assert_weights_match(population, i, run)
    assert population.samples_done == [96, 96, 48]


def test_training_a_subset_leaves_the_others_alone():
    population, runs = pair(hparams("adamw"))
    untouched = population.parameters(0)
    stats = population.train(40, members=[2, 1])
    assert_stats_match(stats[0], runs[2].train(40))
    assert_stats_match(stats[1], runs[1].train(40))
    assert population.samples_done == [0, 40, 40]
    for name, value in population.parameters(0).items():
        assert torch.equal(value, untouched[name])
    step_both(population, runs, 24)  # runs[0] had not trained either
    evaluation = population.evaluate(members=[1])
    assert evaluation[0].loss == pytest.approx(runs[1].evaluate().loss, abs=ATOL)


def test_cnn_with_augmentation_and_dropout_matches():
    task = get_task("cifar10")
    datas = [tiny_task_data(task, n_train=24, n_eval=8, seed=s) for s in (0, 1)]
    hps = [
        task.defaults.replace(batch_size=8, dropout=0.3),
        task.defaults.replace(batch_size=8, lr=3e-4),
    ]
    population = Population(
        [
            Member(task, seed=s, hparams=h, data=d)
            for s, h, d in zip((1, 2), hps, datas, strict=True)
        ],
        device="cpu",
    )
    runs = [
        TrainingRun(task, hparams=h, seed=s, data=d, device="cpu")
        for s, h, d in zip((1, 2), hps, datas, strict=True)
    ]
    step_both(population, runs, 20)
    step_both(population, runs, 20)
    for i, run in enumerate(runs):
        assert_weights_match(population, i, run)


def test_synthetic_conv_members_match():
    specs = [
        SyntheticSpec(input_dim=2, image=8, num_classes=3, num_samples=96, width=32, seed=s,
                      batch_size=16, input_scale=scale)
        for s, scale in ((1, 1.0), (2, 5.0))
    ]  # fmt: skip
    hps = [specs[0].task().defaults.replace(dropout=0.2), specs[1].task().defaults]
    population = Population(
        [Member(sp.task(), seed=s, hparams=h) for sp, s, h in zip(specs, (3, 4), hps, strict=True)],
        device="cpu",
    )
    runs = [
        TrainingRun(sp.task(), hparams=h, seed=s, device="cpu")
        for sp, s, h in zip(specs, (3, 4), hps, strict=True)
    ]
    step_both(population, runs, 48)
    step_both(population, runs, 48)
    for i, run in enumerate(runs):
        assert_weights_match(population, i, run)


def test_invalid_populations_are_refused():
    task = SPECS[0].task()
    with pytest.raises(ValueError, match="at least one member"):
        Population([], device="cpu")
    wide = SyntheticSpec(**{**SHAPE, "width": 32}).task()
    with pytest.raises(ValueError, match="another architecture"):
        Population([Member(task), Member(wide)], device="cpu")
    with pytest.raises(ValueError, match="one batch size"):
        Population(
            [Member(task), Member(task, hparams=task.defaults.replace(batch_size=8))], device="cpu"
        )
    with pytest.raises(ValueError, match="optimizer is fixed"):
        Population(
            [Member(task), Member(task, hparams=task.defaults.replace(optimizer="sgd"))],
            device="cpu",
        )
    imdb = get_task("imdb")
    with pytest.raises(ValueError, match=r"does not support .*LSTM"):
        Population([Member(imdb, data=tiny_task_data(imdb))], device="cpu")
    population = Population([Member(task)], device="cpu")
    with pytest.raises(ValueError, match="share one batch size"):
        population.set_hparams(0, batch_size=8)
    with pytest.raises(ValueError, match="distinct indices"):
        population.train(8, members=[0, 0])


def test_population_leaves_the_global_rng_alone():
    """All randomness comes from the members' seeds: the global generator is neither used
    nor advanced (models are built under a forked RNG, as in TrainingRun)."""
    results = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        state = torch.random.get_rng_state()
        population, _ = pair(hparams("adam"))
        results.append([s.loss_mean for s in population.train(40)])
        population.evaluate()
        assert torch.equal(torch.random.get_rng_state(), state)
    assert results[0] == results[1]


# ---------------------------------------------------------------- PopulationVecEnv

TINY_FAMILY = SyntheticFamily(
    input_dim=(4, 8),
    num_classes=(2, 4),
    num_samples=(80, 160),
    widths=(8, 16),
    depth=(1, 2),
    batch_sizes=(16, 32),
    steps=(20, 40),
)
VEC = {"decisions": 3, "device": "cpu", "initial": {"lr": Around(100.0, 30.0)}}


def make_venv(tasks=TINY_FAMILY, num_envs: int = 3, **kwargs) -> PopulationVecEnv:
    return PopulationVecEnv(tasks, num_envs, **{**VEC, **kwargs})


def zeros(venv: PopulationVecEnv) -> np.ndarray:
    return np.zeros((venv.num_envs, 1), np.float32)


def test_vec_env_api_behaves_like_sb3s():
    venv = make_venv(render_mode="ansi")
    assert venv.seed(5) == [5, 6, 7]
    obs = venv.reset()
    assert obs.shape == (3, OBS_SIZE)
    assert obs.dtype == np.float32
    assert venv.observation_space.contains(obs[0])
    assert venv.get_attr("render_mode") == ["ansi"] * 3
    assert venv.get_attr("tuned", indices=[1]) == [("lr",)]
    assert [t.name for t in venv.get_attr("task")] == ["synthetic"] * 3
    assert venv.get_attr("plan")[0].intervals >= 2
    venv.set_attr("note", "hi", indices=2)
    assert venv.get_attr("note", indices=[2]) == ["hi"]
    with pytest.raises(AttributeError):
        venv.get_attr("note", indices=[0])
    lines = venv.env_method("render")
    assert all(line.startswith("synthetic/mlp") for line in lines)
    assert venv.env_is_wrapped(gym.Wrapper) == [False, False, False]
    assert set(venv.reset_infos[0]) >= {"initial_val_loss", "val_loss", "hparams", "budget"}
    assert venv.render() is None  # no images: SB3's VecEnv.render has nothing to tile
    before = venv.get_attr("hparams")
    with pytest.raises(ValueError, match="NaN"):
        venv.step(np.array([[0.5], [np.nan], [0.5]], np.float32))
    assert venv.get_attr("hparams") == before  # no member changed
    obs, rewards, dones, infos = venv.step(zeros(venv))
    assert rewards.dtype == np.float32
    assert dones.dtype == bool
    keys = {"task", "hparams", "samples", "budget", "val_loss", "val_accuracy", "train_loss"}
    assert keys | {"train_loss_std", "grad_norm", "update_ratio", "diverged"} <= set(infos[0])
    venv.close()
    assert venv.population is None


def test_invalid_vec_env_arguments_are_refused():
    with pytest.raises(ValueError, match="shared by a population"):
        make_venv(tuned=("lr", "batch_size"))
    with pytest.raises(ValueError, match="num_envs"):
        make_venv(num_envs=0)
    with pytest.raises(ValueError, match="tasks must be"):
        make_venv(tasks=3)
    with pytest.raises(RuntimeError, match="reset"):
        make_venv().step(np.zeros((3, 1), np.float32))


def test_members_finish_together_then_a_new_population_starts():
    venv = make_venv(seed=0)
    venv.reset()
    first_tasks = list(venv.member_tasks)
    intervals = venv.plan.intervals
    for _ in range(intervals - 2):
        _, _, dones, _ = venv.step(zeros(venv))
        assert not dones.any()
    obs, _, dones, infos = venv.step(zeros(venv))  # the last decision: every member truncates
    assert dones.all()
    for i, info in enumerate(infos):
        assert info["TimeLimit.truncated"]
        assert info["terminal_observation"][0] == pytest.approx(1.0)  # progress: budget spent
        assert "wall_time" in info
        assert obs[i][0] < 1.0  # the new episode's first observation (after its warm-up)
    assert venv.member_tasks[0].spec != first_tasks[0].spec
    assert len({mt.spec.width for mt in venv.member_tasks}) == 1  # one architecture


class _OneExploding:
    """Member 0's first task (the first draw's) explodes at any lr; everything else is benign.

    ``shape``: the tasks' sizes; ``scale``: the exploding task's input scale.
    """

    def __init__(self, shape: dict = SHAPE, scale: float = 1e6) -> None:
        self.shape, self.scale = shape, scale
        self.redraws = 0

    def draw(self, rng, count):
        base = SyntheticSpec(**self.shape, steps=40, batch_size=16)
        specs = [dataclasses.replace(base, seed=i) for i in range(count)]
        specs[0] = dataclasses.replace(base, input_scale=self.scale)
        return [MemberTask(s.task(), s.generate(), s) for s in specs]

    def redraw(self, rng, like):
        self.redraws += 1
        spec = dataclasses.replace(like.spec, input_scale=1.0, seed=50 + self.redraws)
        return MemberTask(spec.task(), spec.generate(), spec)


def test_diverged_member_restarts_on_a_task_of_its_shape_and_finishes_with_the_others():
    source = _OneExploding()
    venv = make_venv(source, optimizer="sgd", initial={"lr": 1.0, "momentum": 0.99})
    venv.seed(1)
    venv.reset()
    intervals = venv.plan.intervals
    _, rewards, dones, infos = venv.step(zeros(venv))
    assert dones.tolist() == [True, False, False]
    assert infos[0]["diverged"]
    assert rewards[0] <= 0.0
    assert not infos[0]["TimeLimit.truncated"]
    assert source.redraws == 1
    restarted = venv.get_attr("plan", indices=[0])[0]
    assert restarted == venv.plan.rejoin(2)
    assert venv.reset_infos[0]["samples"] == restarted.interval  # its own warm-up
    assert venv.get_attr("episode", indices=[0])[0].history[-1]["progress"] < 1.0
    for _ in range(restarted.intervals - 2):  # one step per decision of the new episode
        assert not venv.step(zeros(venv))[2].any()
    assert venv.step(zeros(venv))[2].all()  # the restarted episode ends with the others
    assert restarted.intervals - 1 == intervals - 2


@pytest.mark.parametrize(
    ("rise_guard", "probe_start", "fall_hold"),
    [(False, False, False), (True, False, False), (False, True, False), (False, False, True)],
)
def test_member_trajectory_equals_an_hptuneenv_episode(rise_guard, probe_start, fall_hold):
    """Parity: one implementation of the episode, whatever trains the model (the rise guard's
    holds included: with it, both members raise the rate at every decision; a layout-1
    probe start: both probe and start at the probe's rate; the fall hold: the second member
    lowers the rate while its loss still falls)."""
    from hpenv.base import ProbeStart
    from hpenv.hyperparams import FALL_HOLD_THRESHOLD
    from hpenv.probe import ProbeConfig

    task = SyntheticSpec(**SHAPE, steps=30, batch_size=16, seed=4).task()
    settings = {**VEC, "rise_guard": rise_guard}
    if fall_hold:
        settings["fall_hold"] = FALL_HOLD_THRESHOLD
    budget = 100
    if rise_guard:  # started at a rate where rises stop helping
        settings["initial"] = {"lr": 0.1}
    if probe_start:  # 100 steps, a 10-step probe
        settings.update(
            probe=ProbeConfig(min_steps=5), probe_start=ProbeStart(), initial={"lr": 0.3}
        )
        budget = 1600
    venv = PopulationVecEnv(task, 2, budget=budget, **settings)
    venv.seed(3)
    obs = venv.reset()
    if probe_start:  # a member whose probe suggests a rate starts there, not at 0.3
        assert any(info["hparams"]["lr"] != 0.3 for info in venv.reset_infos)
    sign = 1.0 if rise_guard else -1.0
    actions = [np.array([[a], [sign * a]], np.float32) for a in (0.5, 1.0, 0.3)]
    envs = []
    for i in range(2):
        env = HPTuneEnv(task, budget=budget, **settings)
        first, info = env.reset(seed=venv.episode_seeds[i], options={"task": task})
        np.testing.assert_allclose(first, obs[i], atol=1e-4)
        assert info["hparams"] == venv.reset_infos[i]["hparams"]
        envs.append(env)
    for action in actions:
        obs, rewards, dones, infos = venv.step(action)
        for i, env in enumerate(envs):
            o, r, terminated, truncated, info = env.step(action[i])
            expected = info if not dones[i] else infos[i]
            np.testing.assert_allclose(infos[i].get("terminal_observation", obs[i]), o, atol=1e-4)
            assert rewards[i] == pytest.approx(r, abs=1e-4)
            assert dones[i] == (terminated or truncated)
            assert infos[i]["hparams"] == info["hparams"]
            rel = 1e-4 if probe_start else 1e-5  # 100 steps: batched float sums drift further
            assert infos[i]["val_loss"] == pytest.approx(info["val_loss"], rel=rel)
            assert set(expected) - {"terminal_observation", "TimeLimit.truncated"} == set(info)
    held = [env.episode.guard.held if env.episode.guard else 0 for env in envs]
    assert (sum(held) > 0) == rise_guard
    falls = [env.episode.fall_hold.held if env.episode.fall_hold else 0 for env in envs]
    assert (sum(falls) > 0) == fall_hold  # and the members' rates equal these episodes'


def test_same_seed_same_trajectories():
    def trajectory(seed: int) -> list[np.ndarray]:
        venv = make_venv(seed=seed)
        trace = [venv.reset()]
        for _ in range(4):  # across a population change
            trace.append(venv.step(np.full((3, 1), 0.3, np.float32))[0])
        return trace

    a, b = trajectory(7), trajectory(7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], trajectory(8)[1])


def test_real_task_members_are_seeds_and_subsets():
    venv = make_venv("digits", num_envs=2, budget=64, subset=0.5, data_fn=tiny_task_data)
    venv.seed(0)
    venv.reset()
    datas = [mt.data for mt in venv.member_tasks]
    assert datas[0].train_x.shape == datas[1].train_x.shape == (32, 64)
    assert not torch.equal(datas[0].train_x, datas[1].train_x)
    assert venv.run_seeds[0] != venv.run_seeds[1]
    infos = venv.step(zeros(venv))[3]
    assert infos[0]["task"] == "digits/mlp"


def test_ppo_learns_over_vec_monitor_and_vec_normalize():
    venv = VecMonitor(VecNormalize(make_venv(num_envs=4, seed=0)))
    model = PPO(
        "MlpPolicy", venv, n_steps=8, batch_size=16, policy_kwargs={"net_arch": [16]}, seed=0
    )
    model.learn(64)
    assert model.num_timesteps == 64
    assert len(model.ep_info_buffer) > 0  # VecMonitor saw complete episodes
