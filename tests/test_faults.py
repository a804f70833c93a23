"""Faults and hostile input: nothing crashes, nothing runs code from a file, nothing is lost.

One test (or a few) per item of the hardening issue, numbered as there.
"""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from policies import make_policy

from hpenv.env import HPTuneEnv
from hpenv.tasks import SyntheticSpec, get_task
from hpenv.training import EvalStats, TrainingRun
from scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
SPEC = SyntheticSpec(input_dim=8, num_classes=3, num_samples=300, width=16, depth=1, seed=2)


# ------------------------------------------------------ 1. zero validation loss


def test_1_rewards_are_finite_at_zero_loss():
    from hpenv.rewards import REWARDS, make_reward

    for name in REWARDS:
        reward = make_reward(name)
        reward.reset(0.0, 1.0)
        # a paired reward also gets the reference run's loss (others ignore it)
        assert math.isfinite(reward.step(0.0, 1.0, last=False, reference=0.0))
        assert math.isfinite(reward.step(0.5, 0.8, last=True, reference=math.nan))
        assert math.isfinite(reward.diverged(worst_loss=100.0))


def test_1_env_never_raises_on_a_zero_validation_loss(monkeypatch: pytest.MonkeyPatch):
    def perfect(self: TrainingRun, split: str = "val") -> EvalStats:
        return EvalStats(loss=0.0, accuracy=1.0, samples=10, wall_time=0.0)

    monkeypatch.setattr(TrainingRun, "evaluate", perfect)
    env = HPTuneEnv(SPEC.task(), budget=600, decisions=3, device="cpu")
    obs, _ = env.reset(seed=0)
    assert np.isfinite(obs).all()
    done = False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert math.isfinite(float(reward))
        assert np.isfinite(obs).all()
        done = terminated or truncated


# ------------------------------------------------------------- 2. controller


def _controller_job(evaluate, decisions: int = 4, steps: int = 50):
    from agents.deploy.controller import HyperController

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    controller = HyperController(
        make_policy(decisions=decisions), optimizer, total_steps=steps, evaluate=evaluate,
        batch_size=8,
    )  # fmt: skip
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    for step in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[step % 8 :: 8]), y[step % 8 :: 8])
        loss.backward()
        controller.report_loss(loss)
        optimizer.step()
    return controller


def test_2_a_failing_evaluate_skips_one_decision_and_the_schedule_goes_on():
    calls = {"n": 0}

    def flaky() -> tuple[float, float]:
        calls["n"] += 1
        if calls["n"] == 2:  # the first decision point
            raise OSError("validation server unreachable")
        return 0.7, 0.5

    with pytest.warns(RuntimeWarning, match="decision at step 10 is skipped"):
        controller = _controller_job(flaky)
    # attach + 4 decision points were evaluated; 3 decisions happened after the skipped one
    assert calls["n"] == 5
    assert [h["step"] for h in controller.history] == [0, 20, 30, 40]


@pytest.mark.parametrize("decisions", [-1, 0, 2.5, True])
def test_2_bad_decisions_are_refused(decisions):
    from agents.deploy.controller import HyperController

    optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="decisions must be an int >= 1"):
        HyperController(make_policy(), optimizer, total_steps=100, decisions=decisions)


