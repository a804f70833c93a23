"""A learning-rate range test on any registered task: the suggested rate and the curve as a PNG.

The task's model trains one batch per rate while the rate grows exponentially
from --lr-min to --lr-max (hpenv.probe, the probe every hpenv run makes before
its first decision), until the smoothed loss diverges; the suggested rate is
the one of the lowest smoothed loss divided by 30 (hpenv.probe.DEFAULT_RULE,
min/30: measured the best simple reading of such a curve on the training-side
tasks; Lightning's steepest-slope rule is shown too). When
the curve says nothing useful (the loss never fell, or was lowest at the
bottom of the window) the script says so instead of suggesting a rate.

In your own loop (any model and optimizer), the same test is one call:

    from hpenv.probe import find_lr
    result = find_lr(model, optimizer, loss_fn, batches, steps=100)
    print(result.suggestion()); result.plot("lr_find.png")

Examples:
    python scripts/find_lr.py --task digits
    python scripts/find_lr.py --task mnist --model cnn --data-dir ~/data --optimizer sgd
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from agents.cli import check_threads, option, parse_config, run_job, threads_option, use_threads
from hpenv.hyperparams import OptimizerName, with_optimizer
from hpenv.probe import DEFAULT_RULE, ProbeConfig, ProbeResult, probe_run
from hpenv.tasks import get_task, list_tasks
from hpenv.training import TrainingRun


@dataclass(frozen=True)
class FindLrConfig:
    """One range test (every field is a flag)."""

    task: str = option("registered task", choices=list_tasks())
    model: str | None = option("model variant (default: the task's)", default=None)
    optimizer: OptimizerName | None = option(
        "optimizer (default: the task's); sgd uses momentum 0.9", default=None
    )
    lr_min: float = option("lowest rate of the sweep", default=1e-6)
    lr_max: float = option("highest rate of the sweep", default=1.0)
    steps: int = option("batches (one per rate)", default=100)
    subset: float | None = option("train on this fraction of the training split", default=None)
    seed: int = option("seed of the weights and the data order", default=0)
    device: str = option("training device: auto, cpu, cuda, ...", default="auto")
    data_dir: str | None = option("local data directory (default HPENV_DATA_DIR)", default=None)
    out: str | None = option("PNG of the curve (default logs/find_lr-<task>.png)", default=None)
    threads: int = threads_option()

    def __post_init__(self) -> None:
        check_threads(self.threads)
        ProbeConfig(lr_min=self.lr_min, lr_max=self.lr_max)  # checks the window
        if self.steps < 2:
            raise ValueError(f"steps must be >= 2, got {self.steps}")
        if self.subset is not None and not 0 < self.subset <= 1:
            raise ValueError(f"subset must be in (0, 1], got {self.subset}")
        if self.model is not None:
            get_task(self.task).with_model(self.model)


def find_lr(config: FindLrConfig) -> ProbeResult:
    """Run the range test of ``config``; print the suggestion and write the curve."""
    task = get_task(config.task)
    if config.model is not None:
        task = task.with_model(config.model)
    hparams = with_optimizer(task.defaults, config.optimizer)
    run = TrainingRun(
        task,
        hparams=hparams,
        seed=config.seed,
        device=config.device,
        data_dir=config.data_dir,
        subset=config.subset,
    )
    probe = ProbeConfig(
        lr_min=config.lr_min,
        lr_max=config.lr_max,
        min_steps=2,
        max_steps=config.steps,
        rollback="start",
    )
    begin = time.perf_counter()
    result = probe_run(run, probe, config.steps)
    seconds = time.perf_counter() - begin
    out = Path(config.out or f"logs/find_lr-{config.task}.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    doubt = result.doubt()
    result.plot(str(out), suggest=None if doubt else DEFAULT_RULE)
    print(f"{task.name}/{task.model}, {hparams.optimizer}, batch {hparams.batch_size}: "
          f"{len(result.lrs)} of {config.steps} steps in {seconds:.1f} s")  # fmt: skip
    if doubt:
        print(f"no suggestion: {doubt}")
    else:
        steepest = result.suggestion("steepest")
        print(f"suggested learning rate: {result.suggestion():.3g} (the lowest smoothed "
              f"loss was at {result.best_lr:.3g}; steepest descent at "
              f"{steepest:.3g})")  # fmt: skip
    if result.stopped is not None:
        print(f"the loss diverged at {result.divergence_lr:.3g}")
    elif math.isfinite(result.best_lr):
        print(f"the loss did not diverge up to {config.lr_max:g}")
    print(f"curve: {out}")
    return result


def main(argv: list[str] | None = None) -> int:
    config = parse_config(FindLrConfig, __doc__, argv)
    use_threads(config.threads)
    return run_job(lambda: find_lr(config))


if __name__ == "__main__":
    sys.exit(main())
