"""One or two torch threads on this machine: TrainingRun, the harness, meta-training workers.

Each workload runs with 1 and with 2 torch threads, on an idle machine and
beside a competing job (another process keeping one core busy with matrix
products at one thread, as a second user's job or a second experiment would),
interleaved within each repeat:

a. `TrainingRun`: optimizer steps/s of a held-out task's model (the MNIST MLP,
   512-512, when the MNIST sample is found, else the deep synthetic MLP) and
   of the digits CNN;
b. the harness: seconds for a small `evaluate` (digits_cnn and diabetes, two
   seeds, the shipped policy, static and cosine) in this process;
c. meta-training workers: agent steps/s of `train_agent.py`'s default (4
   subprocess workers; ``--threads`` is each worker's torch threads).

Prints each rate, median [min, max] over repeats, and the 2-thread/1-thread
ratio; ``--out`` writes JSON.

Usage:
    python scripts/benchmark_threads.py --repeats 3 --data-dir ~/data
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

import torch

#: Seconds each TrainingRun rate is measured for.
RUN_SECONDS = 8.0


def _spin() -> None:
    """The competing job: one thread of matrix products, forever."""
    torch.set_num_threads(1)
    x = torch.randn(384, 384)
    while True:
        x = torch.tanh(x @ x)


@contextlib.contextmanager
def competing_job(on: bool) -> Iterator[None]:
    """A process keeping one core busy for the body (nothing when ``on`` is False)."""
    if not on:
        yield
        return
    process = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
    process.start()
    time.sleep(1.0)  # let it start spinning
    try:
        yield
    finally:
        process.kill()
        process.join()


def run_rate(task_name: str, data_dir: str | None) -> float:
    """Optimizer steps/s of a `TrainingRun` of ``task_name`` (this process's threads)."""
    from hpenv.training import TrainingRun

    run = TrainingRun(task_name, seed=0, device="cpu", data_dir=data_dir)
    batch = run.hparams.batch_size
    run.train(batch * 4)  # warm-up
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < RUN_SECONDS:
        steps += run.train(batch * 8).steps
    return steps / (time.perf_counter() - start)


def harness_seconds() -> float:
    """Seconds of a small evaluation in this process."""
    from agents.evaluation import EvalConfig, evaluate

    with tempfile.TemporaryDirectory() as tmp:
        config = EvalConfig(
            tasks=("digits_cnn", "diabetes"),
            seeds=(0, 1),
            methods=("policy", "static", "cosine"),
            engine="sequential",
            out_dir=tmp,
        )
        start = time.perf_counter()
        evaluate(config, progress=False)
        return time.perf_counter() - start


def worker_rate(threads: int) -> float:
    """Agent steps/s of the subprocess default with ``threads`` torch threads per worker."""
    from agents.metatrain.config import MetaTrainConfig
    from agents.metatrain.throughput import agent_rate

    return agent_rate(MetaTrainConfig(threads=threads), rollouts=2).per_second


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f} [{min(values):.2f}, {max(values):.2f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[1:]),
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=None, help="the MNIST sample's folder, if any")
    parser.add_argument(
        "--parts", nargs="+", default=["run", "harness", "workers"],
        choices=("run", "harness", "workers"),
    )  # fmt: skip
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    mnist = args.data_dir is not None and os.path.isfile(
        os.path.join(args.data_dir, "mnist10k.npz")
    )
    run_task = "mnist_rotated" if mnist else "synthetic_deep"
    workloads: dict[str, Callable[[int], float]] = {}
    if "run" in args.parts:
        workloads[f"TrainingRun {run_task} steps/s"] = lambda t: run_rate(run_task, args.data_dir)
        workloads["TrainingRun digits_cnn steps/s"] = lambda t: run_rate("digits_cnn", None)
    if "harness" in args.parts:
        workloads["harness seconds (lower is better)"] = lambda t: harness_seconds()
    if "workers" in args.parts:
        workloads["meta-training agent steps/s"] = worker_rate
    print(f"{os.cpu_count()} CPUs, torch {torch.__version__}; competing job: one busy core")
    results: dict[str, dict[str, list[float]]] = {
        name: {f"{load} {t}": [] for load in ("idle", "loaded") for t in (1, 2)}
        for name in workloads
    }
    for repeat in range(args.repeats):
        for loaded in (False, True):
            with competing_job(loaded):
                for name, workload in workloads.items():
                    for threads in (1, 2):
                        torch.set_num_threads(threads)
                        value = workload(threads)
                        key = f"{'loaded' if loaded else 'idle'} {threads}"
                        results[name][key].append(value)
                        print(f"  repeat {repeat} {name} {key} thread(s): {value:.2f}", flush=True)
    print("\nmedian [min, max] over repeats; ratio = 2 threads / 1 thread per repeat")
    for name, values in results.items():
        print(name)
        for load in ("idle", "loaded"):
            one, two = values[f"{load} 1"], values[f"{load} 2"]
            ratios = [b / a for a, b in zip(one, two, strict=True)]
            print(f"  {load:6s} 1 thread {summary(one)}  2 threads {summary(two)}  "
                  f"ratio {summary(ratios)}")  # fmt: skip
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"args": vars(args), "results": results}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
