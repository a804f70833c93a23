"""The GPU check: the population engine and the batched harness on one GPU, in about 5 minutes.

Three measurements, each printed as it finishes and written to --out (JSON):

1. Meta-training agent steps/s (`agents.metatrain.throughput.agent_rate`, PPO
   as train_agent.py runs it, minibatch 64, 10 epochs): population
   meta-training on the GPU at N = 256 (``--vec-env population --n-envs 256
   --n-steps 1``: the default's rollout of 256 agent steps) and N = 1,024 (a
   rollout of 1,024), against the CPU subprocess default on the same machine
   (4 HPTuneEnv workers). Default suite (synthetic family + digits).
2. A CIFAR-10-sized CNN (cifar10's model, generated uint8 tensors of CIFAR's
   shape: the data does not travel): a population of 16 members against 16
   sequential `TrainingRun`s on the same GPU, member-steps/s.
3. The batched harness (`scripts/evaluate.py`'s `evaluate`) on the held-out
   tasks whose data is here (--data-dir: MNIST and IMDB samples; digits,
   diabetes and the synthetic task need none): the policy, static, cosine and
   the 8-point grid, the default engine (``auto``: every batchable cell as a
   population member on a GPU) over 5 seeds against engine ``sequential`` over
   the first seed, seconds per cell side by side, and the two engines' mean
   final accuracy on the cells both ran.

--dry-run runs tiny sizes on the CPU (what the tests run); --device cpu runs
the full sizes on the CPU (the same measurements on a machine without a GPU).
Each part runs on its own: one that fails prints its traceback and the others
still run.

Usage (on the GPU machine):
    python scripts/gpu_check.py --data-dir .gpu/datasets --out $OUT/gpu_check.json
    python scripts/gpu_check.py --dry-run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from agents.metatrain.config import MetaTrainConfig
from agents.metatrain.throughput import agent_rate, member_step_rates
from hpenv.population import Member, Population
from hpenv.tasks import get_task
from hpenv.tasks.registry import HELDOUT_TASKS
from hpenv.testing import tiny_task_data
from hpenv.training import TrainingRun, resolve_device


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How big each part is (the full check, or the tiny --dry-run)."""

    device: str
    populations: tuple[int, ...]
    subprocess_envs: int
    seconds: float
    cnn_members: int
    cnn_steps: int
    cnn_train: int
    harness_seeds: tuple[int, ...]
    harness_tasks: tuple[str, ...]
    fidelity: tuple[str, ...]
    grid_points: int


FULL = Sizes(
    device="cuda",
    populations=(256, 1024),
    subprocess_envs=4,
    seconds=45.0,
    cnn_members=16,
    cnn_steps=40,
    cnn_train=10_000,
    harness_seeds=(0, 1, 2, 3, 4),
    harness_tasks=HELDOUT_TASKS,
    fidelity=(),
    grid_points=8,
)
DRY = Sizes(
    device="cpu",
    populations=(8,),
    subprocess_envs=2,
    seconds=1.0,
    cnn_members=2,
    cnn_steps=2,
    cnn_train=256,
    harness_seeds=(0, 1),
    harness_tasks=("digits_cnn",),
    fidelity=("digits_cnn:0.1:1",),
    grid_points=2,
)


