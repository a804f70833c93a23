"""Throughput of `TrainingRun` against the loops users would otherwise write.

Measures, for the MNIST MLP at batch 128 (on the MNIST found through
``--data-dir`` / ``HPENV_DATA_DIR``, e.g. a 10k-image ``mnist10k.npz`` sample) and the CIFAR-10
CNN at batch 128 (synthetic CIFAR-shaped data):

1. ``TrainingRun`` vs a plain PyTorch loop doing the same updates on the same
   tensors (pre-normalised float tensors, permutation slices, same optimizer);
2. ``TrainingRun`` vs the usual loop: a torchvision-style ``Dataset`` of PIL
   images through ``ToTensor`` + ``Normalize`` and a shuffling ``DataLoader``;
3. the CIFAR-10 CNN (``TrainingRun`` vs the plain loop);
4. ``HPTuneEnv`` against the same training driven through ``TrainingRun`` alone
   (MNIST, default decision interval), and the evaluation share of an interval;
5. the wall time of single meta-training episodes at the CPU fidelity of
   ``hpenv/plan.py`` (``FIDELITY``).

Measurements are repeated, interleaved across methods; the script prints the
median samples/s with its min-max spread, ratios as the median of per-repeat
(side-by-side) ratios, and writes everything to ``--out`` as JSON.

Usage:
    python scripts/benchmark_training.py --data-dir ~/data   # holding mnist.npz or MNIST/raw/
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from agents.cli import option, parse_config
from hpenv.env import HPTuneEnv
from hpenv.io import atomic_write_json
from hpenv.plan import FIDELITY, Fidelity
from hpenv.tasks import DataNotFoundError, SyntheticFamily, TaskData, get_task
from hpenv.tasks.augment import crop_flip
from hpenv.tasks.models import init_parameters
from hpenv.training import TrainingRun, resolve_device

Interval = Callable[[], int]  # trains some samples, returns how many

#: The offline default meta-training suite.
CHEAP_TASKS = ("digits", "synthetic", "mnist", "imdb")


def measure(benches: dict[str, Interval], repeats: int, device: torch.device) -> dict[str, list]:
    """samples/s of each bench, ``repeats`` times, interleaved (A B C A B C ...).

    Interleaving spreads slow drifts of the machine (other load, clocks) over
    every method instead of penalising whichever happens to run last.
    """
    rates: dict[str, list[float]] = {name: [] for name in benches}
    for _ in range(repeats):
        for name, interval in benches.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            samples = interval()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            rates[name].append(samples / (time.perf_counter() - start))
    return rates


def summary(rates: list[float]) -> dict[str, float]:
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}


def training_run_bench(
    task_name: str, data: TaskData, samples: int, device: torch.device
) -> Interval:
    run = TrainingRun(task_name, data=data, device=device, seed=0)
    run.train(min(samples, 4 * run.hparams.batch_size))  # warm-up

    def interval() -> int:
        run.train(samples)
        return samples

    return interval


def plain_loop_bench(
    task_name: str, data: TaskData, samples: int, device: torch.device
) -> Interval:
    """The same model, optimizer and batches, written as the shortest correct loop.

    Inputs are normalised to float once up front (more memory, less work per
    step); CIFAR-10 batches get the same crop+flip augmentation tensor code.
    """
    task = get_task(task_name)
    hp = task.defaults
    model = task.build_model(data, dropout=hp.dropout)
    init_parameters(model, torch.Generator().manual_seed(0))
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=hp.lr, betas=(hp.momentum, 0.999))
    mean = torch.tensor(data.image_mean).view(1, -1, 1, 1)
    std = torch.tensor(data.image_std).view(1, -1, 1, 1)
    x = ((data.train_x.float() / 255 - mean) / std).to(device)
    y = data.train_y.to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    bs = hp.batch_size
    augment = task.augment == "crop_flip"

    def interval() -> int:
        done = 0
        while done < samples:
            order = torch.randperm(x.shape[0], generator=gen, device=device)
            for i in range(0, x.shape[0] - bs + 1, bs):
                index = order[i : i + bs]
                inputs = crop_flip(x[index], gen) if augment else x[index]
                loss = F.cross_entropy(model(inputs), y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                done += bs
                if done >= samples:
                    break
        return done

    interval()  # warm-up
    return interval


def pil_dataloader_bench(
    data: TaskData, samples: int, device: torch.device, workers: int
) -> Interval:
    """The loop most tutorials write: PIL images, ToTensor + Normalize, DataLoader."""
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    task = get_task("mnist")
    hp = task.defaults
    images = data.train_x[:, 0].numpy()
    labels = data.train_y.numpy()

    class PILDataset(Dataset[tuple[torch.Tensor, int]]):
        """torchvision.datasets.MNIST's __getitem__: a PIL image through the transform."""

        def __init__(self) -> None:
            self.transform = transforms.Compose(
                [transforms.ToTensor(), transforms.Normalize(data.image_mean, data.image_std)]
            )

        def __len__(self) -> int:
            return len(labels)

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            image = Image.fromarray(images[i], mode="L")
            return self.transform(image), int(labels[i])

    loader = DataLoader(
        PILDataset(),
        batch_size=hp.batch_size,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        generator=torch.Generator().manual_seed(0),
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
    )
    model = task.build_model(data, dropout=hp.dropout)
    init_parameters(model, torch.Generator().manual_seed(0))
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=hp.lr)

    def interval() -> int:
        done = 0
        while done < samples:
            for xb, yb in loader:
                xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
                loss = F.cross_entropy(model(xb), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                done += xb.shape[0]
                if done >= samples:
                    break
        return done

    interval()  # warm-up (and worker start-up)
    return interval


def env_episode_bench(
    task_name: str, data: TaskData, device: torch.device, shares: dict[str, list[float]]
) -> Interval:
    """One default-interval episode through `HPTuneEnv` (zero actions, fixed lr).

    Appends to ``shares`` each episode's evaluation time / training time, and
    the env's own overhead: (episode wall time - time inside `TrainingRun.train`
    and `TrainingRun.evaluate`) / that time.
    """
    task = get_task(task_name)
    env = HPTuneEnv(
        task, device=str(device), data_fn=lambda t: data, initial={"lr": task.defaults.lr}
    )
    zero = np.zeros(1, dtype=np.float32)

    def episode() -> int:
        env.reset(seed=0)
        done = False
        while not done:
            _, _, terminated, truncated, info = env.step(zero)
            done = terminated or truncated
        inner = info["train_time"] + info["eval_time"]
        shares["eval"].append(info["eval_time"] / info["train_time"])
        shares["overhead"].append((info["wall_time"] - inner) / inner)
        return env.episode_budget

    return episode


def bare_episode_bench(task_name: str, data: TaskData, device: torch.device) -> Interval:
    """The same training and evaluation calls as the env episode, on `TrainingRun` alone."""
    task = get_task(task_name)
    budget = task.budget_samples(data)
    interval = -(-budget // 20)
    val_size = min(task.val_size, max(interval, 256))

    def episode() -> int:
        run = TrainingRun(task, seed=0, device=device, data=data, val_size=val_size)
        run.evaluate()
        while run.samples_done < budget:
            run.train(min(interval, budget - run.samples_done))
            run.evaluate()
        return budget

    return episode


def cheap_episode_times(device: torch.device, data_dir: str | None) -> dict[str, Any]:
    """Wall time of single meta-training episodes at the CPU fidelity (hpenv.plan.FIDELITY)."""
    times: dict[str, Any] = {}
    for name in CHEAP_TASKS:
        fidelity = FIDELITY.get(name, Fidelity())
        kwargs = {k: v for k, v in asdict(fidelity).items() if v is not None}
        try:
            env = HPTuneEnv(name if name != "synthetic" else SyntheticFamily(), device=str(device),
                            data_dir=data_dir, **kwargs)  # fmt: skip
            env.reset(seed=0)  # loads data, warms up
        except DataNotFoundError as exc:
            print(f"skipping {name}: {str(exc).splitlines()[0]}")
            continue
        walls = []
        for seed in range(3):
            env.reset(seed=seed)
            done = False
            while not done:
                _, _, terminated, truncated, info = env.step(env.action_space.sample() * 0)
                done = terminated or truncated
            walls.append(info["wall_time"])
        times[name] = {"fidelity": kwargs, **summary(walls), "all": walls}
        spread = f"[{min(walls):.1f}, {max(walls):.1f}]"
        print(f"episode {name:10s} {statistics.median(walls):6.1f} s  {spread}  {kwargs}")
    return times


def synthetic_cifar(n: int) -> TaskData:
    """CIFAR-10-shaped random data: uint8 (n, 3, 32, 32), 10 classes."""
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8))
    y = torch.from_numpy(rng.integers(0, 10, size=n))
    info = get_task("cifar10").dataset
    assert info is not None
    return TaskData(
        x, y, x[:512], y[:512], None, None, "image", 10, "synthetic CIFAR-shaped",
        image_mean=info.image_mean, image_std=info.image_std,
    )  # fmt: skip


