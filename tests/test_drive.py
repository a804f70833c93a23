"""run_policy / drive_task: a full job driven by a policy, checkpoints and resume."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator
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
    assert result["samples"] == 1438  # the budget, in samples: one epoch of digits' train split
    assert 0.0 <= result["val_accuracy"] <= 1.0
    assert len(result["trajectory"]) == 5  # initial + 4 decisions
    saved = json.loads((tmp_path / "job" / "result.json").read_text())
    assert saved["val_accuracy"] == result["val_accuracy"]
    assert (tmp_path / "job" / "checkpoint.pt").is_file()
    assert list((tmp_path / "job").glob("events.out.tfevents*"))
    with pytest.raises(ValueError, match="already holds a job"):
        drive_task(config(tmp_path / "job"), policy)


def test_a_layout_2_policy_probes_then_steers_around_its_base(tmp_path: Path):
    """The job starts as the policy's episodes did: the probe (in the budget), then the
    base, saved with the checkpoint (a resumed job does not probe again: test below)."""
    from hpenv.io import safe_torch_load

    policy = make_policy(decisions=4, obs_version=2)
    result = drive_task(config(tmp_path / "job", epochs=3.0), policy)
    assert result["samples"] == 3 * 1438
    saved = safe_torch_load(tmp_path / "job" / "checkpoint.pt", "test")
    assert saved["base"]["probed"]
    first = result["trajectory"][0]
    assert first["samples"] > 0  # the probe's samples came out of the budget
    assert first["lr"] == pytest.approx(saved["base"]["anchor"])  # the run starts at its base
    assert first["lr"] != pytest.approx(1e-3)  # not the task's default
    assert result["base"] == {"anchor": saved["base"]["anchor"], "probed": True}
    probe = result["probe"]
    assert 0 < probe["kept"] <= probe["steps"]
    assert probe["cost"] == pytest.approx((probe["steps"] - probe["kept"]) / 135)
    assert saved["driver"]["probe"]["steps"] == probe["steps"]  # the curve is saved too
    assert list((tmp_path / "job").glob("events.out.tfevents*"))


def test_a_layout_1_policy_with_a_probe_start_probes_then_starts_at_its_reading(tmp_path):
    """A probe start (`FrozenPolicy.with_probe_start`): the job probes in its budget and
    starts at the probe's reading whatever its --lr; the result reports the probe."""
    policy = make_policy(decisions=4).with_probe_start(True)
    runs = [drive_task(config(tmp_path / f"job{lr}", epochs=3.0, lr=lr), policy)
            for lr in (1e-3, 3e-1)]  # fmt: skip
    for result in runs:
        probe = result["probe"]
        assert result["trajectory"][0]["samples"] > 0  # the probe's samples, in the budget
        assert result["trajectory"][0]["lr"] == pytest.approx(probe["curve"]["lrs"][
            probe["curve"]["best"]] / 30)  # fmt: skip
        assert "base" not in result
    assert runs[0]["val_loss"] == runs[1]["val_loss"]  # the start no longer matters


def test_deploy_flags_deploy_the_policy_otherwise_and_travel_with_the_job(tmp_path: Path):
    """--probe-start / --rise-guard / --probe-rollback / --fall-hold
    (`FrozenPolicy.with_deploy_flags`):
    the job runs as with a file deployed that way; the flags are saved with the job's
    options, and a job written before they existed resumes with their defaults."""
    from agents.deploy.drive import resume_drive_config

    policy = make_policy(decisions=4)
    deployed = policy.with_rise_guard(True).with_probe_start(True).with_probe_rollback("start")
    deployed = deployed.with_fall_hold(True)
    flags = {"rise_guard": "on", "probe_start": "on", "probe_rollback": "start", "fall_hold": "on"}
    by_flags = drive_task(config(tmp_path / "flags", epochs=3.0, **flags), policy)
    by_file = drive_task(config(tmp_path / "file", epochs=3.0), deployed)
    assert by_flags["probe"]["kept"] == 0  # rolled back to the start
    assert by_flags["val_loss"] == by_file["val_loss"]
    assert by_flags["trajectory"] == by_file["trajectory"]
    saved = json.loads((tmp_path / "flags" / "config.json").read_text())
    assert {k: saved[k] for k in flags} == flags
    with pytest.raises(ValueError, match="different options"):
        resume_drive_config(tmp_path / "flags", {"probe_start": "off"})

    # A job whose config.json predates the flags: they default to the policy's own.
    for key in flags:
        saved.pop(key)
    (tmp_path / "file" / "config.json").write_text(json.dumps(saved))
    assert resume_drive_config(tmp_path / "file", {"rise_guard": "policy"}).rise_guard == "policy"
    with pytest.raises(ValueError, match="different options"):
        resume_drive_config(tmp_path / "file", {"rise_guard": "on"})