def meta_training(sizes: Sizes, report: Callable[[str], None]) -> dict[str, Any]:
    """Part 1: agent steps/s of population meta-training on the device against the CPU default."""
    results: dict[str, Any] = {}
    small = {"budget": 256, "decisions": 4, "eval_every": 0} if sizes.seconds < 5 else {}
    base = MetaTrainConfig(n_envs=sizes.subprocess_envs, **small)
    torch.set_num_threads(1)
    rate = agent_rate(base, rollouts=3, seconds=sizes.seconds)
    results["subprocess_cpu"] = dataclasses.asdict(rate) | {"per_second": rate.per_second}
    report(f"  CPU subprocess x{base.n_envs}: {rate.per_second:8.1f} agent steps/s")
    for n in sizes.populations:
        n_steps = max(1, 256 // n)
        config = dataclasses.replace(
            base, vec_env="population", n_envs=n, n_steps=n_steps, env_device=sizes.device
        )
        rate = agent_rate(config, rollouts=10_000, seconds=sizes.seconds)
        ratio = rate.per_second / results["subprocess_cpu"]["per_second"]
        results[f"population_{n}"] = dataclasses.asdict(rate) | {
            "per_second": rate.per_second,
            "ratio_to_subprocess": ratio,
        }
        report(f"  population N={n} on {sizes.device} (rollout {rate.rollout}): "
               f"{rate.per_second:8.1f} agent steps/s, x{ratio:.1f}")  # fmt: skip
    return results


def cifar_cnn(sizes: Sizes, report: Callable[[str], None]) -> dict[str, Any]:
    """Part 2: a CIFAR-10-sized CNN population against as many sequential runs, member-steps/s."""
    device = resolve_device(sizes.device)
    task = get_task("cifar10")
    data = tiny_task_data(task, n_train=sizes.cnn_train, n_eval=1_000).to(device)
    batch, n, steps = task.defaults.batch_size, sizes.cnn_members, sizes.cnn_steps
    population = Population([Member(task, seed=i, data=data) for i in range(n)], device=device)
    runs = [TrainingRun(task, seed=i, data=data, device=device) for i in range(n)]
    batched, sequential = member_step_rates(population, runs, batch, steps)
    ratio = batched / sequential
    report(f"  CIFAR-sized CNN, {n} members x {steps} steps: population {batched:8.1f} "
           f"member-steps/s, sequential {sequential:8.1f}, x{ratio:.1f}")  # fmt: skip
    return {"population": batched, "sequential": sequential, "ratio": ratio}


def harness(sizes: Sizes, data_dir: str | None, report: Callable[[str], None]) -> dict[str, Any]:
    """Part 3: the harness's population engine against one run at a time, seconds per cell."""
    from agents.evaluation import EvalConfig, evaluate
    from agents.evaluation.records import RunStore

    tasks = sizes.harness_tasks
    if data_dir is None:  # only the tasks whose data needs no directory
        tasks = tuple(t for t in tasks if not t.startswith(("mnist", "imdb")))
    common: dict[str, Any] = {
        "tasks": tasks,
        "methods": ("policy", "static", "cosine", "grid"),
        "grid_points": sizes.grid_points,
        "fidelity": sizes.fidelity,
        "device": sizes.device,
        "data_dir": data_dir,
    }
    if sizes.fidelity:  # the tiny sizes
        common["decisions"] = 4
    results: dict[str, Any] = {"tasks": list(tasks)}
    with tempfile.TemporaryDirectory() as tmp:
        stores = {}
        for engine, seeds in (("auto", sizes.harness_seeds), ("sequential", (0,))):
            out = Path(tmp) / engine
            start = time.perf_counter()
            config = EvalConfig(engine=engine, seeds=seeds, out_dir=str(out), **common)
            evaluate(config, progress=False)
            seconds = time.perf_counter() - start
            store = stores[engine] = RunStore(out)
            cells = len(store.finished())
            results[engine] = {"cells": cells, "seconds": seconds, "per_cell": seconds / cells}
            report(f"  harness {engine:10s}: {cells} cells in {seconds:6.1f} s "
                   f"({seconds / cells:.2f} s per cell)")  # fmt: skip
        shared = set(stores["sequential"].finished()) & set(stores["auto"].finished())
        for engine, store in stores.items():
            scores = [store.rows[key]["val_accuracy"] for key in shared]
            results[engine]["mean_accuracy_shared"] = sum(scores) / max(len(scores), 1)
    ratio = results["sequential"]["per_cell"] / results["auto"]["per_cell"]
    results["ratio_per_cell"] = ratio
    report(f"  harness: x{ratio:.1f} per cell; mean val accuracy on the {len(shared)} shared "
           f"cells: batched {results['auto']['mean_accuracy_shared']:.4f}, sequential "
           f"{results['sequential']['mean_accuracy_shared']:.4f}")  # fmt: skip
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[1:]),
    )
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument(
        "--device", default=None, help="run the full sizes on this device (default: cuda)"
    )
    parser.add_argument("--data-dir", default=None, help="the MNIST and IMDB samples' folder")
    parser.add_argument(
        "--parts", nargs="+", default=["meta", "cnn", "harness"], choices=("meta", "cnn", "harness")
    )
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    sizes = DRY if args.dry_run else FULL
    if args.device is not None:
        sizes = dataclasses.replace(sizes, device=args.device)
    if sizes.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check.py: error: no CUDA device here; use --dry-run on a CPU", file=sys.stderr)
        return 2
    device = (
        torch.cuda.get_device_name(0) if sizes.device == "cuda" else platform.processor() or "cpu"
    )
    results: dict[str, Any] = {"device": device, "torch": torch.__version__}
    results["dry_run"] = args.dry_run
    print(f"device: {device}; torch {torch.__version__}; {torch.get_num_threads()} CPU threads",
          flush=True)  # fmt: skip
    parts: dict[str, Callable[[], dict[str, Any]]] = {
        "meta": lambda: meta_training(sizes, _say),
        "cnn": lambda: cifar_cnn(sizes, _say),
        "harness": lambda: harness(sizes, args.data_dir, _say),
    }
    failed = 0
    for name in args.parts:
        print(f"[{name}]", flush=True)
        start = time.perf_counter()
        try:
            results[name] = parts[name]()
        except Exception:
            failed += 1
            results[name] = {"error": traceback.format_exc()}
            traceback.print_exc()
        results[name]["wall_seconds"] = time.perf_counter() - start
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2))
    return 1 if failed else 0


def _say(text: str) -> None:
    print(text, flush=True)


if __name__ == "__main__":
    sys.exit(main())
