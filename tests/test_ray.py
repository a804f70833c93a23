"""Meta-training and evaluation on a local two-node Ray cluster.

The cluster (`ray.cluster_utils.Cluster`: a head and one worker node, 2 CPUs
each) is started once for the module. Tests check that the Ray paths give the
in-process results for the same seeds, and that losing the worker node
(`Cluster.remove_node`) while stepping or evaluating costs neither the run
nor any record; each kill is followed by a fresh worker node.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from policies import make_policy
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_meta_train import TINY

from agents.evaluation import EvalConfig, evaluate
from agents.evaluation.methods.core import MethodResult, RunSpec
from agents.evaluation.records import RunStore
from agents.metatrain import load_checkpoint, meta_train
from agents.metatrain.callbacks import ACTOR_RESTARTED
from agents.metatrain.config import episode_config
from agents.metatrain.suite import make_env
from agents.metatrain.vec_env import build_population, build_vec_env
from agents.stopping import JobInterrupted
from hpenv.episode_config import EpisodeConfig
from hpenv.tasks import DataNotFoundError
from scripts import load_script

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

#: A two-node cluster per module and minutes of Ray start-up: run by `make test-slow` (CI).
pytestmark = pytest.mark.slow

from agents.metatrain.ray_vec import RayVecEnv  # noqa: E402

RAY = dataclasses.replace(TINY, vec_env="ray", eval_every=0)
EVAL_TINY = ("digits:0.1:2",)  # 144 training samples x 2 epochs per run


class Nodes:
    """The module's cluster and its current worker node."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.worker = cluster.add_node(num_cpus=2)

    def kill_worker(self) -> None:
        """The worker node is lost (its processes killed), and a fresh one joins."""
        self.cluster.remove_node(self.worker, allow_graceful=False)
        self.worker = self.cluster.add_node(num_cpus=2)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    with pytest.MonkeyPatch.context() as env:  # the nodes' workers inherit this environment
        env.setenv("HPENV_NO_HUB", "1")
        env.setenv("HPENV_CACHE_DIR", str(tmp_path_factory.mktemp("ray-cache")))
        env.delenv("HPENV_DATA_DIR", raising=False)
        tests = str(Path(__file__).resolve().parent)  # workers import Stub from this module
        env.setenv(
            "PYTHONPATH", os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")]))
        )
        # Lost nodes are noticed within ~1 s (Ray's default health check takes ~15 s).
        system = {"health_check_period_ms": 500, "health_check_failure_threshold": 2}
        cluster = Cluster(
            initialize_head=True, head_node_args={"num_cpus": 2, "_system_config": system}
        )
        try:
            state = Nodes(cluster)
            ray.init(address=cluster.address, log_to_driver=False, include_dashboard=False)
            yield state
        finally:
            ray.shutdown()
            cluster.shutdown()


def _obs_steps(venv: Any, steps: int, seed: int = 3, first: int = 0) -> list[tuple[Any, ...]]:
    """Reset seeded ``seed``, then ``steps`` steps; env i's action depends on ``first + i`` only."""
    venv.seed(seed)
    out: list[tuple[Any, ...]] = [(venv.reset(),)]
    envs = np.arange(first, first + venv.num_envs)
    for t in range(steps):
        actions = np.sin(1.7 * envs + t)[:, None].astype(np.float32)
        obs, rewards, dones, infos = venv.step(actions)
        terminal = [info.get("terminal_observation") for info in infos]
        out.append((obs, rewards, dones, terminal))
    venv.close()
    return out


