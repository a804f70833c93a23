"""Meta-training: a tiny run, resume, and the frozen policy artifact."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.metatrain import MetaTrainConfig, load_checkpoint, meta_train
from agents.policy import (
    FrozenPolicy,
    IncompatiblePolicyError,
    PolicyActor,
    PolicyLoadError,
    load_policy,
)
from hpenv.base import BaseConfig, BaseSchedule
from hpenv.hyperparams import FALL_HOLD_THRESHOLD, HParams
from hpenv.observation import OBS_HIGH, OBS_LOW, OBS_SIZE
from hpenv.restart import RestartConfig

TINY = MetaTrainConfig(
    train_tasks=("synthetic", "digits"),
    eval_tasks=("synthetic-heldout",),
    total_steps=96,
    n_envs=2,
    vec_env="dummy",
    decisions=4,
    budget=160,
    n_steps=16,
    batch_size=16,
    n_epochs=2,
    net_arch=(16,),
    eval_every=48,
    eval_seeds=(0,),
    checkpoint_every=32,
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("meta")
    config = dataclasses.replace(TINY, out_dir=str(out))
    meta_train(config)
    return out


def test_best_selection_reads_the_runs_record(tiny_run: Path, tmp_path: Path):
    """`best_selection`: the one reader of best_policy.json (resume, ensemble.json, the
    summary line, selection_vs_heldout.py)."""
    from agents.metatrain.loop import best_selection
    from hpenv.errors import InputError

    record = best_selection(tiny_run)
    assert record is not None
    assert record["agent_steps"] > 0
    assert best_selection(tmp_path) is None  # no selection
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "best_policy.json").write_text("{not json")
    with pytest.raises(InputError, match=r"best_policy\.json"):
        best_selection(broken)


def random_obs(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(OBS_LOW, OBS_HIGH, size=(n, OBS_SIZE)).astype(np.float32)


def test_tiny_run_writes_events_checkpoint_and_policy(tiny_run: Path):
    assert list(tiny_run.glob("events.out.tfevents*"))
    assert (tiny_run / "checkpoints" / "latest.pt").is_file()
    assert (tiny_run / "policy.pt").is_file()
    assert (tiny_run / "best_policy.pt").is_file()
    assert (tiny_run / "config.json").is_file()
    checkpoint = load_checkpoint(tiny_run / "checkpoints" / "latest.pt")
    assert checkpoint["num_timesteps"] >= TINY.total_steps
    assert checkpoint["episodes"] >= TINY.total_steps // TINY.decisions - TINY.n_envs
    policy = load_policy(tiny_run / "policy.pt")
    assert policy.metadata.tasks == ("synthetic", "digits")
    assert policy.metadata.agent_steps == checkpoint["num_timesteps"]


def test_tensorboard_has_project_metrics(tiny_run: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tiny_run))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert "hpenv/digits/final_val_accuracy" in scalars
    assert "hpenv/synthetic/divergence_rate" in scalars
    assert "eval/mean_return" in scalars
    assert "train/policy_gradient_loss" in scalars


def test_resume_continues_steps_and_normalisation(tiny_run: Path, tmp_path: Path):
    import shutil

    out = tmp_path / "resumed"
    shutil.copytree(tiny_run, out)
    before = load_checkpoint(out / "checkpoints" / "latest.pt")
    config = dataclasses.replace(TINY, out_dir=str(out), total_steps=160, resume=True)
    meta_train(config)
    after = load_checkpoint(out / "checkpoints" / "latest.pt")
    assert after["num_timesteps"] >= 160
    assert after["num_timesteps"] > before["num_timesteps"]
    assert after["obs_rms"]["count"] > before["obs_rms"]["count"]
    assert after["episodes"] > before["episodes"]


def test_resume_refuses_changed_config_and_fresh_run_refuses_existing(tiny_run: Path):
    with pytest.raises(ValueError, match="changed configuration"):
        meta_train(dataclasses.replace(TINY, out_dir=str(tiny_run), resume=True, decisions=5))
    with pytest.raises(ValueError, match="already holds a run"):
        meta_train(dataclasses.replace(TINY, out_dir=str(tiny_run)))


def test_config_validation():
    with pytest.raises(ValueError, match="held out"):
        MetaTrainConfig(train_tasks=("digits",), eval_tasks=("digits",))
    with pytest.raises(ValueError, match="out_dir"):
        MetaTrainConfig(resume=True)
    with pytest.raises(ValueError, match="n_envs"):
        MetaTrainConfig(n_envs=0)
    with pytest.raises(ValueError, match="ensemble must be >= 1"):
        MetaTrainConfig(ensemble=0)


def test_frozen_artifact_predicts_like_the_live_model(tiny_run: Path, tmp_path: Path):
    from stable_baselines3 import PPO
    from stable_baselines3.common.running_mean_std import RunningMeanStd
    from stable_baselines3.common.vec_env import DummyVecEnv

    from agents.metatrain.config import episode_config
    from agents.metatrain.suite import make_env

    policy = load_policy(tiny_run / "policy.pt")
    obs = random_obs(32)
    before, _ = policy.predict(obs)
    copy = policy.save(tmp_path / "copy.pt")
    after, _ = load_policy(copy).predict(obs)
    np.testing.assert_array_equal(before, after)

    # The checkpoint holds the live model as state dicts: rebuild it and compare.
    checkpoint = load_checkpoint(tiny_run / "checkpoints" / "latest.pt")
    env = DummyVecEnv([lambda: make_env(["digits"], episode_config(TINY))])
    model = PPO("MlpPolicy", env, policy_kwargs={"net_arch": [16]}, device="cpu")
    model.policy.load_state_dict(checkpoint["policy"])
    rms = RunningMeanStd(shape=(OBS_SIZE,))
    rms.mean = checkpoint["obs_rms"]["mean"].numpy()
    rms.var = checkpoint["obs_rms"]["var"].numpy()
    normalised = np.clip((obs - rms.mean) / np.sqrt(rms.var + 1e-8), -10, 10).astype(np.float32)
    live, _ = model.predict(normalised, deterministic=True)
    np.testing.assert_allclose(live, before, rtol=1e-6, atol=1e-6)
    frozen = FrozenPolicy.from_model(
        model, rms, 10.0, 1e-8, tuned=("lr",), action_mode="continuous"
    )
    np.testing.assert_allclose(frozen.predict(obs)[0], before, rtol=1e-6, atol=1e-6)


def test_actor_matches_batch_predict(tiny_run: Path):
    policy = load_policy(tiny_run / "policy.pt")
    actor = PolicyActor(policy)
    obs = random_obs(3, seed=1)
    for row in obs:
        np.testing.assert_array_equal(actor(row), policy.predict(row[None])[0][0])


def test_damaged_and_incompatible_artifacts_are_refused(tiny_run: Path, tmp_path: Path):
    good = (tiny_run / "policy.pt").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(PolicyLoadError, match="truncated or not a torch file"):
        load_policy(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a policy")
    with pytest.raises(PolicyLoadError):
        load_policy(garbage)
    with pytest.raises(FileNotFoundError):
        load_policy(tmp_path / "missing.pt")

    blob = torch.load(tiny_run / "policy.pt", weights_only=True)
    blob["metadata"]["obs_version"] = 999
    old = tmp_path / "old.pt"
    torch.save(blob, old)
    with pytest.raises(IncompatiblePolicyError, match="observation layout v999"):
        load_policy(old)
    blob = torch.load(tiny_run / "policy.pt", weights_only=True)
    blob["metadata"]["ranges"]["lr"]["max_step"] = 5.0
    moved = tmp_path / "moved.pt"
    torch.save(blob, moved)
    with pytest.raises(IncompatiblePolicyError, match="ranges or step sizes"):
        load_policy(moved)


def test_recurrent_policy_option_trains_and_freezes(tmp_path: Path):
    config = dataclasses.replace(
        TINY,
        algorithm="recurrent_ppo",
        total_steps=32,
        n_envs=1,
        eval_every=0,
        out_dir=str(tmp_path / "lstm"),
    )
    meta_train(config)
    policy = load_policy(tmp_path / "lstm" / "policy.pt")
    assert policy.recurrent
    actor = PolicyActor(policy)
    first = [actor(row) for row in random_obs(3, seed=2)]
    actor.reset()
    again = [actor(row) for row in random_obs(3, seed=2)]
    np.testing.assert_array_equal(np.array(first), np.array(again))  # state restarts on reset
    assert all(-1 <= a[0] <= 1 for a in first)


def test_population_meta_training_runs_and_resumes(tmp_path: Path):
    config = dataclasses.replace(
        TINY, vec_env="population", n_envs=8, n_steps=8, batch_size=32, total_steps=128,
        eval_every=64, out_dir=str(tmp_path / "pop"),
    )  # fmt: skip
    meta_train(config)
    first = load_checkpoint(tmp_path / "pop" / "checkpoints" / "latest.pt")
    assert first["num_timesteps"] == 128
    assert first["episodes"] > 0
    policy = load_policy(tmp_path / "pop" / "policy.pt")
    assert policy.metadata.tasks == ("synthetic", "digits")
    meta_train(dataclasses.replace(config, total_steps=192, resume=True))
    assert load_checkpoint(tmp_path / "pop" / "checkpoints" / "latest.pt")["num_timesteps"] == 192


def test_population_leaves_out_tasks_it_cannot_batch():
    from agents.metatrain.vec_env import batchable

    kept, skipped = batchable(["synthetic", "digits", "imdb"])
    assert kept == ["synthetic", "digits"]
    assert "LSTM" in skipped["imdb"]


def test_the_population_engine_refuses_to_tune_batch_size():
    with pytest.raises(ValueError, match="cannot tune batch_size: use --vec-env subprocess"):
        dataclasses.replace(TINY, vec_env="population", tuned=("lr", "batch_size"))


def test_rounded_budget_is_announced_and_no_selection_claims_no_best_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """PPO collects whole rollouts (n_steps x n_envs): a budget that is not a multiple is
    rounded up with one line saying so; without held-out evaluation (eval_every 0) there is
    no best policy, and the run does not claim one."""
    config = dataclasses.replace(
        TINY, vec_env="population", n_envs=4, n_steps=8, total_steps=40, eval_every=0,
        out_dir=str(tmp_path),
    )  # fmt: skip
    meta_train(config)
    out = capsys.readouterr().out
    assert "agent steps: 64 instead of --total-steps 40" in out
    assert "n_steps x n_envs = 8 x 4 = 32" in out
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.pt")["num_timesteps"] == 64
    assert (tmp_path / "policy.pt").is_file()
    assert not (tmp_path / "best_policy.pt").exists()
    assert "best on held-out" not in out
    assert "no best policy: no held-out selection (--eval-every 0)" in out


def test_a_data_directory_that_does_not_exist_is_an_error(tmp_path: Path):
    """A task whose data is missing is skipped with a message, but not silently because the
    data directory named (say ``../shared/datasets`` in another clone) does not exist."""
    from agents.metatrain.suite import available

    with pytest.raises(FileNotFoundError, match=r"nowhere \(--data-dir\) does not exist.*mnist"):
        available(["synthetic", "digits", "mnist"], str(tmp_path / "nowhere"))
    ok, missing = available(["synthetic", "digits", "mnist"], str(tmp_path))  # exists, empty
    assert ok == ["synthetic", "digits"]
    assert list(missing) == ["mnist"]
    assert available(["synthetic", "digits"], str(tmp_path / "nowhere"))[0] == [
        "synthetic",
        "digits",
    ]


def test_layout_2_meta_training_freezes_a_layout_2_policy(tmp_path: Path):
    """--layout 2: probe, base, residual actions, the paired reward; the artifact says so."""
    from agents.metatrain.config import episode_config
    from agents.policy import load_policy

    config = dataclasses.replace(
        TINY, layout=2, reward="paired_log_val_loss", out_dir=str(tmp_path / "run")
    )
    episode = episode_config(config)
    assert episode.layout == 2
    assert episode.probe is not None
    policy = load_policy(meta_train(config))
    assert (policy.metadata.obs_version, policy.metadata.action_kind) == (2, "residual")
    assert policy.metadata.env_config["layout"] == 2
    assert policy.metadata.base_config() == episode.base  # recorded, read back by drivers
    assert policy.metadata.probe_config() == episode.probe


def test_layout_2_meta_training_on_the_population_engine(tmp_path: Path):
    """--layout 2 --reward paired_log_val_loss --vec-env population: reference members in
    groups of --reference-group; a population size that is not a multiple is refused."""
    from agents.policy import load_policy

    with pytest.raises(ValueError, match="multiple of --reference-group"):
        dataclasses.replace(
            TINY, vec_env="population", n_envs=6, layout=2, reward="paired_log_val_loss"
        )
    config = dataclasses.replace(
        TINY, vec_env="population", n_envs=8, n_steps=8, batch_size=32, total_steps=64,
        eval_every=0, layout=2, reward="paired_log_val_loss", out_dir=str(tmp_path / "run"),
    )  # fmt: skip
    policy = load_policy(meta_train(config))
    assert (policy.metadata.obs_version, policy.metadata.action_kind) == (2, "residual")


def test_layout_3_meta_training_observes_the_drawn_optimizer(tmp_path: Path):
    """--layout 3 --optimizers ...: the episodes' observation adds whether the run's optimizer
    is SGD (both engines), the artifact is a layout-3 policy with multiplicative actions, an
    adaptation keeps the layout, and a base (layout 2) refuses it."""
    from agents.metatrain.adapt_config import AdaptConfig, session_config
    from agents.metatrain.config import episode_config
    from hpenv.errors import InputError

    with pytest.raises(InputError, match="layout must be 1, 2 or 3"):
        dataclasses.replace(TINY, layout=4)
    with pytest.raises(InputError, match="observe_optimizer"):
        episode_config(TINY).replace(observe_optimizer=True, base=BaseConfig())
    config = dataclasses.replace(
        TINY, vec_env="population", n_envs=4, n_steps=8, batch_size=16, total_steps=32,
        eval_every=32, layout=3, optimizers=("adam", "sgd"),
        synthetic_optimizers=("adam", "sgd"), out_dir=str(tmp_path / "run"),
    )  # fmt: skip
    episode = episode_config(config)
    assert (episode.layout, episode.observe_optimizer, episode.base) == (3, True, None)
    policy = load_policy(meta_train(config))
    assert (policy.metadata.obs_version, policy.metadata.action_kind) == (3, "multiplicative")
    assert policy.metadata.obs_size == OBS_SIZE + 1
    assert policy.metadata.env_config["layout"] == 3
    adapted = session_config(AdaptConfig(task="digits"), policy.metadata, clip_obs=10.0)
    assert adapted.layout == 3
    from hpenv.env import HPTuneEnv

    env = HPTuneEnv("synthetic", config=episode.replace(budget=160, optimizers=("sgd",)))
    obs, _ = env.reset(seed=0)
    assert obs.shape == (OBS_SIZE + 1,)
    assert obs[OBS_SIZE] == 1.0


def test_synthetic_steps_set_the_family_budgets():
    """--synthetic-steps LOW,HIGH: the family's budget range, recorded in the artifact's env
    config; a short draw trains without a probe (layout 2), as a held-out 35-step task does."""
    from agents.metatrain.config import env_metadata, episode_config
    from agents.metatrain.suite import make_env
    from hpenv.errors import InputError

    for bad in ((50, 10), (30,), (0, 10)):
        with pytest.raises(InputError, match="synthetic_steps must be LOW,HIGH"):
            dataclasses.replace(TINY, synthetic_steps=bad)
    assert TINY.synthetic_family().steps == (150, 1_500)  # the default family is unchanged
    config = dataclasses.replace(
        TINY, train_tasks=("synthetic",), synthetic_steps=(30, 40), layout=2, budget=None
    )  # budget None: each task's own (the family's steps), not TINY's 160 samples
    family = config.synthetic_family()
    specs = [family.sample(np.random.default_rng(i)) for i in range(20)]
    assert all(30 <= s.steps <= 40 for s in specs)
    assert env_metadata(config)["synthetic_steps"] == (30, 40)
    env = make_env(["synthetic"], episode_config(config), synthetic=family)
    env.reset(seed=0)
    run = env.unwrapped.run
    steps = env.unwrapped.plan.budget / run.hparams.batch_size
    assert steps < 80
    assert env.unwrapped.plan.probe == 0  # too short for a probe


def test_probe_min_steps_gives_short_runs_a_probe():
    """--probe-min-steps: the probe's fewest steps, so runs of 4x that many steps probe; the
    artifact records the probe the episodes ran."""
    from agents.metatrain.config import env_metadata, episode_config
    from agents.metatrain.suite import make_env
    from hpenv.errors import InputError

    with pytest.raises(InputError, match="probe_min_steps"):
        dataclasses.replace(TINY, probe_min_steps=1)
    config = dataclasses.replace(
        TINY, train_tasks=("synthetic",), synthetic_steps=(30, 40), layout=2, budget=None,
        probe_min_steps=6,
    )  # fmt: skip
    episode = episode_config(config)
    assert episode.probe is not None
    assert episode.probe.min_steps == 6
    assert env_metadata(config)["probe"]["min_steps"] == 6
    env = make_env(["synthetic"], episode, synthetic=config.synthetic_family())
    env.reset(seed=0)  # the 30-40 step run of the test above, now with a probe
    batch = env.unwrapped.run.hparams.batch_size
    steps = env.unwrapped.plan.budget // batch
    assert 24 <= steps < 80
    assert env.unwrapped.plan.probe == episode.probe.steps_for(steps) * batch > 0


def test_base_short_rule_reaches_every_engine():
    """--base-short-rule: short runs anchor their base at that reading of their own probe, in
    worker envs and populations alike; the artifact records it."""
    from agents.metatrain.config import env_metadata, episode_config
    from agents.metatrain.suite import make_env
    from agents.metatrain.vec_env import build_population
    from hpenv.errors import InputError

    with pytest.raises(InputError, match="base_short_steps"):
        dataclasses.replace(TINY, base_short_steps=0)
    config = dataclasses.replace(
        TINY, train_tasks=("synthetic",), synthetic_steps=(90, 120), layout=2, budget=None,
        base_short_rule="min/10", base_short_steps=400,
    )  # fmt: skip
    assert env_metadata(config)["base"]["short_rule"] == "min/10"
    env = make_env(["synthetic"], episode_config(config), synthetic=config.synthetic_family())
    env.reset(seed=0)
    episode = env.unwrapped.episode
    assert episode.probe is not None  # 90-120 steps and more: probed, and under 400 steps
    assert env.unwrapped.plan.budget // env.unwrapped.run.hparams.batch_size < 400
    assert episode.base.anchor == pytest.approx(episode.probe.suggestion("min/10"))
    venv = build_population(dataclasses.replace(config, vec_env="population", n_envs=2),
                            ["synthetic"])  # fmt: skip
    venv.seed(0)
    venv.reset()
    for i, member in enumerate(venv.episodes):
        steps = member.plan.budget // venv.population.hparams[i].batch_size
        rule = "min/10" if steps < 400 else "min/30"
        assert member.base.anchor == pytest.approx(member.probe.suggestion(rule))


def test_steer_range_reaches_every_engine_and_the_frozen_policy(tmp_path: Path):
    """--steer-range: the offset bound of worker envs, populations, and of the policy's
    decisions wherever it is deployed (`PolicyStep` reads the artifact's base config)."""
    from agents.metatrain.config import episode_config
    from agents.metatrain.suite import make_env
    from agents.metatrain.vec_env import build_population
    from agents.policy.step import PolicyStep
    from hpenv.errors import InputError

    with pytest.raises(InputError, match="steer_range"):
        dataclasses.replace(TINY, layout=2, steer_range=1.0)
    config = dataclasses.replace(
        TINY, train_tasks=("synthetic",), layout=2, steer_range=10.0, total_steps=32,
        n_steps=16, eval_every=0, out_dir=str(tmp_path / "run"),
    )  # fmt: skip
    bound = pytest.approx(math.log(10.0))
    env = make_env(["synthetic"], episode_config(config), synthetic=config.synthetic_family())
    assert env.unwrapped._residual.max_offset == bound
    venv = build_population(dataclasses.replace(config, vec_env="population", n_envs=2),
                            ["synthetic"])  # fmt: skip
    assert [r.max_offset for r in venv._residuals] == [bound, bound]
    # --unprobed-steer-range: runs without a probe (this budget has none) keep their own;
    # --steer-mode absolute: the action sets the offset, in every engine and the policy
    config = dataclasses.replace(config, unprobed_steer_range=1000.0, steer_mode="absolute")
    wide = pytest.approx(math.log(1000.0))
    env = make_env(["synthetic"], episode_config(config), synthetic=config.synthetic_family())
    env.reset(seed=0)
    assert env.unwrapped.plan.probe == 0
    assert env.unwrapped._residual.max_offset == wide
    venv = build_population(dataclasses.replace(config, vec_env="population", n_envs=2),
                            ["synthetic"])  # fmt: skip
    venv.reset()
    assert [r.max_offset for r in venv._residuals] == [wide, wide]
    assert [r.mode for r in venv._residuals] == ["absolute"] * 2
    assert env.unwrapped._residual.mode == "absolute"
    meta_train(config)
    policy = load_policy(tmp_path / "run" / "policy.pt")
    assert policy.metadata.base_config().steer_range == 10.0
    step = PolicyStep(policy)
    assert step.residual.max_offset == bound
    assert step.residual.mode == "absolute"
    hparams = HParams(lr=1e-3)  # a run without a probe steers within --unprobed-steer-range
    step.start(2.3, 0.1, hparams, probe=None, base=BaseSchedule(1e-3, 0.0))
    assert step.residual.max_offset == pytest.approx(math.log(1000.0))
    resumed = PolicyStep(policy)
    resumed.load_state_dict(step.state_dict())
    assert resumed.residual.max_offset == pytest.approx(math.log(1000.0))


def test_synthetic_text_members_reach_worker_envs_and_the_policy_record():
    """--synthetic-text: token tasks in HPTuneEnv's worker envs, recorded for adaptation; the
    population engine (which does not batch embeddings) refuses it with a one-line error."""
    from policies import make_policy

    from agents.metatrain.adapt_config import AdaptConfig, session_config
    from agents.metatrain.config import env_metadata, episode_config
    from agents.metatrain.suite import make_env
    from agents.metatrain.vec_env import env_kwargs
    from hpenv.errors import InputError

    with pytest.raises(ValueError, match="text_fraction"):
        dataclasses.replace(TINY, synthetic_text=-0.5)
    for engine in ({"vec_env": "population"}, {"vec_env": "ray", "ray_members_per_actor": 2}):
        with pytest.raises(InputError, match="--synthetic-text"):
            dataclasses.replace(TINY, synthetic_text=0.5, n_envs=2, **engine)
    config = dataclasses.replace(TINY, train_tasks=("synthetic",), synthetic_text=1.0)
    assert env_kwargs(config, ["synthetic"])["synthetic"].text_fraction == 1.0
    env = make_env(["synthetic"], episode_config(config), synthetic=config.synthetic_family())
    _, info = env.reset(seed=0)
    assert info["task"] == "synthetic/conv"
    env.step(env.action_space.sample())
    assert env_metadata(TINY)["synthetic_text"] == 0.0
    policy = make_policy(decisions=4, **{k: v for k, v in env_metadata(config).items()
                                         if k not in ("decisions",)})  # fmt: skip
    adapted = session_config(AdaptConfig(task="digits"), policy.metadata, clip_obs=10.0)
    assert adapted.synthetic_text == 1.0  # an adaptation draws the parent's family


def test_synthetic_conv_members_reach_every_engine():
    """--synthetic-conv: the family's convolutional fraction, in worker envs and populations."""
    from agents.metatrain.config import episode_config
    from agents.metatrain.suite import make_env
    from agents.metatrain.vec_env import build_population, env_kwargs

    with pytest.raises(ValueError, match="conv_fraction"):
        dataclasses.replace(TINY, synthetic_conv=1.5)
    config = dataclasses.replace(TINY, train_tasks=("synthetic",), synthetic_conv=1.0)
    assert env_kwargs(config, ["synthetic"])["synthetic"].conv_fraction == 1.0
    env = make_env(["synthetic"], episode_config(config), synthetic=config.synthetic_family())
    _, info = env.reset(seed=0)
    assert info["task"] == "synthetic/cnn"
    venv = build_population(dataclasses.replace(config, n_envs=2), ["synthetic"])
    venv.seed(0)
    venv.reset()
    assert [t.task.model for t in venv.member_tasks] == ["cnn", "cnn"]


def test_linear_lr_schedule_decays_to_zero_and_a_resume_keeps_counting_from_step_0(
    tmp_path: Path,
):
    import csv

    config = dataclasses.replace(
        TINY, vec_env="population", n_envs=8, n_steps=8, batch_size=32, total_steps=128,
        eval_every=0, lr_schedule="linear", learning_rate=1e-3, out_dir=str(tmp_path / "lin"),
    )  # fmt: skip
    meta_train(config)
    meta_train(dataclasses.replace(config, total_steps=256, resume=True))

    def rates() -> dict[int, float]:
        with open(tmp_path / "lin" / "progress.csv", newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("train/learning_rate")]
        return {int(r["time/total_timesteps"]): float(r["train/learning_rate"]) for r in rows}

    # The update after step t runs at 1e-3 * (1 - t / total) (total 128, then 256 on resume;
    # SB3 writes an update's row with the next rollout's): 64 -> 5e-4, 192 -> 2.5e-4, where a
    # resume counting from its own first step would give 5e-4 again.
    assert rates() == pytest.approx({128: 5e-4, 256: 2.5e-4})
    assert MetaTrainConfig().lr_schedule == "constant"


def test_policy_actions_reads_the_raw_mean_action_on_the_runs_own_episodes(tmp_path: Path, capsys):
    """scripts/policy_actions.py: one raw mean rate action per decision, from the policy's
    Gaussian before SB3's clip, on the episodes of the run's own config."""
    from hpenv.errors import InputError
    from scripts import load_script

    config = dataclasses.replace(TINY, train_tasks=("synthetic",), total_steps=32, n_steps=16,
                                 eval_every=0, out_dir=str(tmp_path / "run"))  # fmt: skip
    meta_train(config)
    script = load_script("policy_actions")
    policy = tmp_path / "run" / "policy.pt"
    means = script.mean_actions(policy, episodes=2, task="synthetic")
    assert means.shape == (2 * TINY.decisions,)
    assert np.isfinite(means).all()
    biased = load_policy(policy)
    with torch.no_grad():  # a constant mean of 5, far past the clip: the script reads 5
        biased.policy.action_net.weight.zero_()
        biased.policy.action_net.bias.fill_(5.0)
    path = biased.save(tmp_path / "run" / "biased.pt")
    assert script.mean_actions(path, episodes=1, task="synthetic") == pytest.approx(5.0)
    assert script.main(["--policies", str(policy), "--episodes", "1", "--task", "synthetic"]) == 0
    assert f"| {policy} | {TINY.decisions} |" in capsys.readouterr().out
    with pytest.raises(InputError, match=r"config\.json"):
        script.run_config(tmp_path / "policy.pt")


def test_held_out_evaluations_leave_the_training_trajectory_alone(tiny_run: Path, tmp_path: Path):
    """Selection episodes draw from the global random streams (model initialisation,
    dropout): they run on a copy of them, so a run with evaluations every 48 steps trains
    the same policy as one without any."""
    out = tmp_path / "no-eval"
    meta_train(dataclasses.replace(TINY, out_dir=str(out), eval_every=0))
    with_eval = load_policy(tiny_run / "policy.pt")
    without = load_policy(out / "policy.pt")
    assert with_eval.fingerprint() == without.fingerprint()
    # The population engine (the v3 recipes' engine, layout 2 with the paired reward) too.
    pop = dataclasses.replace(
        TINY, vec_env="population", n_envs=8, n_steps=8, batch_size=32, total_steps=64,
        layout=2, reward="paired_log_val_loss", reference_group=4, eval_every=16,
    )  # fmt: skip
    prints = []
    for name, every in (("pop-eval", 16), ("pop-none", 0)):
        meta_train(dataclasses.replace(pop, eval_every=every, out_dir=str(tmp_path / name)))
        prints.append(load_policy(tmp_path / name / "policy.pt").fingerprint())
    assert (tmp_path / "pop-eval" / "best_policy.pt").is_file()  # evaluations did run
    assert prints[0] == prints[1]


def _ensemble_stopped_at_its_second_member(
    config: MetaTrainConfig, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Run the ensemble ``config`` (seeds 3 and 4) one after another, member 2 stopped as
    by a signal before it trains; the message of the ensemble's `JobInterrupted`."""
    from agents.metatrain import loop
    from agents.stopping import JobInterrupted

    real = loop.meta_train

    def stopped_at_the_second(member: MetaTrainConfig) -> Path:
        if member.seed == 4:
            raise JobInterrupted("stopped")
        return real(member)

    with monkeypatch.context() as patch:
        patch.setattr(loop, "meta_train", stopped_at_the_second)
        with pytest.raises(JobInterrupted) as stopped:
            meta_train(config)
    return str(stopped.value)


def test_an_ensemble_run_trains_its_seeds_one_after_another_and_resumes_between_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    import json

    from agents.metatrain import resume_config

    out = tmp_path / "ens"
    config = dataclasses.replace(TINY, ensemble=2, seed=3, out_dir=str(out))
    stopped = _ensemble_stopped_at_its_second_member(config, monkeypatch)
    assert re.search(f"member 2 of 2 .*--out-dir {re.escape(str(out))} --resume", stopped)
    assert (out / "s3" / "policy.pt").is_file()
    assert not (out / "policy.pt").exists()
    first = (out / "s3" / "policy.pt").stat().st_mtime_ns
    with pytest.raises(ValueError, match="already holds a run"):
        meta_train(config)  # a fresh run refuses the folder

    meta_train(resume_config(out, {}))
    assert (out / "s3" / "policy.pt").stat().st_mtime_ns == first  # finished: not trained again
    ensemble = load_policy(out / "policy.pt")
    assert ensemble.size == 2
    sources = [m["source"] for m in ensemble.metadata.ensemble["members"]]
    assert sources == ["s3/best_policy.pt", "s4/best_policy.pt"]
    members = [load_policy(out / f"s{s}" / "best_policy.pt") for s in (3, 4)]
    assert [m.fingerprint() for m in ensemble.members] == [m.fingerprint() for m in members]
    assert json.loads((out / "s4" / "config.json").read_text())["seed"] == 4
    record = json.loads((out / "ensemble.json").read_text())
    assert [m["seed"] for m in record["members"]] == [3, 4]
    assert all(m["selected_return"] is not None for m in record["members"])
    assert math.isfinite(record["mean_return"])
    assert "the ensemble's held-out mean return" in capsys.readouterr().out


def test_ensemble_members_trained_at_once_are_the_runs_trained_one_after_another(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """--ensemble-jobs 2: each member in a process of its own, its output in its train.log,
    and the same members and ensemble as one after another."""
    one = dataclasses.replace(TINY, ensemble=2, seed=3, out_dir=str(tmp_path / "one"))
    both = dataclasses.replace(one, ensemble_jobs=2, out_dir=str(tmp_path / "both"))
    meta_train(one)
    capsys.readouterr()
    meta_train(both)
    printed = capsys.readouterr()
    for name in ("s3/policy.pt", "s4/policy.pt", "s3/best_policy.pt", "policy.pt"):
        first, second = (load_policy(tmp_path / run / name) for run in ("one", "both"))
        assert first.fingerprint() == second.fingerprint(), name
    log = (tmp_path / "both" / "s4" / "train.log").read_text()
    assert "frozen policy:" in log  # the member's own lines went to its log
    assert not (tmp_path / "one" / "s4" / "train.log").exists()
    lines = printed.out + printed.err
    assert f"ensemble member 2 of 2: training seed 4 in {tmp_path / 'both' / 's4'}" in lines
    assert "ensemble member 1 of 2 (seed 3) done in" in lines


def test_a_failed_member_stops_the_ensemble_and_quotes_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from agents.metatrain import resume_config

    out = tmp_path / "ens"
    _ensemble_stopped_at_its_second_member(
        dataclasses.replace(TINY, ensemble=2, seed=3, out_dir=str(out)), monkeypatch
    )
    damaged = out / "s4" / "checkpoints" / "latest.pt"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError) as failure:  # member 2 resumes from it, in its process
        meta_train(resume_config(out, {"ensemble_jobs": 2}))
    message = str(failure.value)
    log = out / "s4" / "train.log"
    assert f"member 2 of 2 (seed 4) failed (exit code 1); its output is in {log}" in message
    assert "latest.pt" in message.split("ending:")[1]  # the member's own error, quoted
    assert f"--out-dir {out} --resume --ensemble-jobs 2" in message
    assert not (out / "policy.pt").exists()
    damaged.unlink()
    meta_train(resume_config(out, {}))  # one after another: only what is left is trained
    assert load_policy(out / "policy.pt").size == 2


def test_rise_guard_travels_from_the_run_to_its_episodes_policy_and_adaptation():
    """--rise-guard: every episode of the run holds rises (`EpisodeConfig.rise_guard`), the
    artifact records it, a deployed `PolicyStep` and an adaptation of the policy follow it."""
    from policies import make_policy

    from agents.metatrain.adapt_config import AdaptConfig, session_config
    from agents.metatrain.config import env_metadata, episode_config
    from agents.policy.step import PolicyStep

    config = dataclasses.replace(TINY, rise_guard=True)
    assert episode_config(config).rise_guard
    assert not episode_config(TINY).rise_guard
    assert env_metadata(config)["rise_guard"] is True
    policy = make_policy(decisions=4, **{k: v for k, v in env_metadata(config).items()
                                         if k not in ("decisions",)})  # fmt: skip
    assert PolicyStep(policy).guard is not None
    assert PolicyStep(policy.with_rise_guard(False)).guard is None
    assert PolicyStep(make_policy(decisions=4)).guard is None  # older artifacts: no guard
    adapted = session_config(AdaptConfig(task="digits"), policy.metadata, clip_obs=10.0)
    assert adapted.rise_guard


def test_fall_hold_travels_from_the_run_to_its_episodes_policy_and_adaptation():
    """--fall-hold: every episode of the run holds the rate's falls (`EpisodeConfig.fall_hold`,
    the selection's episodes too), the artifact records it, a deployed `PolicyStep` and an
    adaptation follow it, --deploy-fall-hold off still turns it off; layout 2 refuses it."""
    from policies import make_policy

    from agents.metatrain.adapt_config import AdaptConfig, session_config
    from agents.metatrain.config import env_metadata, episode_config
    from agents.policy.step import PolicyStep
    from hpenv.errors import InputError

    config = dataclasses.replace(TINY, fall_hold=True)
    assert episode_config(config).fall_hold == FALL_HOLD_THRESHOLD
    assert episode_config(TINY).fall_hold is None
    assert env_metadata(config)["fall_hold"] == FALL_HOLD_THRESHOLD
    policy = make_policy(decisions=4, **{k: v for k, v in env_metadata(config).items()
                                         if k not in ("decisions",)})  # fmt: skip
    step = PolicyStep(policy)
    assert step.fall_hold is not None
    assert step.fall_hold.threshold == FALL_HOLD_THRESHOLD
    assert PolicyStep(policy.with_fall_hold(False)).fall_hold is None
    assert PolicyStep(policy.with_deploy_flags(fall_hold="off")).fall_hold is None
    assert PolicyStep(make_policy(decisions=4)).fall_hold is None  # older artifacts: no hold
    adapted = session_config(AdaptConfig(task="digits"), policy.metadata, clip_obs=10.0)
    assert adapted.fall_hold
    with pytest.raises(InputError, match="layout-1"):
        dataclasses.replace(TINY, fall_hold=True, layout=2)


def test_held_out_evaluation_holds_rises_as_the_policy_is_deployed(monkeypatch):
    """The loop scores a policy (a snapshot, or an ensemble for ensemble.json) with the rise
    guard its drivers will use, not the run's training setting."""
    from policies import make_policy

    from agents.metatrain import loop

    seen = []
    real = loop.make_env

    def spy(**kwargs):
        seen.append(kwargs["episode"].rise_guard)
        return real(**kwargs)

    monkeypatch.setattr(loop, "make_env", spy)
    config = dataclasses.replace(TINY, eval_seeds=(0,))
    policy = make_policy(decisions=4, action_bias=2.0)
    free = loop.evaluate_policy(policy, config, ["synthetic-heldout"])
    held = loop.evaluate_policy(policy.with_rise_guard(True), config, ["synthetic-heldout"])
    assert seen == [False, True]
    assert free != held  # a policy that always raises is held back somewhere


def test_deploy_rise_guard_marks_the_written_policies_and_leaves_the_training_alone(
    tmp_path: Path,
):
    """--deploy-rise-guard on (and --deploy-restart on, --deploy-fall-hold on): policy.pt,
    best_policy.pt and an ensemble deploy with the guard (the restart, the fall hold); the run
    trains and selects as without them (the same networks, fingerprinted apart)."""
    plain = load_policy(meta_train(dataclasses.replace(TINY, seed=3, out_dir=str(tmp_path / "a"))))
    out = tmp_path / "ens"
    config = dataclasses.replace(TINY, seed=3, ensemble=2, deploy_rise_guard="on",
                                 deploy_restart="on", deploy_fall_hold="on",
                                 out_dir=str(out))  # fmt: skip
    ensemble = load_policy(meta_train(config))
    assert ensemble.metadata.rise_guard
    assert ensemble.metadata.restart == RestartConfig()
    assert ensemble.metadata.fall_hold == FALL_HOLD_THRESHOLD
    assert not ensemble.metadata.env_config["rise_guard"]  # trained without it
    for name in ("policy.pt", "best_policy.pt"):
        member = load_policy(out / "s3" / name)
        assert member.metadata.rise_guard
        twin = load_policy(tmp_path / "a" / name)
        assert not twin.metadata.rise_guard
        deployed_twin = twin.with_rise_guard(True).with_restart(True).with_fall_hold(True)
        assert member.fingerprint() == deployed_twin.fingerprint()
    assert plain.fingerprint() == load_policy(tmp_path / "a" / "policy.pt").fingerprint()


def test_probe_start_travels_from_the_run_to_its_episodes_policy_and_adaptation():
    """--probe-start: every episode of a layout-1 run probes and starts at the probe's rate
    (`EpisodeConfig.probe_start`), the artifact records it, an adaptation follows it; it is
    refused for layout 2, and 'policy' is a deployment choice only."""
    from policies import make_policy

    from agents.metatrain.adapt_config import AdaptConfig, session_config
    from agents.metatrain.config import env_metadata, episode_config
    from hpenv.base import ProbeStart
    from hpenv.errors import InputError

    config = dataclasses.replace(TINY, probe_start="on:10", probe_min_steps=5)
    episode = episode_config(config)
    assert episode.probe_start == ProbeStart(within=10.0)
    assert episode.probe is not None
    assert episode.probe.min_steps == 5
    assert episode_config(TINY).probe is None
    assert episode_config(TINY).probe_start is None
    assert env_metadata(config)["probe_start"] == {"rule": "min/30", "within": 10.0}
    policy = make_policy(decisions=4, **{k: v for k, v in env_metadata(config).items()
                                         if k not in ("decisions",)})  # fmt: skip
    assert policy.metadata.probe_start == ProbeStart(within=10.0)
    assert policy.metadata.probe_config() == episode.probe
    assert policy.with_probe_start(False).metadata.probe_config() is None
    adapted = session_config(AdaptConfig(task="digits"), policy.metadata, clip_obs=10.0)
    assert adapted.probe_start == "min/30:10"
    assert episode_config(adapted).probe_start == ProbeStart(within=10.0)
    with pytest.raises(InputError, match="for --layout 1"):
        dataclasses.replace(TINY, layout=2, probe_start="on")
    with pytest.raises(InputError, match="not 'policy'"):
        dataclasses.replace(TINY, probe_start="policy")


def test_deploy_probe_start_marks_the_written_policies_and_held_out_episodes_follow_it(
    tmp_path: Path, monkeypatch
):
    """--deploy-probe-start on: the run's policies (and an ensemble's) deploy with a probe
    start; its held-out score runs the episodes as the file says (probe, then its rate)."""
    from agents.metatrain import loop
    from hpenv.base import ProbeStart

    seen = []
    real = loop.make_env

    def spy(**kwargs):
        seen.append((kwargs["episode"].probe_start, kwargs["episode"].probe is not None))
        return real(**kwargs)

    monkeypatch.setattr(loop, "make_env", spy)
    out = tmp_path / "ens"
    config = dataclasses.replace(TINY, seed=3, ensemble=2, deploy_probe_start="on",
                                 out_dir=str(out))  # fmt: skip
    ensemble = load_policy(meta_train(config))
    assert ensemble.metadata.probe_start == ProbeStart()
    assert "probe_start" not in ensemble.metadata.env_config  # trained without it
    for name in ("policy.pt", "best_policy.pt"):
        assert load_policy(out / "s3" / name).metadata.probe_start == ProbeStart()
    assert (ProbeStart(), True) in seen  # the ensemble's held-out score


def _three_step_env(lost: bool = False):
    """A three-step episode paying reward 1 per step, ended by its time limit (truncation);
    ``lost``: its infos say its Ray actor was restarted."""
    import gymnasium as gym

    from agents.metatrain.callbacks import ACTOR_RESTARTED

    class ThreeSteps(gym.Env):
        observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return np.array([0.0, 1.0], np.float32), {}

        def step(self, action):
            self.t += 1
            info = {ACTOR_RESTARTED: True} if lost else {}
            obs = np.array([self.t / 3, 1.0], np.float32)  # progress, as hpenv observes it
            return obs, 1.0, False, self.t == 3, info

    return ThreeSteps()


def test_budget_end_as_termination_ends_ppo_s_return_at_the_budget():
    """SB3 adds gamma x V(last observation) to the last reward of a truncated episode;
    `BudgetEndAsTermination` (``budget_end="termination"``) makes the budget's end a
    termination, so PPO's rewards are the episode's own, and leaves an episode lost with
    its Ray actor a truncation."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from agents.metatrain.vec_env import BudgetEndAsTermination

    def rewards(venv) -> np.ndarray:
        model = PPO("MlpPolicy", venv, n_steps=6, batch_size=6, seed=0, device="cpu")
        # a value head far from 0, as a trained one is at the last observation
        torch.nn.init.constant_(model.policy.value_net.bias, 5.0)
        model._setup_learn(6, None)
        model.collect_rollouts(model.env, model._init_callback(None), model.rollout_buffer, 6)
        return model.rollout_buffer.rewards[:, 0]

    plain = rewards(DummyVecEnv([_three_step_env]))
    ends = rewards(BudgetEndAsTermination(DummyVecEnv([_three_step_env])))
    lost = rewards(BudgetEndAsTermination(DummyVecEnv([lambda: _three_step_env(lost=True)])))
    assert np.array_equal(ends, np.ones(6))
    assert np.array_equal(plain[[0, 1, 3, 4]], np.ones(4))
    assert (plain[[2, 5]] > 4).all()  # 1 + 0.99 x V(progress 1) with V near 5
    assert (lost[[2, 5]] > 4).all()


def test_budget_end_and_gamma_options():
    from agents.metatrain.vec_env import BudgetEndAsTermination, build_vec_env
    from hpenv.errors import InputError

    assert MetaTrainConfig().budget_end == "truncation"
    with pytest.raises(InputError, match="gamma"):
        MetaTrainConfig(gamma=0.0)
    with pytest.raises(InputError, match="gamma"):
        MetaTrainConfig(gamma=1.5)
    config = dataclasses.replace(TINY, budget_end="termination", gamma=1.0, frame_stack=2)
    venv = build_vec_env(config, list(config.train_tasks))
    try:
        assert isinstance(venv.venv, BudgetEndAsTermination)  # under the frame stack
        venv.reset()
        for _ in range(config.decisions):
            *_, dones, infos = venv.step(np.zeros((config.n_envs, 1), np.float32))
        assert dones.all()  # the budget spent
        assert not any(info["TimeLimit.truncated"] for info in infos)
    finally:
        venv.close()
    plain = build_vec_env(TINY, list(TINY.train_tasks))
    assert not isinstance(plain, BudgetEndAsTermination)
    plain.close()
