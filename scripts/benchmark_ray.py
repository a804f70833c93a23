"""Throughput of meta-training on Ray actors (`RayVecEnv`) against the subprocess default.

Measures PPO agent steps/s (decisions per second, PPO updates included) of
``model.learn(total_steps)`` over the training environments that
`agents.metatrain.vec_env.build_vec_env` builds, normalised by `VecNormalize`
and learned by `agents.metatrain.model.make_model`, exactly as meta-training
does (same tasks, same PPO settings, environments seeded by the repeat):

1. ``overhead``: ``--vec-env ray`` (a local Ray instance started for each run,
   outside the timing, with as many CPUs as actors) against
   ``--vec-env subprocess`` (`SubprocVecEnv`, forkserver) at ``--n-envs``
   workers, and against the same subprocesses at the niceness Ray gives its
   workers (15: the learner then has priority over the environments, which
   alone speeds up the lock-step loop on a busy machine; this isolates Ray's
   own cost); repeats interleaved (the order rotates), ratios per repeat,
   reported as median [min, max].
2. ``scaling``: on a local two-node cluster (`ray.cluster_utils.Cluster`, each
   node declaring ``max(--workers) / 2`` CPUs, actors spread over both), the
   throughput at each ``--workers`` count, repeats interleaved.

Start-up (Ray, actors, worker processes) and a warm-up (a reset and two steps)
are not timed: only ``learn``, which resets the environments with the repeat's
seed. The defaults take about 7 minutes on 2 cores; the total wall time is
printed last.

Usage:
    python scripts/benchmark_ray.py
    python scripts/benchmark_ray.py --sections scaling --workers 1,2,4,8 --repeats 5
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env import SubprocVecEnv, VecEnv, VecNormalize

from agents.cli import option, parse_config
from agents.cluster import ray_session
from agents.metatrain import MetaTrainConfig
from agents.metatrain.model import make_model
from agents.metatrain.suite import available
from agents.metatrain.vec_env import build_vec_env, env_kwargs, vec_env_runtime, worker_env
from hpenv.io import atomic_write_json


@dataclass(frozen=True)
class RayBenchmarkConfig:
    """What to measure (every field is a flag)."""

    sections: tuple[str, ...] = option(
        "overhead (Ray vs subprocess), scaling (workers on a two-node local cluster)",
        default=("overhead", "scaling"),
        choices=("overhead", "scaling"),
    )
    train_tasks: tuple[str, ...] = option(
        "tasks of the environments", default=("synthetic", "digits")
    )
    n_envs: int = option("workers (environments) of the overhead comparison", default=4)
    workers: tuple[int, ...] = option("worker counts of the scaling curve", default=(1, 2, 4))
    total_steps: int = option(
        "agent steps learned per timed run (a multiple of n_steps x workers)", default=384
    )
    n_steps: int = option("PPO rollout length per environment", default=32)
    batch_size: int = option("PPO minibatch size", default=64)
    repeats: int = option("timed repeats per measurement", default=3)
    data_dir: str | None = option("local data directory (default HPENV_DATA_DIR)", default=None)
    out: str = option("JSON file of the results", default="logs/benchmarks/ray.json")

    def __post_init__(self) -> None:
        if self.repeats < 1 or self.total_steps < 1 or not self.workers:
            raise ValueError("repeats, total_steps must be >= 1 and workers non-empty")


#: The niceness Ray gives its worker processes (``ps -o ni`` shows 15).
RAY_WORKER_NICENESS = 15


def build(config: MetaTrainConfig, tasks: list[str], nice: bool = False) -> VecEnv:
    """The training environments as meta-training builds them (or niced subprocesses)."""
    if not nice:
        return build_vec_env(config, tasks)
    factory = functools.partial(worker_env, env_kwargs(config, tasks), RAY_WORKER_NICENESS)
    return SubprocVecEnv([factory] * config.n_envs, start_method="forkserver")


def warm_up(venv: VecEnv, steps: int = 2) -> None:
    """A reset and a few steps, so that first-call costs (imports, torch's first kernels in
    each fresh worker) stay out of the timing."""
    venv.reset()
    actions = np.zeros((venv.num_envs, *(venv.action_space.shape or ())), np.float32)
    for _ in range(steps):
        venv.step(actions)


def agent_steps_per_second(config: MetaTrainConfig, tasks: list[str], nice: bool = False) -> float:
    """PPO agent steps/s of ``learn(config.total_steps)`` (construction and warm-up not timed)."""
    raw = build(config, tasks, nice)
    venv = VecNormalize(raw, norm_obs=True, norm_reward=False, gamma=config.gamma)
    try:
        warm_up(raw)
        model = make_model(config, venv)
        venv.seed(config.seed)
        start = time.perf_counter()
        model.learn(config.total_steps)
        elapsed = time.perf_counter() - start
        return int(model.num_timesteps) / elapsed  # learn() completes its last rollout
    finally:
        venv.close()


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f} [{min(values):.2f}, {max(values):.2f}]"


def overhead(args: RayBenchmarkConfig, base: MetaTrainConfig, tasks: list[str]) -> dict[str, Any]:
    names = ["subprocess", "subprocess-nice15", "ray"]
    rates: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name in names[repeat % 3 :] + names[: repeat % 3]:  # the order rotates
            vec_env = "ray" if name == "ray" else "subprocess"
            config = dataclasses.replace(base, vec_env=vec_env, seed=repeat)  # type: ignore[arg-type]
            with vec_env_runtime(config):  # a local Ray for this run only (nothing for subprocess)
                rates[name].append(agent_steps_per_second(config, tasks, name.endswith("nice15")))
        print(f"  repeat {repeat}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in rates.items()))
    ratios = {
        base_name: [r / s for r, s in zip(rates["ray"], rates[base_name], strict=True)]
        for base_name in names[:2]
    }
    for name, values in rates.items():
        print(f"  {name:17s} x{args.n_envs}: {summary(values)} agent steps/s")
    for base_name, values in ratios.items():
        cost = 100 * (1 - statistics.median(values))
        print(f"  ray / {base_name}: {summary(values)} (overhead {cost:.1f}%)")
    return {"rates": rates, "ratios": ratios}


def scaling(args: RayBenchmarkConfig, base: MetaTrainConfig, tasks: list[str]) -> dict[str, Any]:
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        raise RuntimeError("scaling starts its own two-node cluster: disconnect from Ray first")
    per_node = max(1, (max(args.workers) + 1) // 2)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": per_node})
    rates: dict[int, list[float]] = {n: [] for n in args.workers}
    try:
        cluster.add_node(num_cpus=per_node)
        with ray_session(cluster.address):
            print(f"  cluster: 2 nodes x {per_node} CPUs ({ray.cluster_resources().get('CPU')})")
            for repeat in range(args.repeats):
                for n in args.workers:
                    config = dataclasses.replace(base, vec_env="ray", n_envs=n, seed=repeat)
                    rates[n].append(agent_steps_per_second(config, tasks))
                print(
                    f"  repeat {repeat}: " + ", ".join(f"{n} {v[-1]:.2f}" for n, v in rates.items())
                )
    finally:
        cluster.shutdown()
    for n, values in rates.items():
        print(f"  {n} workers: {summary(values)} agent steps/s")
    return {"rates": {str(n): v for n, v in rates.items()}, "cpus_per_node": per_node}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_config(RayBenchmarkConfig, __doc__, argv)
    begin = time.perf_counter()
    torch.set_num_threads(1)  # the learner, as scripts/train_agent.py
    tasks, skipped = available(args.train_tasks, args.data_dir)
    base = MetaTrainConfig(
        train_tasks=tuple(tasks), total_steps=args.total_steps, n_envs=args.n_envs,
        n_steps=args.n_steps, batch_size=args.batch_size, eval_every=0, data_dir=args.data_dir,
    )  # fmt: skip
    results: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
        },
        "config": asdict(args),
        "tasks": tasks,
        "skipped": skipped,
    }
    print(f"{os.cpu_count()} CPUs, CUDA {torch.cuda.is_available()}, tasks {tasks}")
    if "overhead" in args.sections:
        print(f"\n1. agent steps/s, {args.n_envs} workers, {args.total_steps} steps per run")
        results["overhead"] = overhead(args, base, tasks)
    if "scaling" in args.sections:
        print(f"\n2. agent steps/s on a two-node local cluster, workers {args.workers}")
        results["scaling"] = scaling(args, base, tasks)
    results["wall_time"] = time.perf_counter() - begin
    atomic_write_json(results, Path(args.out))
    print(f"wrote {args.out} ({results['wall_time']:.0f} s in all)")
    return results


if __name__ == "__main__":
    main()
