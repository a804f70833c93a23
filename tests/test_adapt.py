"""Few-shot adaptation: PPO continued from a frozen policy on one task, and its artifact."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from policies import make_policy

from agents.evaluation.config import TrainingTaskError, check_training_tasks
from agents.metatrain.adapt import (
    AdaptConfig,
    adapt_policy,
    adaptation_fidelity,
    adaptation_task,
)
from agents.metatrain.adapt_config import session_config
from agents.metatrain.vec_env import build_vec_env
from agents.policy import PolicyNotFoundError, load_policy
from hpenv.plan import Fidelity
from hpenv.tasks import get_task
from scripts import load_script

EPISODES, DECISIONS = 4, 4
#: digits: 1,438 training rows; 20% (288) held back as the episodes' validation split,
#: half of the other 1,150 trained per episode.
HELD_OUT, EPISODE_SAMPLES = 288, 575


def tiny(out: Path, **changes) -> AdaptConfig:
    base = {
        "task": "digits", "episodes": EPISODES, "policy": "tiny", "out_dir": str(out),
        "epochs": 1.0, "vec_env": "dummy", "n_envs": 2, "batch_size": 8, "n_epochs": 2,
        "learning_rate": 1e-3,
    }  # fmt: skip
    return AdaptConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def parent():
    # deployed as the shipped default is (hpenv-lr-v2.1): the adapted policy keeps the nets
    return make_policy(decisions=DECISIONS).with_deploy_flags(
        rise_guard="on", restart="collapse", fall_hold="on"
    )


@pytest.fixture(scope="module")
def adapted(parent, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return adapt_policy(tiny(tmp_path_factory.mktemp("adapt"), snapshots=(2,)), parent)


def test_adapted_artifact_records_its_parent_and_the_run(parent, adapted: Path):
    policy = load_policy(adapted)
    meta = policy.metadata
    assert meta.tasks == ("digits",)
    assert meta.tuned == parent.metadata.tuned
    assert meta.env_config == parent.metadata.env_config  # decisions etc. as the parent's
    assert meta.deploy == parent.metadata.deploy  # its rise guard, restart and fall hold
    assert meta.deploy["restart"]["collapse"]
    assert meta.agent_steps == parent.metadata.agent_steps + EPISODES * DECISIONS
    assert meta.parent["source"] == "tiny"
    assert meta.parent["agent_steps"] == parent.metadata.agent_steps
    run = meta.adaptation
    assert run["task"] == "digits"
    assert run["episodes"] == EPISODES
    assert run["agent_steps"] == EPISODES * DECISIONS
    # Every sample counted: 4 episodes of one epoch over their 575 rows, plus the warm-up
    # intervals (575 / 5 = 115) the two envs trained when they reset at the end.
    assert run["training_samples"] == EPISODES * EPISODE_SAMPLES + 2 * 115
    assert run["harness_run_samples"] == 20 * 1438  # digits' CPU fidelity: 20 epochs
    assert run["harness_runs"] == pytest.approx(run["training_samples"] / (20 * 1438), abs=1e-3)
    assert run["seconds"] > 0
    assert run["normalisation"] == "frozen"
    assert run["holdout"] == 0.2
    assert run["fidelity"] == {"subset": 0.5, "budget_epochs": 1.0}
    assert (adapted.parent / "adaptation.json").is_file()
    assert list(adapted.parent.glob("events.out.tfevents*"))


def test_frozen_normalisation_is_kept_and_the_weights_move(parent, adapted: Path):
    policy = load_policy(adapted)
    np.testing.assert_array_equal(policy.obs_mean, parent.obs_mean)
    np.testing.assert_array_equal(policy.obs_var, parent.obs_var)
    assert policy.clip_obs == parent.clip_obs
    before, after = parent.policy.state_dict(), policy.policy.state_dict()
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # PPO continued


def test_updated_normalisation_moves_slowly(parent, tmp_path: Path):
    def shift(prior: float) -> float:
        config = tiny(tmp_path / f"prior{prior:g}", normalisation="update", norm_prior_count=prior)
        policy = load_policy(adapt_policy(config, parent))
        assert policy.metadata.adaptation["norm_prior_count"] == prior
        return float(np.abs(policy.obs_mean - parent.obs_mean).max())

    light, heavy = shift(50), shift(1e6)
    assert light > 0  # the statistics were updated
    assert 0 < heavy < light / 100  # a heavier prior moves them (about 20,000x) less


def test_a_snapshot_is_the_policy_a_shorter_run_ends_with(parent, adapted: Path, tmp_path: Path):
    snapshot = load_policy(adapted.parent / "k2" / "policy.pt")
    assert snapshot.metadata.adaptation["episodes_requested"] == 2
    assert snapshot.metadata.adaptation["episodes"] == 2
    assert snapshot.metadata.adaptation["agent_steps"] == 2 * DECISIONS
    assert snapshot.metadata.parent["source"] == "tiny"
    assert (adapted.parent / "k2" / "adaptation.json").is_file()
    short = load_policy(adapt_policy(tiny(tmp_path / "k2", episodes=2), parent))
    for key, value in short.policy.state_dict().items():
        torch.testing.assert_close(snapshot.policy.state_dict()[key], value)
    final = load_policy(adapted).policy.state_dict()
    assert any(not torch.equal(final[k], v) for k, v in short.policy.state_dict().items())


def test_snapshots_reached_in_the_last_rollout_are_the_final_policy(parent, tmp_path: Path):
    path = adapt_policy(tiny(tmp_path / "run", snapshots=(3,)), parent)  # 2 episodes a rollout
    snapshot, final = load_policy(path.parent / "k3" / "policy.pt"), load_policy(path)
    for key, value in final.policy.state_dict().items():
        assert torch.equal(snapshot.policy.state_dict()[key], value)
    assert snapshot.metadata.adaptation["episodes_requested"] == 3


def test_episodes_never_see_the_validation_and_test_splits(parent, tmp_path: Path):
    config = tiny(tmp_path)
    full = get_task("digits").load_data()
    data = adaptation_task(config).load_data()
    assert data.test_x is None
    assert (data.train_x.shape[0], data.val_x.shape[0]) == (1438 - HELD_OUT, HELD_OUT)
    train_rows = {tuple(row.tolist()) for row in full.train_x}
    assert {tuple(row.tolist()) for row in data.val_x} <= train_rows  # training rows only
    assert {tuple(row.tolist()) for row in data.train_x} <= train_rows

    # The environments the adaptation trains in get exactly that data.
    session = session_config(config, parent.metadata, parent.clip_obs)
    fidelity = {"digits": adaptation_fidelity(config)}
    venv = build_vec_env(session, [adaptation_task(config)], fidelity)
    try:
        venv.reset()
        run = venv.envs[0].unwrapped.run
        assert run.data.val_x.shape[0] == HELD_OUT
        assert run.data.test_x is None
        assert run.data.train_x.shape[0] == EPISODE_SAMPLES
    finally:
        venv.close()


def test_adaptation_keeps_the_parents_budgets_and_probe(parent, tmp_path: Path):
    """The episode settings a policy records come back in its adaptation's config."""
    assert session_config(tiny(tmp_path), parent.metadata, parent.clip_obs).synthetic_steps == (
        150, 1_500,
    )  # fmt: skip
    env = {
        **parent.metadata.env_config, "synthetic_steps": [30, 600],  # as JSON stores it
        "probe": {**parent.metadata.env_config.get("probe", {}), "min_steps": 8},
        "base": {"steer_range": 10.0, "unprobed_steer_range": 1000.0, "steer_mode": "absolute"},
    }  # fmt: skip
    meta = dataclasses.replace(parent.metadata, env_config=env)
    session = session_config(tiny(tmp_path), meta, parent.clip_obs)
    assert (session.synthetic_steps, session.probe_min_steps) == ((30, 600), 8)
    assert (session.steer_range, session.unprobed_steer_range) == (10.0, 1000.0)
    assert session.steer_mode == "absolute"


