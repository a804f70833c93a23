"""EpisodeConfig: one object of episode settings, checked once, the same for every environment."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import numpy as np
import pytest

from agents.metatrain.config import MetaTrainConfig, episode_config
from agents.metatrain.population_vec import META_INITIAL, PopulationVecEnv
from agents.metatrain.suite import make_env
from agents.metatrain.vec_env import build_population, build_vec_env, env_kwargs
from hpenv.env import DEFAULT_INITIAL, Around, EpisodeConfig, Fidelity, HPTuneEnv
from hpenv.errors import InputError
from hpenv.plan import FIDELITY
from hpenv.tasks import SyntheticSpec

TASK = SyntheticSpec(
    input_dim=6, num_classes=3, num_samples=120, width=16, depth=2, steps=30, batch_size=16, seed=4
).task()


def test_one_config_gives_both_environments_the_same_episode():
    config = EpisodeConfig(budget=100, decisions=3, initial={"lr": Around(100.0, 30.0)})
    venv = PopulationVecEnv(TASK, 1, config=config, device="cpu", seed=3)
    obs = venv.reset()
    env = HPTuneEnv(TASK, config=config, device="cpu")
    first, info = env.reset(seed=venv.episode_seeds[0], options={"task": TASK})
    assert env.config == venv.config == config
    assert env.plan == venv.plan
    np.testing.assert_allclose(first, obs[0], atol=1e-4)
    assert info["hparams"] == venv.reset_infos[0]["hparams"]
    for a in (0.5, -1.0):
        step = venv.step(np.array([[a]], np.float32))
        o, r, *_ = env.step(np.array([a], np.float32))
        np.testing.assert_allclose(step[3][0].get("terminal_observation", step[0][0]), o, atol=1e-4)
        assert step[1][0] == pytest.approx(r, abs=1e-4)


def test_settings_build_the_config_with_each_environments_initial_default():
    env = HPTuneEnv(TASK, device="cpu", budget=100, decisions=3)
    assert env.config == EpisodeConfig(budget=100, decisions=3)
    assert env.config.initial == DEFAULT_INITIAL
    assert (env.tuned, env.action_mode, env.decisions) == (("lr",), "continuous", 3)
    venv = PopulationVecEnv(TASK, 2, device="cpu", budget=100, decisions=3)
    assert venv.config == EpisodeConfig(budget=100, decisions=3, initial=META_INITIAL)
    assert PopulationVecEnv(TASK, 1, device="cpu", initial=None).config.initial == META_INITIAL
    assert venv.get_attr("config") == [venv.config] * 2
    assert venv.get_attr("decisions") == [3, 3]
    given = EpisodeConfig()  # a given config is used as it is, its initial included
    assert PopulationVecEnv(TASK, 1, config=given, device="cpu").config.initial == DEFAULT_INITIAL


BAD: list[tuple[dict[str, Any], str]] = [
    ({"tuned": ()}, "at least one"),
    ({"tuned": ("lr", "lr")}, "twice"),
    ({"tuned": ("learning_rate",)}, "cannot tune 'learning_rate'"),
    ({"action_mode": "binary"}, "action_mode must be one of"),
    ({"budget": 10, "budget_epochs": 1.0}, "not both"),
    ({"budget": 100.5}, "budget must be a whole number"),
    ({"budget_epochs": 0.0}, "budget_epochs must be > 0"),
    ({"subset": 1.5}, r"subset must be in \(0, 1\]"),
    ({"val_size": -1}, "val_size must be >= 0"),
    ({"decisions": 0}, "decisions must be a whole number"),
    ({"decisions": 2.5}, "decisions must be a whole number"),
    ({"interval": 0}, "interval must be a whole number"),
    ({"budget": 100, "decisions": 200}, "cannot be split into 200 decisions"),
    ({"reward": "test_accuracy"}, "unknown reward"),
    ({"divergence_penalty": -1.0}, "divergence_penalty must be > 0"),
    ({"initial": {"lr": 1e3}}, "initial lr=1000.0 is outside its range"),
    ({"initial": {"lr_max": 0.1}}, "cannot tune 'lr_max'"),
    ({"initial": 0.01}, "initial must map"),
    ({"optimizer": "lion"}, "optimizer must be one of"),
    ({"fidelity": {"synthetic": {"epochs": 2}}}, "unknown fields"),
    ({"fidelity": [("synthetic", 1)]}, "fidelity must map"),
    ({"lr_scale": 0.5}, "lr_scale must be a number >= 1"),
]


@pytest.mark.parametrize(("settings", "match"), BAD)
def test_a_bad_setting_is_refused_with_one_message_everywhere(settings: dict[str, Any], match: str):
    with pytest.raises(ValueError, match=match) as direct:
        EpisodeConfig(**settings)
    with pytest.raises(ValueError, match=match) as env:
        HPTuneEnv(TASK, device="cpu", **settings)
    with pytest.raises(ValueError, match=match) as venv:
        PopulationVecEnv(TASK, 1, device="cpu", **settings)
    assert str(direct.value) == str(env.value) == str(venv.value)
    assert type(direct.value) is type(env.value) is type(venv.value)


@pytest.mark.parametrize("build", [HPTuneEnv, lambda t, **kw: PopulationVecEnv(t, 1, **kw)])
def test_config_and_settings_are_not_given_together(build: Any):
    with pytest.raises(InputError, match=r"not both .*config=config.replace\(budget=...\)"):
        build(TASK, config=EpisodeConfig(), budget=100, device="cpu")
    with pytest.raises(InputError, match="config must be an EpisodeConfig"):
        build(TASK, config={"budget": 100}, device="cpu")
    with pytest.raises(TypeError, match=r"unknown episode settings \['budgets'\]"):
        build(TASK, budgets=100, device="cpu")


def test_the_config_is_frozen_and_pickles():
    initial = {"lr": Around(100.0, 30.0), "momentum": (0.8, 0.95)}
    config = EpisodeConfig(
        tuned=("lr", "momentum"), decisions=4, initial=initial, fidelity=FIDELITY
    )
    initial["lr"] = 0.5  # the config keeps its own copy
    assert config.initial["lr"] == Around(100.0, 30.0)
    copy = pickle.loads(pickle.dumps(config))
    assert copy == config
    assert hash(copy) == hash(config)
    assert copy.fidelity["imdb"] == FIDELITY["imdb"]
    with pytest.raises(TypeError):
        config.initial["lr"] = 0.1  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.decisions = 5  # type: ignore[misc]
    assert config.replace(decisions=5).decisions == 5
    with pytest.raises(ValueError, match="decisions must be"):
        config.replace(decisions=0)


def test_conveniences_become_canonical_values():
    config = EpisodeConfig(tuned="lr", fidelity={"digits": {"subset": 0.5}})  # type: ignore[arg-type]
    assert config.tuned == ("lr",)
    assert config.fidelity == {"digits": Fidelity(subset=0.5)}
    assert config.task_fidelity("digits") == Fidelity(subset=0.5)
    assert EpisodeConfig(subset=0.2).task_fidelity("mnist") == Fidelity(subset=0.2)


@pytest.mark.parametrize("budget", [None, 160])
def test_every_vec_env_of_one_run_gets_the_same_config(budget: int | None):
    run = MetaTrainConfig(n_envs=2, decisions=4, budget=budget, lr_below=50.0)
    tasks = ["synthetic", "digits"]
    expected = episode_config(run)
    assert expected.initial == {"lr": Around(50.0, 30.0)}
    assert expected.fidelity == (FIDELITY if budget is None else {})
    kwargs = pickle.loads(pickle.dumps(env_kwargs(run, tasks)))  # as SubprocVecEnv sends it
    assert make_env(**kwargs).config == expected
    assert build_population(run, tasks).config == expected
    group = dataclasses.replace(run, n_envs=1, data_dir="/data")  # a Ray actor's population
    assert build_population(group, tasks).config == expected


def test_subprocess_workers_get_the_runs_config():
    run = MetaTrainConfig(train_tasks=("synthetic",), n_envs=2, decisions=4, budget=160)
    venv = build_vec_env(run, ["synthetic"])  # SubprocVecEnv, forkserver: the config is pickled
    try:
        assert venv.get_attr("config") == [episode_config(run)] * 2
    finally:
        venv.close()


def test_a_probe_start_is_a_layout_1_episodes_and_needs_the_probe():
    """`EpisodeConfig.probe_start`: with a probe and no base (layout 1); hashable and
    picklable like the rest of the config."""
    from hpenv.base import BaseConfig, ProbeStart
    from hpenv.probe import ProbeConfig

    config = EpisodeConfig(probe=ProbeConfig(), probe_start=ProbeStart(within=10.0))
    assert config.layout == 1
    assert pickle.loads(pickle.dumps(config)) == config
    assert hash(config) == hash(config.replace())
    with pytest.raises(InputError, match="give probe=ProbeConfig"):
        EpisodeConfig(probe_start=ProbeStart())
    with pytest.raises(InputError, match="starts at its base"):
        EpisodeConfig(probe=ProbeConfig(), base=BaseConfig(), probe_start=ProbeStart())
    with pytest.raises(InputError, match="must be a ProbeStart"):
        EpisodeConfig(probe=ProbeConfig(), probe_start="on")  # type: ignore[arg-type]


def test_a_hidden_rate_scale_moves_the_optimizers_rate_not_the_observed_one():
    """`EpisodeConfig.lr_scale`: each episode's optimizer trains at a drawn multiple of the
    rate the policy sets and observes; without it nothing is drawn (episodes unchanged);
    refused with a probe and by the population engine, and carried by a meta-training run."""
    from hpenv.hyperparams import TUNABLES
    from hpenv.observation import INDEX
    from hpenv.probe import ProbeConfig

    env = HPTuneEnv(TASK, device="cpu", budget=100, decisions=3, lr_scale=10.0)
    scales = []
    for seed in range(8):
        obs, info = env.reset(seed=seed)
        assert env.run is not None
        scale, lr = info["lr_scale"], env.run.hparams.lr
        assert 0.1 <= scale <= 10.0
        assert env.run.optimizer.param_groups[0]["lr"] == pytest.approx(lr * scale)
        assert obs[INDEX["lr"]] == pytest.approx(TUNABLES["lr"].normalise(lr), abs=1e-5)
        env.step(np.array([1.0], np.float32))  # the action moves the rate; the scale stays
        assert env.run.optimizer.param_groups[0]["lr"] == pytest.approx(env.run.hparams.lr * scale)
        assert env.run.hparams.lr > lr
        scales.append(scale)
    assert min(scales) < 1.0 < max(scales)

    rng = np.random.default_rng(0)
    assert EpisodeConfig().draw_lr_scale(rng) == 1.0
    assert rng.random() == np.random.default_rng(0).random()  # nothing was drawn
    plain = HPTuneEnv(TASK, device="cpu", budget=100, decisions=3)
    _, info = plain.reset(seed=0)
    assert "lr_scale" not in info
    assert plain.run is not None
    assert plain.run.lr_scale == 1.0

    with pytest.raises(InputError, match="give probe or lr_scale"):
        EpisodeConfig(probe=ProbeConfig(), lr_scale=10.0)
    with pytest.raises(InputError, match="does not draw a hidden rate scale"):
        PopulationVecEnv(TASK, 1, device="cpu", lr_scale=10.0)
    with pytest.raises(InputError, match="--lr-scale"):
        MetaTrainConfig(vec_env="population", lr_scale=10.0)
    run = MetaTrainConfig(n_envs=2, decisions=4, lr_scale=10.0)
    assert episode_config(run).lr_scale == 10.0
    from agents.metatrain.config import env_metadata

    assert env_metadata(run)["lr_scale"] == 10.0
