"""Pieces the framework integrations share (torch only; no framework imports)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from agents.deploy.controller import HyperController, check_servable
from agents.policy.artifact import FrozenPolicy
from agents.policy.hub import load_pretrained
from agents.warn import warn

PolicyLike = FrozenPolicy | str | os.PathLike[str]
Evaluate = Callable[[], "tuple[float, float] | dict[str, float]"]


def resolve_policy(policy: PolicyLike, where: str) -> FrozenPolicy:
    """A loaded policy, or one by file, folder, shipped name or Hub repo (`agents.policy.hub`).

    A policy that tunes batch size or dropout is refused here, when the callback
    is built (`agents.deploy.controller.check_servable`): the framework owns the
    data loader and the model, so only the optimizer's values can change.

    Raises:
        IncompatiblePolicyError: The policy tunes what ``where`` cannot apply.
    """
    loaded = policy if isinstance(policy, FrozenPolicy) else load_pretrained(policy)
    check_servable(loaded, where)
    return loaded


def unwrap_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    """The torch optimizer inside wrappers such as accelerate's ``AcceleratedOptimizer``."""
    while isinstance(getattr(optimizer, "optimizer", None), torch.optim.Optimizer):
        optimizer = optimizer.optimizer
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"expected a torch optimizer, got {type(optimizer).__name__}")
    return optimizer


def unwrap_scheduler(scheduler: Any) -> Any:
    """The scheduler inside wrappers such as accelerate's ``AcceleratedScheduler``."""
    while getattr(scheduler, "scheduler", None) is not None:
        scheduler = scheduler.scheduler
    return scheduler


def model_dropout(model: nn.Module) -> float:
    """The model's largest dropout probability (0 without dropout layers)."""
    rates = [float(m.p) for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    return max(rates, default=0.0)


def move_to(data: Any, device: torch.device) -> Any:
    """``data`` (tensors in nested tuples, lists and dicts) on ``device``."""
    if isinstance(data, torch.Tensor):
        return data.to(device, non_blocking=True)
    if isinstance(data, Mapping):
        return {key: move_to(value, device) for key, value in data.items()}
    if isinstance(data, tuple | list):
        return type(data)(move_to(value, device) for value in data)
    return data


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode without gradients for the block; the model's mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


class ClassificationMeter:
    """Example-weighted mean loss and argmax accuracy, summed on the device (one sync)."""

    def __init__(self) -> None:
        self._sums: list[torch.Tensor] = []

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """``loss``: the batch's mean loss over its labelled items; ``-100`` labels are ignored."""
        if labels.shape != logits.shape[:-1]:
            labels = labels.reshape(logits.shape[:-1])
        mask = labels != -100
        count = mask.sum()
        correct = ((logits.argmax(-1) == labels) & mask).sum()
        loss_sum = loss.detach().float() * count
        self._sums.append(torch.stack([loss_sum, correct.float(), count.float()]))

    def result(self) -> tuple[float, float]:
        if not self._sums:
            raise RuntimeError("the validation data is empty")
        loss_sum, correct, count = torch.stack(self._sums).sum(0).tolist()
        if count == 0:
            raise RuntimeError("the validation data has no labelled items")
        return loss_sum / count, correct / count


def require_learning_rates(optimizer: torch.optim.Optimizer) -> None:
    """Refuse a learning rate of 0 at the start (a warm-up from 0).

    Raises:
        ValueError: The controller changes rates multiplicatively: 0 would stay 0.
    """
    if any(group["lr"] == 0 for group in optimizer.param_groups):
        raise ValueError(
            "the optimizer's learning rate is 0 when training starts (a warm-up schedule "
            "from 0?): the controller changes it multiplicatively, so it would stay 0; use "
            "a constant schedule (Hugging Face: lr_scheduler_type='constant', no warmup)"
        )


class SchedulerSync:
    """Keeps a framework's learning-rate scheduler from undoing the controller's decisions.

    A post-step hook registered after the controller's records the learning rates a
    decision wrote; `apply`, called once the framework has stepped its scheduler,
    writes them back and re-anchors the scheduler on them:

    - ``LambdaLR`` (every Hugging Face ``lr_scheduler_type`` except
      ``reduce_lr_on_plateau``): ``base_lrs`` become ``lr / lr_lambda(now)``, so the
      optimizer runs at the controller's rate right after each decision and the
      schedule's relative shape continues until the next one (with a constant
      schedule: exactly the controller's rate throughout);
    - ``ReduceLROnPlateau`` and multiplicative ("chainable") schedulers such as
      ``StepLR`` or ``ExponentialLR`` continue from the current rate by themselves;
    - other schedulers (``OneCycleLR``, ``CyclicLR``, ...) may overwrite the rate
      between decisions; a warning says so.
    """

    CHAINABLE = (
        "ReduceLROnPlateau",
        "MultiplicativeLR",
        "StepLR",
        "MultiStepLR",
        "ExponentialLR",
        "ConstantLR",
        "LinearLR",
        "PolynomialLR",
    )

    def __init__(self, controller: HyperController, schedulers: Sequence[Any] = ()) -> None:
        self.controller = controller
        self.schedulers = [unwrap_scheduler(s) for s in schedulers if s is not None]
        for scheduler in self.schedulers:
            name = type(scheduler).__name__
            if not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR) and (
                name not in self.CHAINABLE
            ):
                warn(
                    f"{name} is not re-anchored on the controller's decisions: it may "
                    "overwrite the learning rate between them (use a constant or LambdaLR "
                    "schedule)",
                )
        self._decisions = len(controller.history)
        self._targets: list[float] | None = None
        self._hook = controller.optimizer.register_step_post_hook(self._after_step)

    def _after_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if len(self.controller.history) != self._decisions:
            self._decisions = len(self.controller.history)
            self._targets = [group["lr"] for group in self.controller.optimizer.param_groups]

    def apply(self) -> None:
        """After the framework's scheduler step: restore and re-anchor a fresh decision's rates."""
        targets, self._targets = self._targets, None
        if targets is None:
            return
        groups = self.controller.optimizer.param_groups
        for group, lr in zip(groups, targets, strict=True):
            group["lr"] = lr
        for scheduler in self.schedulers:
            if isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
                lambdas = scheduler.lr_lambdas
                for i, (lr_lambda, lr) in enumerate(zip(lambdas, targets, strict=True)):
                    factor = lr_lambda(scheduler.last_epoch)
                    if factor > 0:
                        scheduler.base_lrs[i] = lr / factor
            if hasattr(scheduler, "_last_lr"):
                scheduler._last_lr = [group["lr"] for group in groups]

    def remove(self) -> None:
        self._hook.remove()


def first_loader(loaders: Any) -> Iterable[Any] | None:
    """The first of a framework's validation loaders (a loader, a list or a dict of them)."""
    if isinstance(loaders, Mapping):
        loaders = next(iter(loaders.values()), None)
    elif isinstance(loaders, list | tuple):
        loaders = loaders[0] if loaders else None
    return loaders