def test_adaptation_keeps_the_parents_return(parent, tmp_path: Path):
    """The return the parent maximised (its discount, how it read the budget's end) is recorded
    with it and comes back in its adaptation's config; a record without them had the defaults."""
    from agents.metatrain.config import MetaTrainConfig, env_metadata

    recorded = env_metadata(MetaTrainConfig(gamma=1.0, budget_end="termination"))
    assert (recorded["gamma"], recorded["budget_end"]) == (1.0, "termination")
    env = {**parent.metadata.env_config, "gamma": 1.0, "budget_end": "termination"}
    meta = dataclasses.replace(parent.metadata, env_config=env)
    session = session_config(tiny(tmp_path), meta, parent.clip_obs)
    assert (session.gamma, session.budget_end) == (1.0, "termination")
    older = {k: v for k, v in env.items() if k not in ("gamma", "budget_end")}
    meta = dataclasses.replace(parent.metadata, env_config=older)
    session = session_config(tiny(tmp_path), meta, parent.clip_obs)
    assert (session.gamma, session.budget_end) == (MetaTrainConfig.gamma, "truncation")


def test_the_hold_out_comes_after_the_task_transform():
    from agents.metatrain.adapt_config import _held_out
    from hpenv.testing import tiny_task_data

    data = tiny_task_data(get_task("digits"), n_train=50)
    marked = _held_out(lambda d: dataclasses.replace(d, source="transformed"), 0.2, data)
    assert marked.source.startswith("transformed, validation: 20%")
    assert (marked.train_x.shape[0], marked.val_x.shape[0]) == (40, 10)


