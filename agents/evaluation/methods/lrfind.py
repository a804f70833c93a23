"""An LR range test, then cosine: what a user of torch-lr-finder (or Lightning's ``lr_find``) runs.

`LRFindCosine` runs torch-lr-finder's range test on the cell's own `TrainingRun`
before the first interval (a `core.Prepare` step), takes the library's
suggestion and trains the rest of the budget with cosine annealing from it. The
range test trains on the run's own batches in its data order and its batches
count against the run's budget, as our probe's do (`hpenv.probe`), so the row's
compute is the budget (1x).

The package is optional (``pip install -e '.[baselines]'``) and imported only
when a run starts.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from agents.evaluation.methods.core import IntervalReport, MethodResult, RunSpec, run_intervals
from agents.evaluation.methods.schedules import cosine_factor
from hpenv.hyperparams import TUNABLES
from hpenv.probe import ProbeConfig
from hpenv.training import TrainingRun, task_loss


@dataclass
class RangeTest:
    """What one range test did and found.

    Attributes:
        steps: Batches reserved for it (all counted against the budget).
        samples: Samples reserved (``steps`` x the batch size).
        lrs / losses: torch-lr-finder's history: the rate of every step it trained
            and its (smoothed) loss; shorter than ``steps`` when it stopped at divergence.
        suggestion: The library's steepest-gradient rate (NaN: none).
        why: Why there is no suggestion (None when there is one).
    """

    steps: int
    samples: int
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    suggestion: float = math.nan
    why: str | None = None


def steepest_suggestion(
    lrs: Sequence[float], losses: Sequence[float], skip_start: int = 10, skip_end: int = 5
) -> tuple[float, str | None]:
    """torch-lr-finder's suggestion (``LRFinder.plot(suggest_lr=True)``) without plotting.

    The rate of the most negative ``np.gradient`` of the recorded losses, once the
    first ``skip_start`` and the last ``skip_end`` points are dropped; the library
    needs ``skip_start + skip_end + 2`` points. One difference: the curve is cut at
    its first non-finite loss (the library keeps going on a NaN loss, and NumPy's
    ``argmin`` would pick the NaN).

    Returns:
        ``(rate, None)``, or ``(NaN, why)`` when the curve is too short.
    """
    finite = next((k for k, v in enumerate(losses) if not math.isfinite(v)), len(losses))
    need = skip_start + skip_end + 2
    if finite < need:
        cut = " before its first non-finite loss" if finite < len(losses) else ""
        return math.nan, (
            f"the range test recorded {finite} points{cut}; its suggestion needs {need} "
            f"(skip_start={skip_start}, skip_end={skip_end})"
        )
    end = finite - skip_end if skip_end else finite
    curve = np.asarray(losses[skip_start:end], dtype=float)
    return float(lrs[skip_start + int(np.gradient(curve).argmin())]), None


@dataclass
class LRFindCosine:
    """torch-lr-finder's range test and its steepest-gradient suggestion, then cosine from it.

    Before the first interval, on the run's model and optimizer (the cell's
    optimizer kind and hyperparameters):
    ``LRFinder(model, optimizer, criterion).range_test(batches, start_lr=1e-6,
    end_lr=1, num_iter=n, step_mode="exp")`` with the library's smoothing
    (``smooth_f=0.05``) and stop (``diverge_th=5``). The window is hpenv's tunable
    learning-rate range (`hpenv.hyperparams.TUNABLES`, also our probe's); the
    criterion is the task's loss; ``batches`` are the run's next batches at its
    batch size (`TrainingRun.next_batch`: its data order, augmentation and
    normalisation). ``n`` is what our probe reserves,
    `hpenv.probe.ProbeConfig.steps_for` the run's optimizer steps (budget / batch
    size), so both cost the same; a run too short for a probe tests
    ``short_run_steps`` steps, at most a quarter of the run (none below 2).
    ``lr_finder.reset()`` puts the model and optimizer back as they were, and the
    ``n`` reserved batches are spent (`TrainingRun.spend`), whether the test used
    them all or stopped at divergence: the intervals train the rest of the budget.
    On CUDA the test runs under the run's bfloat16 autocast (the library's ``torch``
    AMP backend, with a disabled gradient scaler).

    The suggestion is the library's (`steepest_suggestion`). The rest of the run
    anneals from it, ``lr = suggestion * cosine_factor((progress - p0) / (1 - p0))``
    at each interval start (``p0``: the test's share of the budget), which is
    `schedules.Cosine` over the training after the test. When the test suggests
    nothing (a curve too short or not finite, a run too short for a test), the
    cosine starts from the cell's default rate and ``extra["fallback"]`` says why.

    Ignores ``spec.start_lr_factor``: the range test replaces the starting rate
    (as the grid and Prodigy do), so its rows are the same for every starting
    factor of a cell.

    ``extra``: ``suggested_lr`` (NaN: none), ``lr`` (the cosine's start),
    ``range_test_steps`` (reserved), ``range_test_trained`` (steps it ran),
    ``range_test_samples`` (reserved samples), ``range_test_lrs`` and
    ``range_test_losses`` (its curve, 4 significant digits), ``fallback`` (None,
    or why the default rate was used) and ``config``.
    """

    name: str = "lrfind_cosine"
    start_lr: float = TUNABLES["lr"].low
    end_lr: float = TUNABLES["lr"].high
    short_run_steps: int = 20
    skip_start: int = 10
    skip_end: int = 5

    def __post_init__(self) -> None:
        low, high = TUNABLES["lr"].low, TUNABLES["lr"].high
        if not low <= self.start_lr < self.end_lr <= high:
            raise ValueError(
                f"the range test's window must lie in the tunable range [{low}, {high}], "
                f"got start_lr={self.start_lr}, end_lr={self.end_lr}"
            )
        if self.short_run_steps < 2:
            raise ValueError(f"short_run_steps must be >= 2, got {self.short_run_steps}")

    def steps_for(self, budget_steps: int) -> int:
        """Range-test steps in a run of ``budget_steps`` optimizer steps (0: no test)."""
        steps = ProbeConfig().steps_for(budget_steps)
        if steps == 0:
            steps = min(self.short_run_steps, budget_steps // 4)
        return steps if steps >= 2 else 0

    def range_test(self, run: TrainingRun, steps: int) -> RangeTest:
        """Range-test ``run`` for ``steps`` steps, restore it, spend the steps' samples."""
        batch = min(run.hparams.batch_size, run.data.train_x.shape[0])
        test = RangeTest(steps, steps * batch)
        if steps < 2:
            test.why = "the run is too short for a range test (fewer than 8 optimizer steps)"
            return test
        from torch_lr_finder import LRFinder, TrainDataLoaderIter

        class RunBatches(TrainDataLoaderIter):
            """The run's next batches, as torch-lr-finder asks for them."""

            def __init__(self) -> None:
                super().__init__(data_loader=(), auto_reset=False)

            def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
                return run.next_batch(batch)

        def criterion(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return task_loss(run.task.loss, outputs, targets)

        amp: dict[str, Any] = {}
        if run.amp:  # the run's own autocast; bfloat16 needs no loss scaling
            amp = {
                "amp_backend": "torch",
                "amp_config": {"device_type": run.device.type, "dtype": torch.bfloat16},
                "grad_scaler": torch.amp.GradScaler(run.device.type, enabled=False),
            }
        finder = LRFinder(run.model, run.optimizer, criterion, device=run.device, **amp)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            finder.range_test(
                RunBatches(),
                start_lr=self.start_lr,
                end_lr=self.end_lr,
                num_iter=steps,
                step_mode="exp",
            )
        finder.reset()
        run.optimizer.zero_grad(set_to_none=True)  # the test leaves its last step's gradients
        run.apply_hparams(run.hparams)  # the restored groups carry the run's values again
        run.spend(test.samples)
        test.lrs = [float(v) for v in finder.history["lr"]]
        test.losses = [float(v) for v in finder.history["loss"]]
        test.suggestion, test.why = steepest_suggestion(
            test.lrs, test.losses, self.skip_start, self.skip_end
        )
        if not math.isfinite(test.suggestion):
            test.suggestion = math.nan
            test.why = test.why or "the range test suggested no finite rate"
        return test

    def run(self, spec: RunSpec) -> MethodResult:
        import torch_lr_finder  # noqa: F401  (fail before training when it is missing)

        defaults = spec.defaults()
        found: dict[str, Any] = {}

        def prepare(run: TrainingRun) -> dict[str, Any]:
            batch = min(run.hparams.batch_size, run.data.train_x.shape[0])
            budget = spec.budget(run.data)
            test = self.range_test(run, self.steps_for(-(-budget // batch)))
            lr = test.suggestion if math.isfinite(test.suggestion) else defaults.lr
            found.update(test=test, lr=lr, start=run.samples_done / budget)
            return {"lr": lr}

        def adjust(report: IntervalReport) -> dict[str, Any]:
            start = found["start"]
            return {"lr": found["lr"] * cosine_factor((report.progress - start) / (1 - start))}

        result = run_intervals(spec, adjust, hparams=defaults, method=self.name, prepare=prepare)
        test: RangeTest = found["test"]
        result.extra.update(
            {
                "suggested_lr": test.suggestion,
                "lr": found["lr"],
                "range_test_steps": test.steps,
                "range_test_trained": len(test.lrs),
                "range_test_samples": test.samples,
                "range_test_lrs": _short(test.lrs),
                "range_test_losses": _short(test.losses),
                "fallback": test.why,
                "config": {k: v for k, v in asdict(self).items() if k != "name"},
            }
        )
        return result


def _short(values: Sequence[float]) -> list[float]:
    """``values`` at 4 significant digits (a row's ``extra`` stays small)."""
    return [float(f"{v:.4g}") for v in values]
