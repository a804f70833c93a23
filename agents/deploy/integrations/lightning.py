"""`HyperControllerCallback` for PyTorch Lightning (``lightning.pytorch``, or the
older ``pytorch_lightning`` package when only that is installed).

Usage::

    from agents.deploy.integrations.lightning import HyperControllerCallback

    trainer = Trainer(max_steps=10_000, callbacks=[HyperControllerCallback("policy.pt")])
    trainer.fit(module, train_loader, val_loader)

How it plugs in:

- ``on_train_start`` attaches a `agents.deploy.controller.HyperController` to
  ``trainer.optimizers[0]`` with ``total_steps=trainer.estimated_stepping_batches``
  (so ``max_steps`` or ``max_epochs`` must bound the run); the batch-size feature
  is the train loader's batch size x ``accumulate_grad_batches`` x processes, the
  dropout feature the module's largest dropout rate (both overridable).
- Training loss: ``on_before_backward`` receives the loss about to be
  back-propagated (in automatic optimisation already divided by
  ``accumulate_grad_batches``); the losses since the last optimizer step are
  summed, i.e. the mean over the accumulated micro-batches, and reported in
  ``on_before_optimizer_step``, which Lightning calls after the backward pass and
  before the parameters change, so every step's loss is in before the
  controller's post-step hook decides.
- Validation (before training and at every decision, inside the optimizer step):
  either ``evaluate=`` (any callable returning ``(val_loss, val_accuracy)``), or,
  by default, the callback evaluates the module itself in eval mode under
  ``no_grad`` on ``val_dataloader=`` or else the trainer's first validation
  loader: batches must be ``(inputs, targets, ...)``, ``module(inputs)`` must
  return class logits, the loss is ``loss_fn(logits, targets)`` (default
  cross-entropy, a batch mean) and the accuracy that of ``logits.argmax(-1)``.
  Metrics logged with ``self.log`` (``trainer.callback_metrics``) are not used:
  Lightning validates after the optimizer step, so they would always reach a
  decision one interval late.
- Learning-rate schedulers from ``configure_optimizers`` are re-anchored after
  each decision (see `agents.deploy.integrations._common.SchedulerSync`): with a
  constant schedule, or none, the optimizer runs exactly at the controller's
  rates; a ``LambdaLR`` keeps its relative shape between decisions; a warm-up
  from 0 is refused.

What is and is not supported: the callback changes the learning rate, momentum
(or beta1) and weight decay in the optimizer's parameter groups, nothing else.
**The batch size cannot be changed** here: your ``DataLoader`` (and Lightning's
loop over it) fixes it, so a policy that tunes batch size (meta-trained with
``--tuned lr,batch_size``) or dropout is refused when the callback is built, with
`agents.policy.IncompatiblePolicyError`. Use an lr-only policy (``hpenv-lr-v2.1``,
the default), or train with `hpenv.training.TrainingRun` /
``scripts/run_policy.py``, which apply batch-size decisions.

Lightning 2.x on torch 2.10 or later calls a pytree API that torch deprecates
(a ``FutureWarning`` about ``LeafSpec``, from Lightning's own file): the callback
filters exactly that warning when the trainer sets up, since only Lightning can act
on it. Its own warnings name the line of your code that called ``trainer.fit``.

Only automatic optimisation with one optimizer is supported (manual
optimisation works when ``manual_backward`` is called once per step). Gradient
norms are read after Lightning's ``gradient_clip_val`` clipping. Resuming from a
checkpoint starts a fresh controller. After training,
``callback.controller.history`` holds the decisions.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch

try:
    import lightning.pytorch as pl
except ImportError:  # only the older package name is installed
    import pytorch_lightning as pl  # type: ignore[no-redef]

from agents.deploy.controller import HyperController
from agents.deploy.integrations._common import (
    ClassificationMeter,
    Evaluate,
    PolicyLike,
    SchedulerSync,
    evaluating,
    first_loader,
    model_dropout,
    move_to,
    require_learning_rates,
    resolve_policy,
)
from hpenv.probe import ProbeConfig

__all__ = ["HyperControllerCallback"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def quiet_lightning_internals() -> None:
    """Filter Lightning's use of torch's deprecated ``LeafSpec`` (not the user's business)."""
    warnings.filterwarnings(
        "ignore",
        message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning,
        module=r"(lightning\.pytorch|pytorch_lightning)\.utilities\._pytree",
    )


class HyperControllerCallback(pl.Callback):
    """Let a frozen policy drive a LightningModule's optimizer.

    Args:
        policy: A `FrozenPolicy` or the path of a policy artifact.
        evaluate: Callable returning ``(val_loss, val_accuracy)`` (or a dict with
            those keys); default: the callback's own evaluation (module doc).
        val_dataloader: Batches for the default evaluation (default: the
            trainer's first validation loader).
        loss_fn: Validation loss of ``(logits, targets)`` for the default
            evaluation (default ``torch.nn.functional.cross_entropy``).
        decisions: Decisions over the run (default: the policy's training setting).
        log_dir: TensorBoard directory for the controller's trajectory.
        batch_size: The batch-size feature (default: from the train loader).
        dropout: The dropout feature (default: the module's largest dropout rate).
        stats_every: Gradient-norm sampling period (see `HyperController`).
        probe: The probe before the first decision (see `HyperController`; default:
            a layout-2 policy probes, and a layout-1 policy with a probe start). Its
            steps are the first of the training; the framework's scheduler is held at
            the probe's rates meanwhile and re-anchored after it on the rate the run
            starts at (the base schedule's, or the probe start's).

    Raises:
        IncompatiblePolicyError: The policy tunes batch size or dropout (the
            trainer owns the data loader and the module; see the module doc).
    """

    def __init__(
        self,
        policy: PolicyLike,
        *,
        evaluate: Evaluate | None = None,
        val_dataloader: Iterable[Any] | None = None,
        loss_fn: LossFn | None = None,
        decisions: int | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        batch_size: int | None = None,
        dropout: float | None = None,
        stats_every: int = 4,
        probe: ProbeConfig | bool | None = None,
    ) -> None:
        self.policy = resolve_policy(policy, "the Lightning callback")
        self.evaluate = evaluate
        self.val_dataloader = val_dataloader
        self.loss_fn: LossFn = loss_fn or torch.nn.functional.cross_entropy
        self.decisions = decisions
        self.log_dir = log_dir
        self.batch_size = batch_size
        self.dropout = dropout
        self.stats_every = stats_every
        self.probe = probe
        self.controller: HyperController | None = None
        self._module: pl.LightningModule | None = None
        self._loader: Iterable[Any] | None = None
        self._sync: SchedulerSync | None = None
        self._losses: list[torch.Tensor] = []

    # --------------------------------------------------------------- Lightning hooks

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        quiet_lightning_internals()  # before Lightning sets up its data loaders

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._release()
        if len(trainer.optimizers) != 1:
            raise RuntimeError(
                f"HyperControllerCallback drives one optimizer; this module has "
                f"{len(trainer.optimizers)}"
            )
        optimizer = trainer.optimizers[0]
        total_steps = trainer.estimated_stepping_batches
        if not math.isfinite(total_steps):
            raise ValueError("the run has no step budget: set max_steps or max_epochs")
        self._module = pl_module
        if self.evaluate is None:
            self._loader = self.val_dataloader or first_loader(trainer.val_dataloaders)
            if self._loader is None:
                raise ValueError(
                    "no validation data: pass evaluate= or val_dataloader=, or give the "
                    "trainer a validation loader"
                )
        require_learning_rates(optimizer)
        self.controller = HyperController(
            self.policy,
            optimizer,
            total_steps=int(total_steps),
            decisions=self.decisions,
            evaluate=self.evaluate or self._evaluate_loader,
            batch_size=self.batch_size or self._total_batch(trainer),
            dropout=model_dropout(pl_module) if self.dropout is None else self.dropout,
            log_dir=self.log_dir,
            stats_every=self.stats_every,
            probe=self.probe,
            model=pl_module,
        )
        schedulers = [
            config.scheduler
            for config in trainer.lr_scheduler_configs
            if getattr(config.scheduler, "optimizer", optimizer) is optimizer
        ]
        self._sync = SchedulerSync(self.controller, schedulers)

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        if self.controller is not None:
            self._losses.append(loss.detach().float().reshape(()))

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        if self.controller is None:
            return
        if not self._losses:
            raise RuntimeError("no loss was back-propagated before this optimizer step")
        losses, self._losses = self._losses, []
        self.controller.report_loss(torch.stack(losses).sum())

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self._sync is not None:
            self._sync.apply()  # after Lightning's scheduler steps for this batch

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._release()

    # ---------------------------------------------------------------------- helpers

    def _total_batch(self, trainer: pl.Trainer) -> int:
        loader = trainer.train_dataloader
        size = getattr(first_loader(loader), "batch_size", None)
        if not isinstance(size, int):
            raise ValueError("cannot read the train loader's batch size: pass batch_size=")
        return size * trainer.accumulate_grad_batches * max(1, trainer.world_size)

    def _evaluate_loader(self) -> tuple[float, float]:
        module, loader = self._module, self._loader
        assert module is not None
        assert loader is not None
        meter = ClassificationMeter()
        with evaluating(module):
            for batch in loader:
                if not isinstance(batch, tuple | list) or len(batch) < 2:
                    raise TypeError(
                        "the default evaluation needs (inputs, targets) batches; "
                        f"got {type(batch).__name__}: pass evaluate="
                    )
                inputs, targets = move_to(tuple(batch[:2]), module.device)
                logits = module(inputs)
                meter.add(self.loss_fn(logits, targets), logits, targets)
        return meter.result()

    def _release(self) -> None:
        if self._sync is not None:
            self._sync.remove()
            self._sync = None
        if self.controller is not None:
            self.controller.detach()
        self._losses = []