def training_section(
    results: dict[str, Any], mnist: TaskData, device: torch.device, args: BenchmarkConfig
) -> None:
    """Throughput of TrainingRun vs the plain loop and the PIL + DataLoader loop."""
    cifar = synthetic_cifar(8_192)
    benches = {
        "mnist_mlp_trainingrun": training_run_bench("mnist", mnist, args.samples, device),
        "mnist_mlp_plain_loop": plain_loop_bench("mnist", mnist, args.samples, device),
        "mnist_mlp_pil_dataloader": pil_dataloader_bench(mnist, args.samples, device, args.workers),
        "cifar10_cnn_trainingrun": training_run_bench("cifar10", cifar, args.cifar_samples, device),
        "cifar10_cnn_plain_loop": plain_loop_bench("cifar10", cifar, args.cifar_samples, device),
    }
    for name, rates in measure(benches, args.repeats, device).items():
        stats = summary(rates)
        results[name] = {**stats, "all": rates}
        spread = f"[{stats['min']:.0f}, {stats['max']:.0f}]"
        print(f"{name:28s} {stats['median']:10.0f} samples/s  {spread}")

    def ratio(a: str, b: str) -> float:
        """Median of per-repeat ratios: repeats are interleaved, so pairs ran side by side."""
        pairs = [x / y for x, y in zip(results[a]["all"], results[b]["all"], strict=True)]
        results[f"{a}/{b}"] = summary(pairs)
        return statistics.median(pairs)

    results["ratio_vs_plain_loop_mnist"] = ratio("mnist_mlp_trainingrun", "mnist_mlp_plain_loop")
    results["ratio_vs_plain_loop_cifar10"] = ratio(
        "cifar10_cnn_trainingrun", "cifar10_cnn_plain_loop"
    )
    results["speedup_vs_pil_dataloader_mnist"] = ratio(
        "mnist_mlp_trainingrun", "mnist_mlp_pil_dataloader"
    )
    mnist_ratio = results["ratio_vs_plain_loop_mnist"]
    cifar_ratio = results["ratio_vs_plain_loop_cifar10"]
    speedup = results["speedup_vs_pil_dataloader_mnist"]
    print(f"TrainingRun / plain loop, MNIST MLP:   {mnist_ratio:.3f} (aim >= 0.95)")
    print(f"TrainingRun / plain loop, CIFAR CNN:   {cifar_ratio:.3f}")
    print(f"TrainingRun / PIL+DataLoader, MNIST:   {speedup:.2f}x (aim >= 3.5x)")


