"""Throughput of the population engine against one-run-at-a-time training.

Measures (and prints; ``--out`` also writes JSON):

a. Member-steps/s (optimizer steps of one member per second) of
   `hpenv.population.Population` at each ``--sizes`` N, against the same N
   models stepped one after another with `TrainingRun` in this process, on one
   synthetic MLP task.
b. PPO agent steps/s (decisions per second, PPO updates included):
   `agents.metatrain.population_vec.PopulationVecEnv` at each N against today's
   meta-training default, SB3 ``SubprocVecEnv`` with 4 workers of
   ``HPTuneEnv`` (forkserver, 1 torch thread per worker, as
   `agents.metatrain.vec_env.build_vec_env` / `agents.metatrain.suite.make_env`). Same PPO settings
   (batch 64, 10 epochs, net 64-64) and the same total agent steps for every
   method; ``n_steps`` per method so that one update sees a few episodes
   (4 x 64 for the subprocesses; 5120 / N for a population, at most the total).
   With ``--tasks shape`` (default) every method of one repeat trains tasks of
   one architecture drawn from `SyntheticFamily` (seed = repeat), with the
   family's variety in noise, scale and conditioning: a per-architecture,
   like-for-like comparison, and repeats sample architectures. With
   ``--tasks family`` both draw from the whole family (a population draws one
   architecture per population, so few populations make this noisy).
c. Peak memory per member: on CUDA, ``torch.cuda.max_memory_allocated``; on
   CPU (Linux), the peak resident size of a fresh process while it builds,
   trains and evaluates N members beyond its size after the imports; per
   member: (peak(N) - peak(1)) / (N - 1).

Methods are interleaved within each repeat; ratios are per repeat, reported as
median [min, max].

Usage:
    python scripts/benchmark_population.py --sizes 16 64 256 --repeats 3
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import platform
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from agents.metatrain.config import MetaTrainConfig, episode_config
from agents.metatrain.population_vec import PopulationVecEnv
from agents.metatrain.throughput import member_step_rates
from hpenv.env import EpisodeConfig, HPTuneEnv
from hpenv.population import Member, Population
from hpenv.tasks import SyntheticFamily, SyntheticSpec
from hpenv.training import TrainingRun, resolve_device

#: Every method's episodes: meta-training's default settings (CPU fidelity, lr start range).
EPISODE = episode_config(MetaTrainConfig())
#: The core benchmark's task: a mid-sized member of the synthetic family.
CORE_SPEC = SyntheticSpec(input_dim=32, num_classes=4, num_samples=2_000, width=64, depth=2)
PPO_KWARGS: dict[str, Any] = {
    "batch_size": 64,
    "n_epochs": 10,
    "learning_rate": 3e-4,
    "policy_kwargs": {"net_arch": [64, 64]},
    "device": "cpu",
}


# ------------------------------------------------------------------ (a) the core


def core_rates(n: int, steps: int, device: torch.device) -> dict[str, float]:
    """Member-steps/s of a population of ``n`` and of ``n`` sequential TrainingRuns."""
    specs = [SyntheticSpec(**{**CORE_SPEC.__dict__, "seed": i}) for i in range(n)]
    population = Population([Member(s.task(), seed=i) for i, s in enumerate(specs)], device=device)
    runs = [TrainingRun(s.task(), seed=i, device=device) for i, s in enumerate(specs)]
    batched, sequential = member_step_rates(population, runs, CORE_SPEC.batch_size, steps)
    return {"population": batched, "sequential": sequential}


def task_core_rates(
    name: str, n: int, steps: int, device: torch.device, data_dir: str | None
) -> dict[str, float]:
    """Member-steps/s of a population of ``n`` runs of registered task ``name`` (its harness
    fidelity's subset) and of ``n`` sequential TrainingRuns of it."""
    from hpenv.plan import fidelity_for
    from hpenv.tasks import get_task

    task = get_task(name)
    data = task.load_data(data_dir=data_dir, subset=fidelity_for(name).subset)
    population = Population([Member(task, seed=i, data=data) for i in range(n)], device=device)
    runs = [TrainingRun(task, seed=i, data=data, device=device) for i in range(n)]
    batched, sequential = member_step_rates(population, runs, task.defaults.batch_size, steps)
    return {"population": batched, "sequential": sequential}


# ------------------------------------------------------------------ (b) PPO


def shape_family(seed: int) -> SyntheticFamily:
    """The family restricted to the shape of one task drawn from it (variety kept)."""
    spec = SyntheticFamily().sample(np.random.default_rng(seed))
    return SyntheticFamily(
        input_dim=(spec.input_dim,) * 2,
        num_classes=(spec.num_classes,) * 2,
        num_samples=(spec.num_samples,) * 2,
        widths=(spec.width,),
        depth=(spec.depth,) * 2,
        batch_sizes=(spec.batch_size,),
        steps=(spec.steps,) * 2,
    )


def ppo_rate(make_venv: Callable[[], Any], n_steps: int, total: int, seed: int) -> float:
    """Agent steps/s of PPO learning ``total`` steps over ``make_venv()`` (VecNormalize'd)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    venv = VecNormalize(make_venv())
    model = PPO("MlpPolicy", venv, n_steps=n_steps, seed=seed, verbose=0, **PPO_KWARGS)
    start = time.perf_counter()
    model.learn(total)
    elapsed = time.perf_counter() - start
    venv.close()
    return model.num_timesteps / elapsed  # learn() completes its last rollout


def subprocess_venv(family: SyntheticFamily) -> Any:
    from stable_baselines3.common.vec_env import SubprocVecEnv

    factory = functools.partial(_family_worker, family, EPISODE)
    return SubprocVecEnv([factory] * 4, start_method="forkserver")


def _family_worker(family: SyntheticFamily, episode: EpisodeConfig) -> Any:
    """`agents.metatrain.vec_env.worker_env` of ``make_env(["synthetic"])``, over ``family``."""
    from stable_baselines3.common.monitor import Monitor

    torch.set_num_threads(1)
    return Monitor(HPTuneEnv(family, config=episode, device="cpu"))


def population_venv(family: SyntheticFamily, n: int, device: str, seed: int) -> Any:
    return PopulationVecEnv(family, n, config=EPISODE, device=device, seed=seed)


# ------------------------------------------------------------------ (c) memory


def _peak_child(n: int, device: str) -> float:
    """Peak bytes a fresh process needs for ``n`` members (beyond its imports)."""
    torch.set_num_threads(1)
    dev = resolve_device(device)
    baseline = _reset_peak_rss()
    specs = [SyntheticSpec(**{**CORE_SPEC.__dict__, "seed": i}) for i in range(n)]
    population = Population([Member(s.task(), seed=i) for i, s in enumerate(specs)], device=dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    population.train(CORE_SPEC.batch_size * 8)
    population.evaluate()
    if dev.type == "cuda":
        return float(torch.cuda.max_memory_allocated(dev))
    return _status_bytes("VmHWM") - baseline


def _reset_peak_rss() -> float:
    """Reset the process's peak resident size (Linux) and return the current one."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass
    return _status_bytes("VmRSS")


def _status_bytes(key: str) -> float:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0


def memory_per_member(n: int, device: str) -> float:
    """Peak bytes per member at population size ``n``: (peak(n) - peak(1)) / (n - 1).

    The difference removes what any population needs once (first-call buffers,
    thread pools); for ``n`` = 1 it is the whole peak.
    """
    peaks = []
    for size in (n, 1) if n > 1 else (1,):
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            peaks.append(float(pool.apply(_peak_child, (size, device))))
    return peaks[0] if n == 1 else (peaks[0] - peaks[1]) / (n - 1)


# ------------------------------------------------------------------ main


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):8.1f} [{min(values):.1f}, {max(values):.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="device the members train on")
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--core-steps", type=int, default=20, help="optimizer steps timed in (a)")
    parser.add_argument("--total-steps", type=int, default=5_120, help="agent steps per PPO run")
    parser.add_argument("--tasks", choices=("shape", "family"), default="shape")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=("core", "ppo", "subprocess", "memory")
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of this process, for PPO and the population (0: torch's default; "
        "more than 1 is much slower when other processes share the cores)",
    )
    parser.add_argument(
        "--core-tasks", default="", help="also (a) on these registered tasks, comma-separated "
        "(e.g. the held-out suite's: mnist_rotated,digits_cnn,diabetes,synthetic_deep)",
    )  # fmt: skip
    parser.add_argument("--data-dir", default=None, help="data directory of --core-tasks")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    device = resolve_device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
          f"threads, device {device}, torch {torch.__version__}")  # fmt: skip
    results: dict[str, Any] = {"args": vars(args)}

    if "core" not in args.skip:
        print("\n(a) member-steps/s, synthetic MLP", CORE_SPEC.width, "x", CORE_SPEC.depth)
        core: dict[int, dict[str, list[float]]] = {
            n: {"population": [], "sequential": []} for n in args.sizes
        }
        for _ in range(args.repeats):
            for n in args.sizes:
                for key, value in core_rates(n, args.core_steps, device).items():
                    core[n][key].append(value)
        for n, rates in core.items():
            ratios = [p / s for p, s in zip(rates["population"], rates["sequential"], strict=True)]
            print(f"  N={n:4d} population {summary(rates['population'])}  sequential "
                  f"{summary(rates['sequential'])}  ratio {summary(ratios)}")  # fmt: skip
        results["core"] = core
        tasks = [t for t in args.core_tasks.split(",") if t.strip()]
        for name in tasks:
            rates: dict[str, list[float]] = {"population": [], "sequential": []}
            for _ in range(args.repeats):
                for key, value in task_core_rates(
                    name, args.sizes[0], args.core_steps, device, args.data_dir
                ).items():
                    rates[key].append(value)
            ratios = [p / s for p, s in zip(rates["population"], rates["sequential"], strict=True)]
            line = f"  {name:16s} N={args.sizes[0]:4d} population {summary(rates['population'])}"
            print(f"{line}  sequential {summary(rates['sequential'])}  ratio {summary(ratios)}")
            results.setdefault("core_tasks", {})[name] = rates

    if "ppo" not in args.skip:
        total = args.total_steps
        print(f"\n(b) PPO agent steps/s, {total} agent steps per run, tasks={args.tasks}")
        methods: dict[str, list[float]] = {}
        if "subprocess" not in args.skip:
            methods["subprocess x4"] = []
        methods.update({f"population N={n}": [] for n in args.sizes})
        shapes = []
        for repeat in range(args.repeats):
            family = shape_family(repeat) if args.tasks == "shape" else SyntheticFamily()
            shapes.append(str(family.sample(np.random.default_rng(0))))
            if "subprocess x4" in methods:
                rate = ppo_rate(lambda f=family: subprocess_venv(f), 64, total, repeat)
                methods["subprocess x4"].append(rate)
            for n in args.sizes:
                n_steps = max(1, min(5_120, total) // n)
                make = functools.partial(population_venv, family, n, args.device, repeat)
                methods[f"population N={n}"].append(ppo_rate(make, n_steps, total, repeat))
            print(
                f"  repeat {repeat}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in methods.items())
            )
        base = methods.get("subprocess x4")
        for name, rates in methods.items():
            line = f"  {name:18s} {summary(rates)} steps/s"
            if base:
                line += f"  x{summary([r / b for r, b in zip(rates, base, strict=True)])}"
            print(line)
        results["ppo"] = methods
        results["shapes"] = shapes

    if "memory" not in args.skip:
        print("\n(c) peak memory per member (MiB)")
        memory = {n: memory_per_member(n, args.device) / 2**20 for n in args.sizes}
        for n, mib in memory.items():
            print(f"  N={n:4d} {mib:8.3f}")
        results["memory_mib"] = memory

    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
