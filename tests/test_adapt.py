"""Few-shot adaptation: PPO continued from a frozen policy on one task, and its artifact."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from policies import make_policy

from agents.evaluation.config import TrainingTaskError, check_training_tasks
from agents.metatrain.adapt import AdaptConfig, adapt_policy, adaptation_fidelity
from agents.policy import load_policy
from hpenv.plan import Fidelity

EPISODES, DECISIONS = 4, 4


def tiny(out: Path, **changes) -> AdaptConfig:
    base = {
        "task": "digits", "episodes": EPISODES, "policy": "tiny", "out_dir": str(out),
        "epochs": 1.0, "vec_env": "dummy", "n_envs": 2, "batch_size": 8, "n_epochs": 2,
        "learning_rate": 1e-3,
    }  # fmt: skip
    return AdaptConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def parent():
    return make_policy(decisions=DECISIONS)


@pytest.fixture(scope="module")
def adapted(parent, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return adapt_policy(tiny(tmp_path_factory.mktemp("adapt")), parent)


def test_adapted_artifact_records_its_parent_and_the_run(parent, adapted: Path):
    policy = load_policy(adapted)
    meta = policy.metadata
    assert meta.tasks == ("digits",)
    assert meta.tuned == parent.metadata.tuned
    assert meta.env_config == parent.metadata.env_config  # decisions etc. as the parent's
    assert meta.agent_steps == parent.metadata.agent_steps + EPISODES * DECISIONS
    assert meta.parent["source"] == "tiny"
    assert meta.parent["agent_steps"] == parent.metadata.agent_steps
    run = meta.adaptation
    assert run["task"] == "digits"
    assert run["episodes"] == EPISODES
    assert run["agent_steps"] == EPISODES * DECISIONS
    # Every sample counted: 4 episodes of one epoch over half of digits' 1,438 training rows,
    # plus the warm-up intervals (719 / 5 -> 144) the two envs trained when they reset at the end.
    assert run["training_samples"] == EPISODES * 719 + 2 * 144
    assert run["seconds"] > 0
    assert run["normalisation"] == "frozen"
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
    path = adapt_policy(tiny(tmp_path / "run", normalisation="update", norm_prior_count=50), parent)
    policy = load_policy(path)
    assert not np.array_equal(policy.obs_mean, parent.obs_mean)
    assert policy.metadata.adaptation["norm_prior_count"] == 50


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
    (tmp_path / "policy.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="already holds"):
        adapt_policy(tiny(tmp_path), make_policy(decisions=DECISIONS))


def test_model_card_names_the_parent(adapted: Path, tmp_path: Path):
    from agents.policy import save_pretrained

    card = (save_pretrained(load_policy(adapted), tmp_path / "hub") / "README.md").read_text()
    assert "| adapted from | tiny" in card
    assert f"| adaptation | {EPISODES} episodes of digits" in card
