"""Meta-training agent steps/s on the default suite: ways to step the environments, side by side.

Every option trains PPO exactly as ``scripts/train_agent.py`` would with its
flags (`agents.metatrain.throughput.agent_rate`: `build_vec_env`,
`VecNormalize`, the config's PPO), on the default suite (synthetic family +
digits), with the same rollout size (256 agent steps), minibatch (64) and
epochs (10); only how the environments are stepped differs:

- ``subprocess``: today's default, 4 `HPTuneEnv` workers (forkserver, 1 torch
  thread each), 64 steps per worker per rollout;
- ``population-N``: N population members in this process (``--vec-env
  population --n-envs N --n-steps 256/N``), with 1 or 2 torch threads;
- ``ray-groups-N``: N members in two Ray actors of N/2 (``--vec-env ray
  --ray-members-per-actor N/2``): one population per core.

Options are interleaved within each repeat; the rate counts the steps after the
first rollout (start-up left out). Prints each option's median [min, max]
rate and its per-repeat ratio to ``subprocess``; ``--out`` writes JSON.

Usage:
    python scripts/benchmark_metatrain.py --repeats 3
    python scripts/benchmark_metatrain.py --options subprocess population-64-t1 --repeats 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
from typing import Any

import torch

from agents.metatrain.config import MetaTrainConfig
from agents.metatrain.throughput import agent_rate

ROLLOUT = 256
DEFAULT_OPTIONS = (
    "subprocess",
    "population-64-t1",
    "population-64-t2",
    "population-128-t1",
    "population-128-t2",
    "ray-groups-64",
)


def option_config(name: str, seed: int, device: str = "cpu") -> tuple[MetaTrainConfig, int]:
    """The config of option ``name`` (see the module docstring) and its torch threads."""
    base = MetaTrainConfig(seed=seed, env_device=device)
    if name == "subprocess":
        return base, 1
    if name.startswith("population-"):
        _, size_text, threads_text = name.split("-")
        n = int(size_text)
        config = dataclasses.replace(base, vec_env="population", n_envs=n, n_steps=ROLLOUT // n)
        return config, int(threads_text.lstrip("t"))
    if name.startswith("ray-groups-"):
        n = int(name.rsplit("-", 1)[1])
        config = dataclasses.replace(
            base,
            vec_env="ray",
            n_envs=n,
            n_steps=ROLLOUT // n,
            ray_members_per_actor=n // 2,
            ray_cpus_per_env=1.0,
        )
        return config, 1
    raise ValueError(f"unknown option {name!r}; e.g. {', '.join(DEFAULT_OPTIONS)}")


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f} [{min(values):.1f}, {max(values):.1f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[1:]),
    )
    parser.add_argument("--options", nargs="+", default=list(DEFAULT_OPTIONS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--rollouts", type=int, default=12, help="timed rollouts of a population option"
    )
    parser.add_argument(
        "--subprocess-rollouts", type=int, default=4, help="timed rollouts of 'subprocess'"
    )
    parser.add_argument("--device", default="cpu", help="device the environments train on")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    for name in args.options:
        option_config(name, 0)  # unknown names fail before anything runs
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, environments on {args.device}; rollout {ROLLOUT} agent "
        "steps, minibatch 64, 10 epochs"
    )
    rates: dict[str, list[float]] = {name: [] for name in args.options}
    for repeat in range(args.repeats):
        for name in args.options:
            config, threads = option_config(name, repeat, args.device)
            torch.set_num_threads(threads)
            rollouts = args.subprocess_rollouts if name == "subprocess" else args.rollouts
            rate = agent_rate(config, rollouts=rollouts)
            rates[name].append(rate.per_second)
            print(f"  repeat {repeat} {name:18s} {rate.per_second:7.1f} agent steps/s "
                  f"({rate.steps} steps in {rate.seconds:.1f} s)", flush=True)  # fmt: skip
    base = rates.get("subprocess")
    print("\nagent steps/s, median [min, max] over repeats; ratio to subprocess per repeat")
    for name, values in rates.items():
        line = f"  {name:18s} {summary(values)}"
        if base and name != "subprocess":
            line += f"  x{summary([v / b for v, b in zip(values, base, strict=True)])}"
        print(line)
    if args.out:
        results: dict[str, Any] = {"args": vars(args), "rates": rates}
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