def env_section(
    results: dict[str, Any], mnist: TaskData, device: torch.device, repeats: int
) -> None:
    """HPTuneEnv's cost over TrainingRun at the default decision interval (MNIST MLP)."""
    shares: dict[str, list[float]] = {"eval": [], "overhead": []}
    benches = {
        "mnist_episode_env": env_episode_bench("mnist", mnist, device, shares),
        "mnist_episode_trainingrun": bare_episode_bench("mnist", mnist, device),
    }
    for bench in benches.values():
        bench()  # warm-up
    shares["eval"].clear()
    shares["overhead"].clear()
    for name, rates in measure(benches, repeats, device).items():
        results[name] = {**summary(rates), "all": rates}
        print(f"{name:28s} {statistics.median(rates):10.0f} samples/s")
    pairs = [
        bare / env
        for bare, env in zip(
            results["mnist_episode_trainingrun"]["all"],
            results["mnist_episode_env"]["all"],
            strict=True,
        )
    ]
    ab = statistics.median(pairs)
    results["env_overhead_ab_mnist"] = ab - 1
    results["env_overhead_inside_mnist"] = summary(shares["overhead"])
    results["env_eval_share_mnist"] = summary(shares["eval"])
    inside = 100 * statistics.median(shares["overhead"])
    print(f"HPTuneEnv vs TrainingRun wall time, paired A/B median: {100 * (ab - 1):+.2f}%")
    print(f"HPTuneEnv time outside train/evaluate: {inside:.3f}% (aim <= 3%)")
    print(
        f"evaluation / training time per interval: {100 * statistics.median(shares['eval']):.1f}%"
    )


@dataclass(frozen=True)
class BenchmarkConfig:
    """What to measure (every field is a flag)."""

    data_dir: str | None = option("directory with MNIST (default HPENV_DATA_DIR)", default=None)
    device: str = option("device: auto, cpu, cuda, ...", default="auto")
    repeats: int = option("timed repeats per measurement", default=5)
    samples: int = option("MNIST samples per repeat", default=20_000)
    cifar_samples: int = option("CIFAR samples per repeat", default=4_096)
    workers: int = option("DataLoader workers of the usual loop", default=2)
    threads: int | None = option("torch CPU threads (default: torch's)", default=None)
    out: str = option("JSON file of the results", default="logs/benchmarks/training.json")
    sections: tuple[str, ...] = option(
        "training (loops), env (HPTuneEnv overhead), episodes (cheap episodes)",
        default=("training", "env", "episodes"),
        choices=("training", "env", "episodes"),
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_config(BenchmarkConfig, __doc__, argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    mnist = get_task("mnist").load_data(data_dir=args.data_dir)
    results: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        },
        "mnist_source": mnist.source,
        "repeats": args.repeats,
    }
    print(f"device {device}, torch threads {torch.get_num_threads()}, data {mnist.source}")

    if "training" in args.sections:
        training_section(results, mnist, device, args)
    if "env" in args.sections:
        env_section(results, mnist, device, args.repeats)
    if "episodes" in args.sections:
        results["cheap_episodes"] = cheap_episode_times(device, args.data_dir)
    atomic_write_json(results, Path(args.out))
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