def test_2_bad_losses_and_metrics_get_clear_errors():
    from agents.deploy.controller import HyperController, InvalidMetricsError

    optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    controller = HyperController(make_policy(), optimizer, total_steps=100)
    with pytest.raises(TypeError, match="tensor or a number"):
        controller.report_loss(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape \\(2, 3\\)"):
        controller.report_loss(torch.ones(2, 3))
    controller.report_loss(torch.ones(8))  # per-sample losses are averaged
    for accuracy, match in ((math.nan, "fraction"), (-0.1, "fraction"), (87.5, "percentage")):
        with pytest.raises(InvalidMetricsError, match=match):
            controller.report_validation(0.5, accuracy)
    with pytest.raises(InvalidMetricsError, match="val_loss must be >= 0"):
        controller.report_validation(-1.0, 0.5)
    with pytest.raises(InvalidMetricsError, match="must return"):
        _controller_job(lambda: None)  # type: ignore[arg-type, return-value]


# ------------------------------------------- 3-5. interrupting and resuming runs

TRAIN = [
    sys.executable,
    str(ROOT / "scripts" / "train_agent.py"),
    "--train-tasks", "synthetic", "--eval-tasks", "synthetic-heldout", "--total-steps", "4000",
    "--n-envs", "2", "--vec-env", "subprocess", "--n-steps", "16", "--batch-size", "16",
    "--decisions", "4", "--budget", "400", "--eval-every", "0", "--checkpoint-every", "32",
    "--net-arch", "16",
]  # fmt: skip


def _start_and_signal(args: list[str], out: Path, sig: int, group: bool) -> tuple[int, str, float]:
    """Start a job, wait until it trains, send ``sig`` (to its process group if ``group``)."""
    process = subprocess.Popen(
        [*args, "--out-dir", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 120
    while not list(out.glob("**/events.out.tfevents*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)  # inside training
    assert process.poll() is None, process.communicate()
    if group:
        os.killpg(process.pid, sig)  # what Ctrl-C in a terminal does
    else:
        process.send_signal(sig)  # what kill -INT / a scheduler's SIGTERM does
    sent = time.monotonic()
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("the job did not exit within 60 s of the signal")
    return process.returncode, stderr, time.monotonic() - sent


@pytest.mark.parametrize(
    ("sig", "group", "engine"),
    [
        (signal.SIGINT, True, "subprocess"),
        (signal.SIGINT, False, "subprocess"),
        (signal.SIGTERM, False, "subprocess"),
        (signal.SIGTERM, False, "dummy"),  # environments in the main process: its handlers stay
    ],
)
def test_3_meta_training_stops_promptly_on_a_signal(
    tmp_path: Path, sig: int, group: bool, engine: str
):
    out = tmp_path / "run"
    args = [*TRAIN, "--vec-env", engine]  # the last --vec-env counts
    rc, stderr, seconds = _start_and_signal(args, out, sig, group)
    assert rc == 130, stderr
    assert seconds < 30
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert str(out / "checkpoints" / "latest.pt") in last
    assert f"--out-dir {out} --resume" in last


def test_3_an_ensemble_run_stops_on_sigterm_and_names_the_whole_runs_resume(tmp_path: Path):
    out = tmp_path / "ens"
    rc, stderr, _ = _start_and_signal([*TRAIN, "--ensemble", "2"], out, signal.SIGTERM, False)
    assert rc == 130, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert f"member 1 of 2 (seed 0) has its checkpoint in {out / 's0'}" in last
    assert f"--out-dir {out} --resume" in last
    assert (out / "s0" / "checkpoints" / "latest.pt").is_file()
    assert not (out / "s1").exists()


def test_3_members_trained_at_once_stop_on_ctrl_c_with_their_checkpoints(tmp_path: Path):
    out = tmp_path / "ens"
    args = [*TRAIN, "--ensemble", "2", "--ensemble-jobs", "2"]
    rc, stderr, seconds = _start_and_signal(args, out, signal.SIGINT, group=True)
    assert rc == 130, stderr
    assert seconds < 30
    assert "Traceback" not in stderr
    assert f"--out-dir {out} --resume --ensemble-jobs 2" in stderr.strip().splitlines()[-1]
    for seed in (0, 1):  # both were running: each stopped at its next step, checkpoint written
        assert (out / f"s{seed}" / "checkpoints" / "latest.pt").is_file()
        assert "--resume" in (out / f"s{seed}" / "train.log").read_text()
    assert not (out / "policy.pt").exists()


def test_3_run_policy_stops_on_sigterm_and_resumes(tmp_path: Path):
    out = tmp_path / "job"
    args = [sys.executable, str(ROOT / "scripts" / "run_policy.py"), "--task", "digits",
            "--epochs", "300", "--device", "cpu"]  # fmt: skip
    rc, stderr, _ = _start_and_signal(args, out, signal.SIGTERM, group=False)
    assert rc == 130, stderr
    assert "Traceback" not in stderr
    assert f"--out-dir {out} --resume" in stderr.strip().splitlines()[-1]
    from agents.deploy.drive import resume_drive_config

    assert resume_drive_config(out, {}).epochs == 300  # the job's own options come back


TINY_CLI = [
    "--train-tasks", "synthetic", "--eval-tasks", "synthetic-heldout", "--total-steps", "64",
    "--n-envs", "1", "--vec-env", "dummy", "--n-steps", "16", "--batch-size", "16",
    "--decisions", "4", "--budget", "200", "--eval-every", "32", "--eval-seeds", "0",
    "--checkpoint-every", "16", "--net-arch", "16",
]  # fmt: skip


@pytest.fixture(scope="module")
def train_agent_main():
    return load_script("train_agent").main


def test_4_resume_takes_the_runs_configuration(tmp_path: Path, train_agent_main, capsys):
    from agents.metatrain import load_checkpoint

    out = str(tmp_path / "run")
    assert train_agent_main([*TINY_CLI, "--out-dir", out]) == 0
    steps = load_checkpoint(Path(out) / "checkpoints" / "latest.pt")["num_timesteps"]
    # The bare resume command printed on interruption: no flags, and no silent 8,000 steps.
    assert train_agent_main(["--out-dir", out, "--resume"]) == 0
    assert load_checkpoint(Path(out) / "checkpoints" / "latest.pt")["num_timesteps"] == steps
    capsys.readouterr()
    with pytest.raises(SystemExit):
        train_agent_main(["--out-dir", out, "--resume", "--decisions", "5"])
    assert "--decisions: the run has 4, this command gives 5" in capsys.readouterr().err
    assert train_agent_main(["--out-dir", out, "--resume", "--total-steps", "128"]) == 0
    assert load_checkpoint(Path(out) / "checkpoints" / "latest.pt")["num_timesteps"] == 128

    # 5. progress.csv keeps every row logged before each resume, each step once.
    with open(Path(out) / "progress.csv") as fh:
        rows = list(csv.DictReader(fh))
    steps_logged = [int(r["time/total_timesteps"]) for r in rows if r["time/fps"]]  # PPO updates
    assert steps_logged == sorted(set(steps_logged))
    assert steps_logged[0] == 16
    assert steps_logged[-1] == 128


def test_5_resume_drops_rows_logged_after_the_checkpoint(tmp_path: Path):
    from agents.metatrain.run_log import ResumedCSVOutputFormat

    path = tmp_path / "progress.csv"
    path.write_text("a,time/total_timesteps\n1,16\n2,32\n3,48\n")
    writer = ResumedCSVOutputFormat(str(path), step=32)
    writer.write({"a": 9, "time/total_timesteps": 48, "b": 1}, {"a": None, "b": None}, 48)
    writer.close()
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    assert [r["time/total_timesteps"] for r in rows] == ["16", "32", "48"]
    assert rows[-1]["a"] == "9"
    assert rows[-1]["b"] == "1"


# ---------------------------------------------------------- 6. make_vec async

ASYNC_SCRIPT = """
import torch, gymnasium as gym, hpenv
x = torch.randn(300, 300); (x @ x).sum()  # torch's threads have started
envs = gym.make_vec("HPTune-Synthetic-v0", num_envs=2, vectorization_mode="async",
                    budget=300, decisions=2, device="cpu")
envs.reset(seed=0)
envs.step(envs.action_space.sample())
envs.close()
print("ok")
"""


def test_6_async_make_vec_after_torch_does_not_hang():
    result = subprocess.run(
        [sys.executable, "-c", ASYNC_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.stdout.strip() == "ok", result.stderr


# ------------------------------------------------------- 7. code from files


class _Payload:
    """Unpickling this creates ``marker``: proof that a loader ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _crafted(path: Path, marker: Path, **extra) -> Path:
    torch.save({"format": 2, "payload": _Payload(marker), **extra}, path)
    return path


def test_7_meta_training_checkpoint_does_not_run_code(tmp_path: Path):
    from agents.metatrain import load_checkpoint
    from hpenv.io import UnsafeFileError

    marker = tmp_path / "pwned"
    with pytest.raises(UnsafeFileError) as info:
        load_checkpoint(_crafted(tmp_path / "latest.pt", marker))
    assert not marker.exists()
    assert "weights_only" not in str(info.value)  # 11: no advice to load it unsafely


def test_7_job_checkpoint_does_not_run_code(tmp_path: Path):
    from agents.deploy.drive import DriveConfig, drive_task
    from hpenv.io import UnsafeFileError

    marker = tmp_path / "pwned"
    job = tmp_path / "job"
    job.mkdir()
    _crafted(job / "checkpoint.pt", marker)
    config = DriveConfig(task="digits", out_dir=str(job), epochs=1.0, device="cpu", resume=True)
    with pytest.raises(UnsafeFileError):
        drive_task(config, make_policy())
    assert not marker.exists()


def test_7_pbt_member_checkpoint_does_not_run_code(tmp_path: Path):
    from agents.evaluation.methods.pbt import CHECKPOINT_FILE, load_member
    from hpenv.io import UnsafeFileError

    marker = tmp_path / "pwned"
    _crafted(tmp_path / CHECKPOINT_FILE, marker)
    run = TrainingRun(SPEC.task(), device="cpu")
    with pytest.raises(UnsafeFileError):
        load_member(run, str(tmp_path))
    assert not marker.exists()


def test_7_policy_and_cache_and_cifar_files_do_not_run_code(tmp_path: Path):
    import pickle

    from agents.policy import PolicyLoadError, load_policy
    from hpenv.tasks.data import DataFormatError, cache, load_task_data

    marker = tmp_path / "pwned"
    with pytest.raises(PolicyLoadError) as info:
        load_policy(_crafted(tmp_path / "policy.pt", marker, metadata={}))
    assert "weights_only" not in str(info.value)
    assert cache.load(_crafted(tmp_path / "cache.pt", marker)) is None
    batches = tmp_path / "data" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    for name in ("data_batch_1", "test_batch"):
        (batches / name).write_bytes(pickle.dumps({b"data": _Payload(marker)}))
    with pytest.raises(DataFormatError, match="cifar-10-batches-py"):
        load_task_data(get_task("cifar10").dataset, data_dir=tmp_path / "data")
    assert not marker.exists()


# ---------------------------------------------------------- 8. corrupt data


def _mnist_npz(path: Path, labels: np.ndarray | None = None) -> Path:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)
    np.savez(path, images=images, labels=rng.integers(0, 10, 50) if labels is None else labels)
    return path


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "objects"])
def test_8_damaged_local_files_name_the_file_and_what_to_do(tmp_path: Path, damage: str):
    from hpenv.tasks.data import DataFormatError, load_task_data

    path = _mnist_npz(tmp_path / "mnist10k.npz")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(os.urandom(2000))
    else:
        np.savez(path, images=np.array([{"a": 1}] * 3, dtype=object), labels=np.zeros(3))
    with pytest.raises(DataFormatError) as info:
        load_task_data(get_task("mnist").dataset, data_dir=tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert "good copy" in message
    assert "allow_pickle" not in message
    assert not isinstance(info.value.__cause__, zipfile.BadZipFile | EOFError)


def test_8_labels_out_of_range_are_refused_at_load_time(tmp_path: Path):
    from hpenv.tasks.data import DataFormatError, load_task_data

    _mnist_npz(tmp_path / "mnist10k.npz", labels=np.arange(50) % 12)
    with pytest.raises(DataFormatError, match=r"labels must be in \[0, 10\).*0\.\.11"):
        load_task_data(get_task("mnist").dataset, data_dir=tmp_path)
    _mnist_npz(tmp_path / "mnist10k.npz", labels=np.zeros(49, dtype=np.int64))
    with pytest.raises(DataFormatError, match="50 inputs but 49 labels"):
        load_task_data(get_task("mnist").dataset, data_dir=tmp_path, use_cache=False)


# ------------------------------------------------------ 9. env construction


def test_9_bad_env_arguments_fail_at_construction():
    task = SPEC.task()
    with pytest.raises(ValueError, match=r"initial lr=1000.0 is outside its range"):
        HPTuneEnv(task, initial={"lr": 1e3}, device="cpu")
    with pytest.raises(ValueError, match="budget must be a whole number"):
        HPTuneEnv(task, budget=100.5, device="cpu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot be split into 200 decisions"):
        HPTuneEnv(task, budget=100, decisions=200, device="cpu")
    with pytest.raises(ValueError, match="unknown fields"):
        HPTuneEnv(task, fidelity={"synthetic": {"epochs": 2}}, device="cpu")  # type: ignore[dict-item]
    env = HPTuneEnv(task, budget=600, decisions=3, initial={"lr": 1e-3}, device="cpu")
    with pytest.raises(ValueError, match="outside its range"):
        env.reset(seed=0, options={"hparams": {"lr": 5.0}})


def test_9_documented_conveniences_are_accepted():
    env = HPTuneEnv(SPEC.task(), tuned="lr", device="cpu",  # type: ignore[arg-type]
                    fidelity={"synthetic": {"budget": 600}}, decisions=3)  # fmt: skip
    assert env.tuned == ("lr",)
    _, info = env.reset(seed=0)
    assert info["budget"] == 600


# -------------------------------------------------- 10. policy artifacts


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda b: b.pop("obs_mean"), "lacks its observation normalisation"),
        (lambda b: b.update(obs_var=torch.full((20,), math.nan)), "NaN"),
        (lambda b: b.update(obs_mean=torch.zeros(7)), "shape"),
        (lambda b: b.update(clip_obs=-1.0), "positive"),
    ],
)
def test_10_bad_normalisation_statistics_are_refused_at_load(tmp_path: Path, change, match):
    from agents.policy import PolicyLoadError, load_policy

    path = make_policy().save(tmp_path / "good.pt")
    blob = torch.load(path, weights_only=True)
    change(blob)
    torch.save(blob, path)
    with pytest.raises(PolicyLoadError, match=match):
        load_policy(path)


# ---------------------------------------------------------- 12. out of memory


def _oom_above(run: TrainingRun, limit: int) -> None:
    """Make ``run``'s model raise an out-of-memory error on batches larger than ``limit``."""
    forward = run.model.forward

    def guarded(x: torch.Tensor) -> torch.Tensor:
        if run.model.training and x.shape[0] > limit:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return forward(x)

    run.model.forward = guarded  # type: ignore[method-assign]


def test_12_out_of_memory_reverts_the_batch_size_and_finishes_the_interval():
    run = TrainingRun(
        SPEC.task(), device="cpu", hparams=SPEC.task().defaults.replace(batch_size=32)
    )
    _oom_above(run, 32)
    assert not run.train(64).oom
    run.set_hparams(batch_size=128)
    stats = run.train(256)
    assert stats.oom
    assert not stats.diverged
    assert stats.samples == 256
    assert stats.steps == 8
    assert run.hparams.batch_size == 32  # the last size that fitted
    assert math.isfinite(stats.loss_mean)

    first = TrainingRun(
        SPEC.task(), device="cpu", hparams=SPEC.task().defaults.replace(batch_size=64)
    )
    _oom_above(first, 16)  # nothing fitted yet: halve until it does
    assert first.train(64).oom
    assert first.hparams.batch_size == 16
    tiny = TrainingRun(
        SPEC.task(), device="cpu", hparams=SPEC.task().defaults.replace(batch_size=2)
    )
    _oom_above(tiny, 0)
    with pytest.raises(torch.OutOfMemoryError, match="even at batch size 1"):
        tiny.train(4)


def test_12_env_reports_out_of_memory_and_penalises_it():
    from hpenv.rewards import OOM_PENALTY

    env = HPTuneEnv(SPEC.task(), tuned=("lr", "batch_size"), budget=1200, decisions=3,
                    initial={"batch_size": 32}, device="cpu")  # fmt: skip
    _, info = env.reset(seed=0)
    assert env.run is not None
    _oom_above(env.run, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, reward, terminated, _, step = env.step(np.array([0.0, 1.0], dtype=np.float32))
    assert step["oom"]
    assert not terminated
    assert step["hparams"]["batch_size"] == 32
    expected = math.log(info["val_loss"]) - math.log(step["val_loss"]) - OOM_PENALTY
    assert float(reward) == pytest.approx(expected)


def test_12_evaluation_out_of_memory_halves_the_evaluation_batch():
    run = TrainingRun(SPEC.task(), device="cpu", eval_batch_size=1024)
    forward = run.model.forward

    def guarded(x: torch.Tensor) -> torch.Tensor:
        if not run.model.training and x.shape[0] > 40:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return forward(x)

    run.model.forward = guarded  # type: ignore[method-assign]
    expected = TrainingRun(SPEC.task(), device="cpu").evaluate()
    assert run.evaluate().loss == pytest.approx(expected.loss)
    assert run.eval_batch_size == 32
