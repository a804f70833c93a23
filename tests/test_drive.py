"""run_policy / drive_task: a full job driven by a policy, checkpoints and resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from policies import make_policy

from agents.deploy.drive import DriveConfig, drive_task
from agents.policy.pretrained import DEFAULT_POLICY


def config(out: Path, **changes) -> DriveConfig:
    base = {"task": "digits", "out_dir": str(out), "epochs": 1.0, "device": "cpu", "seed": 1}
    return DriveConfig(**{**base, **changes})


def test_job_writes_result_logs_and_checkpoint(tmp_path: Path):
    policy = make_policy(decisions=4)
    result = drive_task(config(tmp_path / "job"), policy)
    assert result["samples"] >= 1438
    assert 0.0 <= result["val_accuracy"] <= 1.0
    assert len(result["trajectory"]) == 5  # initial + 4 decisions
    saved = json.loads((tmp_path / "job" / "result.json").read_text())
    assert saved["val_accuracy"] == result["val_accuracy"]
    assert (tmp_path / "job" / "checkpoint.pt").is_file()
    assert list((tmp_path / "job").glob("events.out.tfevents*"))
    with pytest.raises(ValueError, match="already holds a job"):
        drive_task(config(tmp_path / "job"), policy)


def test_resume_finishes_like_an_uninterrupted_job(tmp_path: Path):
    policy = make_policy(decisions=4)
    full = drive_task(config(tmp_path / "full"), policy)

    # Interrupt a second job after two intervals by truncating its training loop.
    import agents.deploy.drive as drive

    calls = {"n": 0}
    original = drive.TrainingRun.train

    def interrupted(self, num_samples):
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt
        return original(self, num_samples)

    drive.TrainingRun.train = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            drive_task(config(tmp_path / "part"), policy)
    finally:
        drive.TrainingRun.train = original
    resumed = drive_task(config(tmp_path / "part", resume=True), policy)
    assert resumed["val_loss"] == pytest.approx(full["val_loss"], rel=1e-6)
    assert [h["lr"] for h in resumed["trajectory"]] == pytest.approx(
        [h["lr"] for h in full["trajectory"]]
    )


def test_resume_needs_a_checkpoint_and_the_same_options(tmp_path: Path):
    policy = make_policy(decisions=4)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        drive_task(config(tmp_path / "none", resume=True), policy)
    drive_task(config(tmp_path / "job"), policy)
    with pytest.raises(ValueError, match="different options"):
        drive_task(config(tmp_path / "job", resume=True, seed=2), policy)


def test_shipped_policy_loads_and_acts():
    from agents.policy.pretrained import load_default_policy

    assert DEFAULT_POLICY.is_file()
    policy = load_default_policy()
    assert policy.metadata.tuned == ("lr",)
    assert set(policy.metadata.tasks) <= {"synthetic", "digits"}  # offline suite only
    action, _ = policy.predict(torch.zeros(policy.metadata.obs_size).numpy())
    assert -1 <= float(action[0]) <= 1
