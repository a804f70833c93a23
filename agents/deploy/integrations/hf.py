"""`HyperControllerCallback` for the Hugging Face ``transformers.Trainer``.

Usage::

    from agents.deploy.integrations.hf import HyperControllerCallback

    args = TrainingArguments(..., lr_scheduler_type="constant")
    trainer = Trainer(model, args, train_dataset=train,
                      callbacks=[HyperControllerCallback("policy.pt", eval_dataset=val)])
    trainer.train()

How it plugs in (a callback never sees the ``Trainer`` itself):

- ``on_train_begin`` attaches a `agents.deploy.controller.HyperController` to the
  Trainer's optimizer (the torch optimizer inside accelerate's wrapper) with
  ``total_steps=state.max_steps``; the batch-size feature is the total batch
  (per device x gradient accumulation x processes), the dropout feature the
  model's largest dropout rate (both overridable).
- Training loss: a forward hook on the model collects ``outputs.loss`` of every
  training-mode forward (HF models return it when the batch has ``labels``), and
  a step pre-hook on the optimizer reports one value per optimizer step (before
  the step's decision), combined over gradient-accumulation micro-batches the
  way the Trainer combines its logged ``loss`` (mean, or sum when the model was
  given ``num_items_in_batch`` and so normalises over the whole accumulated
  batch). A model that returns no loss (a
  ``compute_loss_func`` or label smoothing pops the labels) is an error.
- Validation (before training and at every decision, inside the optimizer step):
  either ``evaluate=`` (any callable returning ``(val_loss, val_accuracy)``), or
  ``eval_dataset=``, evaluated by the callback in eval mode under ``no_grad``:
  the label-weighted mean of ``outputs.loss`` and the accuracy of
  ``outputs.logits.argmax(-1)`` against ``labels`` (``-100`` ignored). That fits
  classification heads (sequence and token classification); for a causal LM,
  regression or other metrics pass ``evaluate=``. Its batches come from
  ``collate_fn`` (default `transformers.default_data_collator`) at
  ``eval_batch_size`` (default ``per_device_eval_batch_size``); items must be
  model inputs plus ``labels``/``label`` (strings are dropped by the collator).
  The Trainer's own ``eval_strategy`` runs after the optimizer step, too late for
  a decision, so its metrics are not used.
- Learning-rate scheduler: the Trainer steps its scheduler right after every
  optimizer step, and a ``LambdaLR`` (every ``lr_scheduler_type`` but
  ``reduce_lr_on_plateau``) would reset the rate to ``base_lr x lambda(step)``,
  undoing a decision. After a decision step the callback writes the controller's
  rates back and re-anchors the scheduler (``base_lrs = lr / lambda(now)``).
  **Use ``lr_scheduler_type="constant"``**: the optimizer then runs exactly at
  the controller's rates. With a decaying schedule (``linear``, ``cosine``, ...)
  the rate right after each decision is the controller's and the schedule's
  relative decay applies until the next decision (a saw-tooth); a warm-up from 0
  is refused (the controller scales rates, 0 would stay 0).

What is and is not supported: the callback changes the learning rate, momentum
(Adam's beta1) and weight decay in the optimizer's parameter groups, nothing
else. **The batch size cannot be changed** here: the Trainer builds and owns the
data loader (``per_device_train_batch_size``), so a policy that tunes batch
size (meta-trained with ``--tuned lr,batch_size``) or dropout is refused when
the callback is built, with `agents.policy.IncompatiblePolicyError`. Use an
lr-only policy (``hpenv-lr-v2.1``, the default), or train with
`hpenv.training.TrainingRun` / ``scripts/run_policy.py``, which apply
batch-size decisions.

Gradient norms are read after the Trainer's clipping (``max_grad_norm``).
Resuming from a checkpoint starts a fresh controller. After training,
``callback.controller.history`` holds the decisions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from agents.deploy.controller import HyperController
from agents.deploy.integrations._common import (
    ClassificationMeter,
    Evaluate,
    PolicyLike,
    SchedulerSync,
    evaluating,
    model_dropout,
    move_to,
    require_learning_rates,
    resolve_policy,
    unwrap_optimizer,
)
from hpenv.probe import ProbeConfig

__all__ = ["HyperControllerCallback"]


class HyperControllerCallback(TrainerCallback):
    """Let a frozen policy drive a ``transformers.Trainer``'s hyperparameters.

    Args:
        policy: A `FrozenPolicy` or the path of a policy artifact.
        evaluate: Callable returning ``(val_loss, val_accuracy)`` (or a dict with
            those keys); exclusive with ``eval_dataset``.
        eval_dataset: Labelled data the callback evaluates itself (see the module doc).
        eval_batch_size: Batch size for ``eval_dataset`` (default: the Trainer's
            ``per_device_eval_batch_size``).
        collate_fn: Collator for ``eval_dataset`` (default ``default_data_collator``).
        decisions: Decisions over the run (default: the policy's training setting).
        log_dir: TensorBoard directory for the controller's trajectory.
        batch_size: The batch-size feature (default: the Trainer's total batch).
        dropout: The dropout feature (default: the model's largest dropout rate).
        stats_every: Gradient-norm sampling period (see `HyperController`).
        probe: The probe before the first decision (see `HyperController`; default:
            a layout-2 policy probes, and a layout-1 policy with a probe start). Its
            steps are the first of the training; the framework's scheduler is held at
            the probe's rates meanwhile and re-anchored after it on the rate the run
            starts at (the base schedule's, or the probe start's).

    Raises:
        ValueError: Neither or both of ``evaluate`` and ``eval_dataset``.
        IncompatiblePolicyError: The policy tunes batch size or dropout (the
            Trainer owns the data loader and the model; see the module doc).
    """

    def __init__(
        self,
        policy: PolicyLike,
        *,
        evaluate: Evaluate | None = None,
        eval_dataset: Iterable[Any] | None = None,
        eval_batch_size: int | None = None,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        decisions: int | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        batch_size: int | None = None,
        dropout: float | None = None,
        stats_every: int = 4,
        probe: ProbeConfig | bool | None = None,
    ) -> None:
        if (evaluate is None) == (eval_dataset is None):
            raise ValueError("pass exactly one of evaluate= or eval_dataset=")
        self.policy = resolve_policy(policy, "the HF Trainer callback")
        self.evaluate = evaluate
        self.eval_dataset = eval_dataset
        self.eval_batch_size = eval_batch_size
        self.collate_fn = collate_fn
        self.decisions = decisions
        self.log_dir = log_dir
        self.batch_size = batch_size
        self.dropout = dropout
        self.stats_every = stats_every
        self.probe = probe
        self.controller: HyperController | None = None
        self._model: nn.Module | None = None
        self._eval_loader: Iterable[Any] | None = None
        self._sync: SchedulerSync | None = None
        self._hooks: list[Any] = []
        self._losses: list[torch.Tensor] = []
        self._normalised = False

    # ----------------------------------------------------------------- Trainer events

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: nn.Module | None = None,
        optimizer: Any = None,
        lr_scheduler: Any = None,
        **kwargs: Any,
    ) -> None:
        if model is None or optimizer is None:
            raise RuntimeError("HyperControllerCallback needs the Trainer's model and optimizer")
        self._release()
        self._model = model
        if self.eval_dataset is not None:
            from transformers import default_data_collator

            self._eval_loader = torch.utils.data.DataLoader(
                self.eval_dataset,  # type: ignore[arg-type]
                batch_size=self.eval_batch_size or args.per_device_eval_batch_size,
                collate_fn=self.collate_fn or default_data_collator,
            )
        torch_optimizer = unwrap_optimizer(optimizer)
        require_learning_rates(torch_optimizer)
        total_batch = args.per_device_train_batch_size * args.gradient_accumulation_steps
        self.controller = HyperController(
            self.policy,
            torch_optimizer,
            total_steps=state.max_steps,
            decisions=self.decisions,
            evaluate=self.evaluate or self._evaluate_dataset,
            batch_size=self.batch_size or total_batch * max(1, args.world_size),
            dropout=model_dropout(model) if self.dropout is None else self.dropout,
            log_dir=self.log_dir,
            stats_every=self.stats_every,
            probe=self.probe,
            model=model,
        )
        self._sync = SchedulerSync(self.controller, [lr_scheduler])
        self._hooks = [
            model.register_forward_hook(self._capture_loss, with_kwargs=True),
            torch_optimizer.register_step_pre_hook(self._report_loss),
        ]

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self._sync is not None:
            self._sync.apply()  # after the Trainer's lr_scheduler.step()

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._release()

    # ---------------------------------------------------------------------- helpers

    def _capture_loss(
        self, module: nn.Module, args: Any, kwargs: dict[str, Any], output: Any
    ) -> None:
        if not module.training:
            return
        loss = output.get("loss") if isinstance(output, Mapping) else getattr(output, "loss", None)
        if isinstance(loss, torch.Tensor):
            self._losses.append(loss.detach().float().reshape(()))
            self._normalised = kwargs.get("num_items_in_batch") is not None

    def _report_loss(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        assert self.controller is not None
        if not self._losses:
            raise RuntimeError(
                "the model returned no `loss` this step: HyperControllerCallback reads "
                "`outputs.loss`, which HF models return when the batch has `labels` (a "
                "compute_loss_func or label smoothing removes them)"
            )
        losses = torch.stack(self._losses)
        self._losses = []
        self.controller.report_loss(losses.sum() if self._normalised else losses.mean())

    def _evaluate_dataset(self) -> tuple[float, float]:
        model, loader = self._model, self._eval_loader
        assert model is not None
        assert loader is not None
        device = next(model.parameters()).device
        meter = ClassificationMeter()
        with evaluating(model):
            for batch in loader:
                inputs = move_to(dict(batch), device)
                if "labels" not in inputs:
                    raise ValueError("eval_dataset items need `labels` (or `label`)")
                outputs = model(**inputs)
                meter.add(outputs.loss, outputs.logits, inputs["labels"])
        return meter.result()

    def _release(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        if self._sync is not None:
            self._sync.remove()
            self._sync = None
        if self.controller is not None:
            self.controller.detach()
        self._losses = []