def test_a_bad_deploy_flag_is_refused_before_anything_runs(tmp_path: Path):
    with pytest.raises(ValueError, match="--probe-start 'sideways'"):
        config(tmp_path / "job", probe_start="sideways")
    with pytest.raises(ValueError, match="--probe-rollback"):
        make_policy(decisions=4).with_deploy_flags(probe_rollback="middle")
    assert not (tmp_path / "job").exists()


@contextlib.contextmanager
def driver_interrupted_after(intervals: int) -> Iterator[None]:
    """Inside: the job driver's ``after_interval`` raises KeyboardInterrupt after
    ``intervals`` calls (the job stops there, its checkpoints written), and the block must
    raise it."""
    import agents.deploy.drive as drive

    calls = {"n": 0}
    original = drive.TrainingRunDriver.after_interval

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > intervals:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    drive.TrainingRunDriver.after_interval = interrupted  # type: ignore[method-assign]
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        drive.TrainingRunDriver.after_interval = original  # type: ignore[method-assign]


@pytest.mark.parametrize("layout", [1, 2])
def test_resume_finishes_like_an_uninterrupted_job(tmp_path: Path, layout: int):
    policy = make_policy(decisions=4, obs_version=layout)
    epochs = {"epochs": 3.0} if layout == 2 else {}  # long enough for a probe
    full = drive_task(config(tmp_path / "full", **epochs), policy)

    # Interrupt a second job in its third interval (after the probe, if any, and two
    # checkpointed intervals) by stopping the driver there.
    with driver_interrupted_after(2):
        drive_task(config(tmp_path / "part", **epochs), policy)
    resumed = drive_task(config(tmp_path / "part", resume=True, **epochs), policy)
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


def doubling_policy():
    """An lr + batch-size policy whose batch-size action is always +1 (double it)."""
    policy = make_policy(("lr", "batch_size"), decisions=4)
    with torch.no_grad():
        policy.policy.action_net.weight[1].zero_()
        policy.policy.action_net.bias[1] = 1.0
    return policy


def test_batch_size_decisions_are_applied_within_the_sample_budget(tmp_path: Path):
    result = drive_task(config(tmp_path / "job", epochs=2.0), doubling_policy())
    sizes = [h["batch_size"] for h in result["trajectory"]]
    assert sizes == [32, 64, 128, 256, 512]  # the job applied every doubling
    assert result["samples"] == 2 * 1438  # the budget is samples: batch size buys no compute
    assert result["tuned"] == ["lr", "batch_size"]
    steps = [h["step"] for h in result["trajectory"]]
    samples = [h["samples"] for h in result["trajectory"]]
    assert samples == [0, 576, 1152, 1728, 2304]  # interval = ceil(2876 / 5) samples
    intervals = [t1 - t0 for t0, t1 in itertools.pairwise(steps)]
    assert intervals == [-(-576 // size) for size in sizes[:-1]]  # steps at each batch size
    assert result["optimizer_steps"] == 37  # 18 + 9 + 5 + 3 + 2: fewer steps, same samples


def test_drive_task_decides_as_the_harness_does(tmp_path: Path):
    """`drive_task` and the harness's policy method run one plan with one `TrainingRunDriver`."""
    from agents.evaluation.methods.core import RunSpec
    from agents.evaluation.methods.policy import PolicyMethod
    from hpenv.plan import Fidelity

    policy = doubling_policy()
    job = drive_task(config(tmp_path / "job"), policy)
    spec = RunSpec("digits", 1, fidelity=Fidelity(budget_epochs=1.0), decisions=4)
    cell = PolicyMethod(policy).run(spec)
    # The job logs the values chosen at each decision; the harness the values each interval
    # trained with: the same numbers, one interval apart.
    for name in ("lr", "batch_size"):
        assert [h[name] for h in job["trajectory"][1:]] == pytest.approx(
            [p[name] for p in cell.trajectory[2:]], rel=1e-12
        )
    assert job["val_loss"] == pytest.approx(cell.val_loss, rel=1e-9)
    assert [p["batch_size"] for p in cell.trajectory[1:]] == [32, 64, 128, 256, 512]
    assert cell.samples == job["samples"] == 1438  # the harness's budget is samples too