def test_artifacts_without_the_new_fields_still_load(parent, tmp_path: Path):
    parent.save(tmp_path / "old.pt")
    blob = torch.load(tmp_path / "old.pt", weights_only=True)
    for key in ("parent", "adaptation"):
        del blob["metadata"][key]
    torch.save(blob, tmp_path / "old.pt")
    old = load_policy(tmp_path / "old.pt")
    assert old.metadata.parent == {}
    assert old.metadata.adaptation == {}


def test_the_harness_sees_the_adaptation_task_as_a_training_task(adapted: Path):
    tasks = load_policy(adapted).metadata.tasks
    with pytest.raises(TrainingTaskError, match="include-training-tasks"):
        check_training_tasks(["digits"], tasks, include_training_tasks=False)
    check_training_tasks(["digits"], tasks, include_training_tasks=True)


def test_default_episodes_are_cheap_and_config_is_checked(tmp_path: Path):
    config = AdaptConfig(task="mnist_rotated", episodes=10)
    assert adaptation_fidelity(config) == Fidelity(subset=0.25, budget_epochs=4)
    diabetes = dataclasses.replace(config, task="diabetes")  # no CPU fidelity: the task's budget
    assert adaptation_fidelity(diabetes) == Fidelity(subset=0.5, budget_epochs=60)
    with pytest.raises(ValueError, match="subset_factor"):
        dataclasses.replace(config, subset_factor=0.0)
    with pytest.raises(ValueError, match="unknown task"):
        AdaptConfig(task="nope")
    for episodes in (0, -3):
        with pytest.raises(ValueError, match="episodes must be >= 1"):
            dataclasses.replace(config, episodes=episodes)
    with pytest.raises(ValueError, match="holdout"):
        dataclasses.replace(config, holdout=0.0)
    for counts in ((10,), (5, 3), (0,)):
        with pytest.raises(ValueError, match="snapshots must be increasing"):
            dataclasses.replace(config, snapshots=counts)
    (tmp_path / "policy.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="already holds"):
        adapt_policy(tiny(tmp_path), make_policy(decisions=DECISIONS))
    with pytest.raises(PolicyNotFoundError, match=r"no policy 'nope\.pt'"):
        adapt_policy(tiny(tmp_path / "other", policy="nope.pt"))


def cli_args(policy: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--policy", str(policy), "--task", "digits", "--episodes", "2", "--epochs", "1",
        "--vec-env", "dummy", "--n-envs", "2", "--batch-size", "8", "--n-epochs", "1",
        "--out-dir", str(out), *extra,
    ]  # fmt: skip


def test_cli_adapts_end_to_end(parent, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    file = parent.save(tmp_path / "parent.pt")
    main = load_script("adapt_policy").main
    assert main(cli_args(file, tmp_path / "run")) == 0
    assert "adapted policy:" in capsys.readouterr().out
    policy = load_policy(tmp_path / "run" / "policy.pt")
    assert policy.metadata.parent["file"] == str(file)
    assert policy.metadata.adaptation["episodes"] == 2
    assert policy.metadata.adaptation["agent_steps"] == 2 * DECISIONS


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--task", "nope"], "invalid choice: 'nope'"),
        (["--episodes", "0"], "episodes must be >= 1"),
        (["--policy", "missing.pt"], "no policy 'missing.pt'"),
        (["--snapshots", "2"], "snapshots must be increasing"),
    ],
)
def test_cli_refuses_bad_input_with_a_usage_error(
    parent, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: list[str], message: str
):
    file = parent.save(tmp_path / "parent.pt")
    with pytest.raises(SystemExit) as exit_:
        load_script("adapt_policy").main(cli_args(file, tmp_path / "run", *change))
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_model_card_names_the_parent(adapted: Path, tmp_path: Path):
    from agents.policy import save_pretrained

    card = (save_pretrained(load_policy(adapted), tmp_path / "hub") / "README.md").read_text()
    assert "| adapted from | tiny" in card
    assert f"| adaptation | {EPISODES} episodes of digits" in card