def _assert_same(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> None:
    for step_a, step_b in zip(a, b, strict=True):
        for x, y in zip(step_a, step_b, strict=True):
            if isinstance(x, list):
                for u, v in zip(x, y, strict=True):
                    assert (u is None) == (v is None)
                    if u is not None:
                        np.testing.assert_array_equal(u, v)
            else:
                np.testing.assert_array_equal(x, y)


def test_ray_vec_env_steps_like_dummy_vec_env(nodes: Nodes):
    tasks = ["synthetic", "digits"]
    venv = build_vec_env(RAY, tasks)
    assert isinstance(venv, RayVecEnv)
    assert len(set(venv.node_ids())) == 2  # spread over both nodes
    assert venv.get_attr("decisions") == [4, 4]
    from stable_baselines3.common.monitor import Monitor

    assert venv.env_is_wrapped(Monitor) == [True, True]
    on_ray = _obs_steps(venv, 10)  # 4 decisions an episode: crosses episode ends
    in_process = _obs_steps(build_vec_env(dataclasses.replace(RAY, vec_env="dummy"), tasks), 10)
    _assert_same(on_ray, in_process)
    assert any(step[2].any() for step in on_ray[1:])

    # groups of population members, one PopulationVecEnv per actor
    groups = dataclasses.replace(RAY, n_envs=4, ray_members_per_actor=2)
    grouped = _obs_steps(build_vec_env(groups, ["synthetic"]), 3)
    pair = dataclasses.replace(groups, n_envs=2)
    parts = [_obs_steps(build_population(pair, ["synthetic"]), 3, 3 + k, k) for k in (0, 2)]
    for step, (a, b) in zip(grouped, zip(*parts, strict=True), strict=True):
        for x, y, z in zip(step[:2], a[:2], b[:2], strict=False):
            np.testing.assert_array_equal(x, np.concatenate([y, z]))


def test_lost_actor_restarts_its_episode(nodes: Nodes):
    # Each actor loads digits from the data directory itself (not the object store).
    venv = build_vec_env(dataclasses.replace(RAY, ray_data="data_dir"), ["synthetic", "digits"])
    assert isinstance(venv, RayVecEnv)
    lost = venv.node_ids().index(nodes.worker.node_id)
    venv.seed(0)
    venv.reset()
    zeros = np.zeros((2, 1), np.float32)
    before, _, _, _ = venv.step(zeros)
    nodes.kill_worker()
    obs, rewards, dones, infos = venv.step(zeros)  # the actor on the lost node is replaced
    assert venv.restarts == 1
    assert dones[lost]
    assert not dones[1 - lost]  # the other episode goes on (step 2 of 4)
    assert rewards[lost] == 0.0
    assert infos[lost][ACTOR_RESTARTED]
    assert infos[lost]["TimeLimit.truncated"]
    np.testing.assert_array_equal(infos[lost]["terminal_observation"], before[lost])
    assert "episode" not in infos[lost]  # no half episode for SB3's statistics
    # the new episode's first observation, seeded from (seed, actor, restart count)
    seed = int(np.random.SeedSequence([0, lost, 1]).generate_state(1)[0])
    first, _ = make_env(["synthetic", "digits"], episode_config(RAY)).reset(seed=seed)
    np.testing.assert_array_equal(obs[lost], first)
    for _ in range(4):  # and stepping goes on
        venv.step(zeros)
    venv.close()


def _synthetic_env() -> Any:
    return make_env(["synthetic"], EpisodeConfig(decisions=2, budget=96))


def test_actors_ask_for_their_cpus(nodes: Nodes):
    # Two CPUs each on 2-CPU nodes: one actor per node, even where Ray would pack them.
    venv = RayVecEnv([_synthetic_env] * 2, num_cpus=2, scheduling_strategy="DEFAULT")
    assert len(set(venv.node_ids())) == 2
    with pytest.raises(TimeoutError, match="asks for 2 CPU") as stuck:  # a third finds no room
        RayVecEnv([_synthetic_env], num_cpus=2, start_timeout=2)
    venv.close()
    # The third left nothing queued, though its traceback (kept here) still holds it. (120 s:
    # under load the pair has taken more than 30 s to start; a queued third would block forever.)
    venv = RayVecEnv([_synthetic_env] * 2, num_cpus=2, start_timeout=120)
    assert stuck.value.__traceback__ is not None
    venv.close()


def test_actors_share_a_gpu_by_fractions(nodes: Nodes):
    gpu_node = nodes.cluster.add_node(num_cpus=0, num_gpus=1)  # Ray's own count: no real GPU
    try:
        venv = RayVecEnv([_synthetic_env] * 2, num_cpus=0, num_gpus=0.5)
        assert venv.node_ids() == [gpu_node.node_id] * 2  # both halves of the one GPU
        with pytest.raises(TimeoutError, match=r"0\.5 GPU"):  # no third half
            RayVecEnv([_synthetic_env], num_cpus=0, num_gpus=0.5, start_timeout=2)
        venv.seed(0)
        venv.reset()
        venv.step(np.zeros((2, 1), np.float32))
        venv.close()
    finally:
        nodes.cluster.remove_node(gpu_node)


def test_object_store_data_needs_no_data_dir_on_the_workers(nodes: Nodes, tmp_path: Path):
    images = np.random.default_rng(0).integers(0, 255, (100, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "mnist.npz", images=images, labels=np.arange(100) % 10)
    config = dataclasses.replace(RAY, train_tasks=("mnist",), data_dir=str(tmp_path))
    shared = build_vec_env(config, ["mnist"])  # loaded here once, then in the object store
    on_disk = build_vec_env(dataclasses.replace(config, ray_data="data_dir"), ["mnist"])
    (tmp_path / "mnist.npz").unlink()  # no worker can read it now
    assert len(_obs_steps(shared, 5)) == 6  # crosses an episode end
    with pytest.raises(DataNotFoundError, match="mnist"):
        on_disk.reset()
    on_disk.close()


def _progress(out: Path) -> list[dict[str, str]]:
    with open(out / "progress.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def clean_run(nodes: Nodes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny meta-training through `RayVecEnv` that loses no node."""
    out = tmp_path_factory.mktemp("clean") / "ray"
    meta_train(dataclasses.replace(RAY, out_dir=str(out)))
    return out


def _files(out: Path) -> tuple[list[str], int]:
    """The run directory's files (event files, named by time and host, only counted)."""
    paths = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    return [p for p in paths if "tfevents" not in p], sum("tfevents" in p for p in paths)


def test_meta_training_on_ray_equals_in_process(clean_run: Path, tmp_path: Path):
    shutil.copytree(clean_run, tmp_path / "ray")
    meta_train(dataclasses.replace(RAY, vec_env="dummy", out_dir=str(tmp_path / "dummy")))
    ray_run = load_checkpoint(tmp_path / "ray" / "checkpoints" / "latest.pt")
    dummy_run = load_checkpoint(tmp_path / "dummy" / "checkpoints" / "latest.pt")
    assert ray_run["num_timesteps"] == dummy_run["num_timesteps"] == 96
    for name, tensor in dummy_run["policy"].items():
        assert torch.equal(ray_run["policy"][name], tensor), name
    column = "rollout/ep_rew_mean"
    ray_rows, dummy_rows = _progress(tmp_path / "ray"), _progress(tmp_path / "dummy")
    assert [r[column] for r in ray_rows] == [r[column] for r in dummy_rows]
    assert (tmp_path / "ray" / "policy.pt").is_file()


def test_meta_training_survives_a_lost_node_and_resumes(
    nodes: Nodes, clean_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    sent = {"steps": 0}
    original = RayVecEnv.step_async

    def step_async(self: RayVecEnv, actions: np.ndarray) -> None:
        original(self, actions)  # the steps are in flight when the node goes
        sent["steps"] += 1
        if sent["steps"] == 20:
            nodes.kill_worker()

    monkeypatch.setattr(RayVecEnv, "step_async", step_async)
    out = tmp_path / "run"
    config = dataclasses.replace(RAY, out_dir=str(out))
    meta_train(config)
    checkpoint = load_checkpoint(out / "checkpoints" / "latest.pt")
    assert checkpoint["num_timesteps"] == 96  # 3 rollouts of 2 envs x 16 steps
    assert checkpoint["ray_actor_restarts"] == 1
    rows = _progress(out)
    steps = [int(r["time/total_timesteps"]) for r in rows]
    assert steps == [32, 64, 96]
    assert rows[-1]["hpenv/ray_actor_restarts"] == "1"
    assert _files(out) == _files(clean_run)  # the files of a run that lost nothing
    clean = load_checkpoint(clean_run / "checkpoints" / "latest.pt")
    assert checkpoint["episodes"] >= clean["episodes"] - 2  # at most both episodes cut short

    meta_train(dataclasses.replace(config, total_steps=128, resume=True))
    resumed = load_checkpoint(out / "checkpoints" / "latest.pt")
    assert resumed["num_timesteps"] == 128
    assert resumed["ray_actor_restarts"] == 1
    assert [int(r["time/total_timesteps"]) for r in _progress(out)] == [32, 64, 96, 128]
    events = EventAccumulator(str(out))
    events.Reload()
    for tag in events.Tags()["scalars"]:  # every scalar once per step, across the resume
        logged = [event.step for event in events.Scalars(tag)]
        assert len(logged) == len(set(logged)), tag
    assert events.Scalars("hpenv/ray_actor_restarts")[-1].value == 1


def _rows(out: Path) -> dict[tuple[str, str, str], dict[str, str]]:
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    keyed = {(r["method"], r["task"], r["seed"]): r for r in rows}
    assert len(keyed) == len(rows)  # each cell exactly once
    return keyed


def test_evaluation_on_ray_equals_in_process(nodes: Nodes, tmp_path: Path):
    policy = make_policy(decisions=3).save(tmp_path / "policy.pt")
    config = EvalConfig(
        policy=str(policy), tasks=("digits",), seeds=(0, 1), methods=("policy", "linear"),
        fidelity=EVAL_TINY,
    )  # fmt: skip
    # Ray cells train one run at a time: compare with the sequential engine here
    here = evaluate(
        dataclasses.replace(config, out_dir=str(tmp_path / "here"), engine="sequential"),
        progress=False,
    )
    there = evaluate(
        dataclasses.replace(
            config, out_dir=str(tmp_path / "ray"), ray_address=nodes.cluster.address
        ),
        progress=False,
    )
    assert here.runs == there.runs == 4
    assert there.errors == 0
    expected, got = _rows(tmp_path / "here"), _rows(tmp_path / "ray")
    assert expected.keys() == got.keys()
    for key, row in expected.items():
        assert {**got[key], "wall_time": ""} == {**row, "wall_time": ""}, key


def test_the_scripts_connect_to_the_cluster_and_disconnect(
    nodes: Nodes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    address = nodes.cluster.address
    handler = signal.getsignal(signal.SIGTERM)
    connected: list[str | None] = []
    init = ray.init

    def record_init(*args: Any, **kwargs: Any) -> Any:
        connected.append(kwargs.get("address"))
        return init(*args, **kwargs)

    monkeypatch.setattr(ray, "init", record_init)
    ray.shutdown()  # the scripts connect themselves
    try:
        train = load_script("train_agent").main
        argv = [
            "--vec-env", "ray", "--ray-address", address, "--train-tasks", "synthetic",
            "--total-steps", "32", "--n-envs", "2", "--decisions", "4", "--budget", "160",
            "--n-steps", "16", "--batch-size", "16", "--n-epochs", "1", "--net-arch", "16",
            "--eval-every", "0", "--out-dir", str(tmp_path / "meta"),
        ]  # fmt: skip
        assert train(argv) == 0
        assert not ray.is_initialized()  # the connection it opened is closed again
        assert signal.getsignal(signal.SIGTERM) == handler  # and ray.init's handler is gone
        assert [r["time/total_timesteps"] for r in _progress(tmp_path / "meta")] == ["32"]
        assert (tmp_path / "meta" / "policy.pt").is_file()
        # a resume takes the address again (without it, a Ray is started here)
        assert train(["--out-dir", str(tmp_path / "meta"), "--resume", "--total-steps", "64",
                      "--ray-address", address]) == 0  # fmt: skip
        assert [r["time/total_timesteps"] for r in _progress(tmp_path / "meta")] == ["32", "64"]
        assert connected == [address, address]

        evaluate_main = load_script("evaluate").main
        argv = [
            "--ray-address", address, "--policy", str(tmp_path / "meta" / "policy.pt"),
            "--tasks", "digits", "--seeds", "0", "--methods", "static", "--fidelity",
            EVAL_TINY[0], "--out-dir", str(tmp_path / "eval"),
        ]  # fmt: skip
        assert evaluate_main(argv) == 0
        assert not ray.is_initialized()
        assert connected == [address] * 3
        assert list(_rows(tmp_path / "eval")) == [("static", "digits", "0")]
    finally:
        init(address=address, log_to_driver=False, include_dashboard=False)


@dataclass
class Stub:
    """No training: a fixed result after ``sleep`` seconds; ``crashes`` kills its worker first.

    ``optuna`` rows carry best params; ``optuna_warm`` rows the warm configs they were given.
    Every start leaves a file in ``marks`` (a cell lost and rerun starts twice).
    """

    name: str
    marks: str
    sleep: float = 0.0
    crashes: int = 0
    warm_configs: dict[str, Any] = field(default_factory=dict)

    def run(self, spec: RunSpec) -> MethodResult:
        cell = f"{self.name}-{spec.task}-{spec.seed}"
        started = len(list(Path(self.marks).glob(f"{cell}.*")))
        Path(self.marks, f"{cell}.{started}").touch()
        if started < self.crashes:
            os._exit(1)  # the worker dies mid-cell
        time.sleep(self.sleep if spec.seed else self.sleep / 10)  # seed 0 finishes first
        extra: dict[str, Any] = {"warm": dict(self.warm_configs)}
        if self.name == "optuna":
            extra = {"best_params": {"lr_factor": spec.seed + 1.0, "task": spec.task}}
        point = {"progress": 1.0, "samples": 100, "lr": 0.1, "val_loss": 1.0, "val_accuracy": 0.5}
        return MethodResult(
            self.name, spec.task, spec.seed, spec.start_lr_factor, 1.0, 0.5, math.nan, 0.5,
            100, 100, 0.01, False, [point], extra,
        )  # fmt: skip


def _stub_config(tmp_path: Path, name: str, **kwargs: Any) -> EvalConfig:
    return EvalConfig(
        fidelity=(*EVAL_TINY, "wine:0.2:1"), out_dir=str(tmp_path / name),
        ray_address="auto", **kwargs,
    )  # fmt: skip


def test_optuna_warm_cells_wait_for_the_optuna_cells(nodes: Nodes, tmp_path: Path):
    marks = str(tmp_path / "marks")
    os.makedirs(marks)
    methods = {
        "optuna": lambda: Stub("optuna", marks, sleep=5.0),  # 0.5 s at seed 0
        "optuna_warm": lambda warm_configs: Stub("optuna_warm", marks, warm_configs=warm_configs),
        "static": lambda: Stub("static", marks),
    }
    config = _stub_config(
        tmp_path, "warm", tasks=("digits", "wine"), seeds=(0,),
        methods=("optuna_warm", "static", "optuna"),
    )  # fmt: skip
    assert evaluate(config, methods, progress=False).runs == 6
    store = RunStore(tmp_path / "warm")
    for task, other in (("digits", "wine"), ("wine", "digits")):
        warm = store.records[("optuna_warm", task, 0, 1.0)]["extra"]["warm"]
        assert warm == {other: [{"lr_factor": 1.0, "task": other}]}


def test_evaluation_survives_a_lost_node(
    nodes: Nodes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    marks = str(tmp_path / "marks")
    os.makedirs(marks)
    recorded = {"cells": 0}
    original = RunStore.append

    def append(self: RunStore, row: dict[str, Any], record: dict[str, Any]) -> None:
        original(self, row, record)
        recorded["cells"] += 1
        if recorded["cells"] == 1:  # the seed 1 and 2 cells are running, on both nodes
            nodes.kill_worker()

    monkeypatch.setattr(RunStore, "append", append)
    methods = {
        "static": lambda: Stub("static", marks, sleep=3.0),
        "linear": lambda: Stub("linear", marks, sleep=3.0),
    }
    config = _stub_config(
        tmp_path, "lost", tasks=("digits",), seeds=(0, 1, 2), methods=("static", "linear")
    )
    report = evaluate(config, methods, progress=False)
    assert (report.runs, report.errors) == (6, 0)
    assert len(_rows(tmp_path / "lost")) == 6  # each cell once
    assert len(RunStore(tmp_path / "lost").records) == 6
    assert [p.name for p in Path(marks).glob("*.1")]  # cells of the lost node ran again


def test_a_cell_whose_worker_keeps_crashing_is_run_again(nodes: Nodes, tmp_path: Path):
    marks = str(tmp_path / "marks")
    os.makedirs(marks)
    # Two crashes: the first rerun by Ray (ray_retries=1), the second submitted again here.
    methods = {"static": lambda: Stub("static", marks, crashes=2)}
    config = _stub_config(
        tmp_path, "crash", tasks=("digits",), seeds=(0,), methods=("static",), ray_retries=1
    )
    report = evaluate(config, methods, progress=False)
    assert (report.runs, report.errors) == (1, 0)
    assert len(list(Path(marks).iterdir())) == 3
    # No retries: the lost cell is an error row, and a resume runs it again.
    methods = {"linear": lambda: Stub("linear", marks, crashes=1)}
    config = _stub_config(
        tmp_path, "once", tasks=("digits",), seeds=(0,), methods=("linear",), ray_retries=0
    )
    report = evaluate(config, methods, progress=False)
    assert (report.runs, report.errors) == (1, 1)
    assert _rows(tmp_path / "once")[("linear", "digits", "0")]["error"].startswith("Worker")
    report = evaluate(dataclasses.replace(config, resume=True), methods, progress=False)
    assert (report.runs, report.errors) == (1, 0)


def test_evaluation_on_ray_stops_and_resumes(
    nodes: Nodes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    marks = str(tmp_path / "marks")
    os.makedirs(marks)
    original = RunStore.append

    def append(self: RunStore, row: dict[str, Any], record: dict[str, Any]) -> None:
        original(self, row, record)
        if len(self.rows) == 1:  # Ctrl-C once the first cell is in, the others running
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(RunStore, "append", append)
    methods = {"static": lambda: Stub("static", marks, sleep=3.0)}
    config = _stub_config(tmp_path, "stop", tasks=("digits",), seeds=(0, 1, 2), methods=("static",))
    with pytest.raises(JobInterrupted, match="--resume"):
        evaluate(config, methods, progress=False)
    # one cell in, the others stopped: seed 0's (the quickest) unless a loaded machine
    # started its worker late (seen beside two busy jobs on two cores)
    assert len(_rows(tmp_path / "stop")) == 1
    monkeypatch.setattr(RunStore, "append", original)
    report = evaluate(dataclasses.replace(config, resume=True), methods, progress=False)
    assert (report.runs, report.errors) == (3, 0)
    assert len(_rows(tmp_path / "stop")) == 3  # each cell once
    assert len(RunStore(tmp_path / "stop").records) == 3
