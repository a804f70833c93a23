"""`DecisionLog`: one point per decision of a deployed policy, kept and sent to TensorBoard.

Both ways a frozen policy drives a job write through it, so their trajectories
and TensorBoard tags (``controller/...``, listed in ``docs/tensorboard.md``)
are the same: `agents.deploy.controller.HyperController` (any optimizer, steps
counted by its hooks) and `agents.deploy.run_driver.TrainingRunDriver` (a
`hpenv.training.TrainingRun`, whose batch size a policy may change).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from hpenv.hyperparams import HParams
from hpenv.observation import IntervalMetrics
from hpenv.probe import ProbeResult


class DecisionLog:
    """The trajectory of a driven job: ``history`` (plain dicts) and TensorBoard scalars.

    Args:
        log_dir: TensorBoard directory; None keeps the history only.
    """

    def __init__(self, log_dir: str | os.PathLike[str] | None = None) -> None:
        self.history: list[dict[str, Any]] = []
        #: The probe's curve (`hpenv.probe.ProbeResult.to_dict`), once there was one.
        self.probe_record: dict[str, Any] | None = None
        self._held: dict[str, Any] | None = None
        self._hold_next = False
        self._writer: Any = None
        if log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(log_dir))

    def record(
        self,
        step: int,
        hparams: HParams,
        metrics: IntervalMetrics | None = None,
        **extra: float,
    ) -> dict[str, Any]:
        """Append one point (the hyperparameters now in effect, the metrics behind them).

        Args:
            step: The job's optimizer step (TensorBoard's x-axis).
            hparams: The hyperparameters after the decision.
            metrics: The interval that led to the decision (None at the start).
            **extra: Further values, e.g. ``val_loss`` of the untrained model or ``samples``.

        Returns:
            The entry appended to `history`.
        """
        entry: dict[str, Any] = {"step": step, **hparams.to_dict(), **extra}
        if metrics is not None:
            entry.update(
                train_loss=metrics.train_loss,
                val_loss=metrics.val_loss,
                val_accuracy=metrics.val_accuracy,
                grad_norm=metrics.grad_norm,
                update_ratio=metrics.update_ratio,
            )
        self.history.append(entry)
        if self._hold_next:
            self._hold_next, self._held = False, entry
        elif self._writer is not None:
            self._write(entry, step)
        return entry

    def probe(self, result: ProbeResult) -> None:
        """Keep the probe's curve (`probe_record`) and write it to TensorBoard: the batch
        and smoothed losses at each probe step, and the rate of that step."""
        self.probe_record = result.to_dict()
        if self._writer is None:
            return
        for step, (lr, loss, smooth) in enumerate(
            zip(result.lrs, result.losses, result.smoothed, strict=True)
        ):
            self._writer.add_scalar("controller/probe/lr", lr, step)
            if np.isfinite(loss):
                self._writer.add_scalar("controller/probe/loss", loss, step)
            if np.isfinite(smooth):
                self._writer.add_scalar("controller/probe/smoothed_loss", smooth, step)

    def hold_next(self) -> None:
        """Keep the next point out of TensorBoard until `release` (a value is not known yet)."""
        self.release()
        self._hold_next = True

    def release(self, **updates: Any) -> None:
        """Write the point held back by `hold_next`, with ``updates`` applied first."""
        entry, self._held = self._held, None
        if entry is None:
            return
        entry.update(updates)
        if self._writer is not None:
            self._write(entry, entry["step"])

    def restore(self, history: list[dict[str, Any]]) -> None:
        """Replace the history with a saved one (its points are already in TensorBoard)."""
        self.history = [dict(entry) for entry in history]
        self._held, self._hold_next = None, False

    def _write(self, entry: dict[str, Any], step: int) -> None:
        for key, value in entry.items():
            if key in ("step", "optimizer", "samples") or value is None:
                continue
            if isinstance(value, int | float) and np.isfinite(value):
                group = "hparams" if key in HParams.__dataclass_fields__ else "metrics"
                self._writer.add_scalar(f"controller/{group}/{key}", value, step)
        start_lr = self.history[0]["lr"]
        if start_lr > 0:  # what the policy did to the run's rate, at a glance
            self._writer.add_scalar("controller/lr_vs_start", entry["lr"] / start_lr, step)

    def flush(self) -> None:
        """Write pending TensorBoard events (and a held point) to disk."""
        self.release()
        if self._writer is not None:
            self._writer.flush()
