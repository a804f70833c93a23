"""`TrainingRun`: one model of one task, trained in intervals, hyperparameters settable between.

The hot path follows the design contracts: the data sits on the training
device as tensors (uint8 images), a batch is a slice of a seeded permutation,
augmentation is batched tensor code, and interval statistics are accumulated
on the device and read back with one host sync per `TrainingRun.train` call.

Example:
    >>> import torch
    >>> torch.set_num_threads(1)
    >>> run = TrainingRun("synthetic", seed=0, device="cpu")
    >>> stats = run.train(512)
    >>> stats.samples, stats.diverged
    (512, False)
    >>> run.set_hparams(lr=3e-4, batch_size=32)
    >>> run.train(512).steps
    16
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hpenv.errors import InputError
from hpenv.hyperparams import HParams
from hpenv.tasks import Task, TaskData, get_task
from hpenv.tasks.augment import crop_flip
from hpenv.tasks.models import Dropout, init_parameters

STATE_VERSION = 1
#: Seed of the fixed validation subset scored by `TrainingRun.evaluate`.
VAL_SUBSET_SEED = 1_234


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; anything else is passed to torch.

    Raises:
        InputError: ``device`` is not a device name, or names CUDA on a machine without it.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"device {device!r} is not a device: {exc}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available; use 'cpu'")
    return resolved


@dataclass(frozen=True)
class IntervalStats:
    """What one `TrainingRun.train` call measured.

    Attributes:
        loss_mean: Mean training loss over the interval's batches.
        loss_std: Standard deviation of the batch losses.
        grad_norm: Mean global gradient norm (before clipping) over the steps it
            was measured on (every step when clipping, else every
            ``stats_every``-th step and the last).
        update_ratio: ||w_after - w_before|| / ||w_before|| of the interval's last step.
        samples: Training samples consumed by this interval.
        steps: Optimizer steps taken by this interval.
        wall_time: Seconds spent in the call.
        diverged: The loss or the weights became non-finite, or the mean loss
            exceeded ``max_loss`` (now or earlier).
        samples_done: Samples consumed since the run started.
        steps_done: Optimizer steps since the run started.
        oom: The device ran out of memory during the interval and the batch
            size was reverted (see `TrainingRun.train`).
    """

    loss_mean: float
    loss_std: float
    grad_norm: float
    update_ratio: float
    samples: int
    steps: int
    wall_time: float
    diverged: bool
    samples_done: int
    steps_done: int
    oom: bool = False


@dataclass
class _IntervalSums:
    """What one interval's steps have measured so far (on the device)."""

    grad_sum: torch.Tensor
    grad_count: int = 0
    steps: int = 0
    buffers: list[torch.Tensor] = field(default_factory=list)  # batch losses, per batch size
    counts: list[int] = field(default_factory=list)  # steps filled in each buffer
    before: list[torch.Tensor] = field(default_factory=list)


@dataclass(frozen=True)
class EvalStats:
    """Loss and accuracy on a (fixed) evaluation set."""

    loss: float
    accuracy: float
    samples: int
    wall_time: float


class TrainingRun:
    """Train one model of one task, in intervals, with live hyperparameter changes.

    Args:
        task: A `Task` or a registered task name.
        hparams: Starting hyperparameters; the task's defaults if None.
        seed: Seeds weights, data order, augmentation and dropout (through one
            ``torch.Generator`` per run; no global RNG is touched).
        device: ``"auto"`` (CUDA if present), ``"cpu"``, ``"cuda"``, ...
        data: Pre-loaded data (CPU or device tensors); loaded from the task if None.
        data_dir: Local data directory for loading (default ``HPENV_DATA_DIR``).
        subset: Train on this seeded fraction of the training split.
        subset_seed: Seed of the subset draw.
        val_size: Validation samples scored by `evaluate` (a fixed subset); the
            task's default if None, the whole split if 0.
        amp: bfloat16 autocast; default on for CUDA, off on CPU.
        channels_last: Channels-last memory format for convolutional models;
            default on for CUDA.
        stats_every: Measure the gradient norm every this many steps when not
            clipping (clipping measures it every step anyway).
        max_loss: An interval whose mean training loss exceeds this counts as
            diverged, like a non-finite loss or weights (Adam at an absurd
            learning rate explodes without overflowing). Default: 100 times the
            loss of a uniform guess (``ln(classes)``, ``ln 2`` for binary tasks).
        eval_batch_size: Batch size of `evaluate`.
        optimizer_factory: Builds the optimizer from the parameters and the
            starting hyperparameters instead of ``hparams.optimizer`` (for
            optimizers such as Prodigy or Schedule-Free AdamW). Its parameter
            groups must carry ``lr``, ``weight_decay`` and ``betas`` or
            ``momentum``. An optimizer with ``train()`` / ``eval()`` methods
            (Schedule-Free) is switched to the matching mode around training and
            evaluation.
        lr_scale: The optimizer trains at this multiple of ``hparams.lr`` (the rate the
            run reports and its hyperparameters say): a hidden change of the task's
            rate scale, as if the model were reparameterised, that meta-training draws
            per episode (`hpenv.episode_config.EpisodeConfig.lr_scale`) so that the
            absolute rate stops telling a policy where a task's best rate lies.

    Raises:
        ValueError: For invalid arguments (unknown device, bad subset, ...).
        hpenv.tasks.DataNotFoundError: The task's data cannot be found.
    """

    def __init__(
        self,
        task: Task | str,
        *,
        hparams: HParams | None = None,
        seed: int = 0,
        device: str | torch.device = "auto",
        data: TaskData | None = None,
        data_dir: str | None = None,
        subset: float | None = None,
        subset_seed: int = 0,
        val_size: int | None = None,
        amp: bool | None = None,
        channels_last: bool | None = None,
        stats_every: int = 4,
        max_loss: float | None = None,
        eval_batch_size: int = 1024,
        optimizer_factory: Callable[[list[nn.Parameter], HParams], torch.optim.Optimizer]
        | None = None,
        lr_scale: float = 1.0,
    ) -> None:
        if not (math.isfinite(lr_scale) and lr_scale > 0):
            raise ValueError(f"lr_scale must be a finite number > 0, got {lr_scale}")
        #: The optimizer's rate over ``hparams.lr`` (1: none; see the class's Arguments).
        self.lr_scale = float(lr_scale)
        self.task = get_task(task) if isinstance(task, str) else task
        self.device = resolve_device(device)
        self.hparams = hparams if hparams is not None else self.task.defaults
        if stats_every < 1 or eval_batch_size < 1:
            raise ValueError("stats_every and eval_batch_size must be >= 1")
        self.stats_every = stats_every
        self.eval_batch_size = eval_batch_size
        if data is None:
            data = self.task.load_data(data_dir=data_dir, subset=subset, subset_seed=subset_seed)
        elif subset is not None:
            data = data.subset(subset, subset_seed)
        if data.train_x.shape[0] == 0:
            raise ValueError(f"task {self.task.name!r} has an empty training split")
        self.max_loss = default_max_loss(self.task, data) if max_loss is None else max_loss
        model = build_model(self.task, data, self.hparams.dropout)
        init_parameters(model, torch.Generator().manual_seed(seed))
        self.data = data.to(self.device)
        is_cuda = self.device.type == "cuda"
        self.amp = is_cuda if amp is None else amp
        has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
        self.channels_last = (is_cuda and has_conv) if channels_last is None else channels_last
        self.model = model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self._dropouts = [m for m in self.model.modules() if isinstance(m, Dropout)]
        for module in self._dropouts:
            module.generator = self.generator
        self._params = [p for p in self.model.parameters() if p.requires_grad]
        factory = optimizer_factory or _make_optimizer
        self.optimizer = factory(self._params, self.hparams)
        self._scale, self._shift = image_normalisation(self.data, self.device)
        val_index = fixed_val_subset(
            self.data.val_x.shape[0], self.task.val_size if val_size is None else val_size
        )
        self._val_index = None if val_index is None else val_index.to(self.device)
        self._order = self._new_order()
        self._cursor = 0
        self.epochs_started = 1
        self.samples_done = 0
        self.steps_done = 0
        self.diverged = False
        self._fitting_batch_size: int | None = None  # last batch size an interval completed at
        #: Called with each step's (detached) loss before the optimizer step.
        self.loss_hooks: list[Callable[[torch.Tensor], None]] = []
        self.apply_hparams(self.hparams)

    # ------------------------------------------------------------ hyperparameters

    def set_hparams(self, **changes: Any) -> None:
        """Change hyperparameters for the next interval (optimizer state is kept).

        Accepts any `HParams` field but ``optimizer`` (a run's optimizer kind is fixed).
        """
        self.apply_hparams(self.hparams.replace(**changes))

    def apply_hparams(self, hparams: HParams) -> None:
        """Make ``hparams`` the run's hyperparameters."""
        if hparams.optimizer != self.hparams.optimizer:
            raise ValueError(
                f"a run's optimizer is fixed ({self.hparams.optimizer}); "
                f"start a new TrainingRun for {hparams.optimizer}"
            )
        for group in self.optimizer.param_groups:
            group["lr"] = hparams.lr * self.lr_scale
            group["weight_decay"] = hparams.weight_decay
            if hparams.optimizer == "sgd":
                group["momentum"] = hparams.momentum
            else:
                group["betas"] = (hparams.momentum, group["betas"][1])
        for module in self._dropouts:
            module.p = hparams.dropout
        self.hparams = hparams

    # ------------------------------------------------------------------ training

    def train(self, num_samples: int) -> IntervalStats:
        """Train on ``num_samples`` samples with the current hyperparameters.

        Batches have ``batch_size`` samples, except a last one that completes
        ``num_samples`` exactly. Non-finite loss or weights, or a mean loss over
        ``max_loss``, mark the run as diverged; nothing is raised, and later
        calls train no further.

        Out of device memory (a batch size too large for the device): the
        failed step is dropped, the allocator's cache freed, the batch size
        reverted to the last one that fitted (halved if none did yet), and the
        interval finishes at that size; the stats report ``oom=True`` and
        ``hparams.batch_size`` holds the reverted value. Only an out-of-memory
        error at batch size 1 is raised.
        """
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        start = time.perf_counter()
        if self.diverged:
            return self._stats([math.nan] * 6, 0, 0, start)
        self.model.train()
        if hasattr(self.optimizer, "train"):  # Schedule-Free: back to the training weights
            self.optimizer.train()
        acc = _IntervalSums(torch.zeros((), device=self.device))
        remaining, oom = num_samples, False
        while remaining > 0:
            try:
                remaining = self._train_steps(remaining, acc)
            except torch.OutOfMemoryError:
                oom = True
                self._recover_from_oom()
        self._fitting_batch_size = self.hparams.batch_size
        delta = torch._foreach_sub([p.detach() for p in self._params], acc.before)
        losses = torch.cat([b[:n] for b, n in zip(acc.buffers, acc.counts, strict=True)])
        steps = acc.steps
        values = torch.stack(
            [
                losses.mean(),
                losses.std(correction=0) if steps > 1 else torch.zeros((), device=self.device),
                acc.grad_sum / max(acc.grad_count, 1),
                global_norm(delta),
                global_norm(acc.before),
                global_norm([p.detach() for p in self._params]),
            ]
        ).tolist()  # the interval's one host sync
        self.samples_done += num_samples
        self.steps_done += steps
        return self._stats(values, num_samples, steps, start, oom=oom)

    def _train_steps(self, remaining: int, acc: _IntervalSums) -> int:
        """Train at the current batch size until ``remaining`` samples are done (returns 0).

        Sums land in ``acc`` step by step, so an out-of-memory error part-way
        keeps what the finished steps measured (and the samples they used).
        """
        n_train = self.data.train_x.shape[0]
        batch_size = min(self.hparams.batch_size, n_train)
        # Batch losses land in a preallocated device buffer: one small op per step.
        losses = torch.empty(-(-remaining // batch_size), device=self.device)
        acc.buffers.append(losses)
        acc.counts.append(0)
        clip = self.hparams.grad_clip
        steps = 0
        while remaining > 0:
            size = min(batch_size, remaining)
            last = size == remaining
            inputs, targets = self.next_batch(size)
            with self._autocast():
                loss = self._loss(self.model(inputs), targets)
            loss.backward()
            if clip is not None:
                acc.grad_sum += nn.utils.clip_grad_norm_(self._params, clip, foreach=True)
                acc.grad_count += 1
            elif last or acc.steps % self.stats_every == 0:
                acc.grad_sum += global_norm([p.grad for p in self._params if p.grad is not None])
                acc.grad_count += 1
            if last:
                acc.before = [p.detach().clone() for p in self._params]
            for hook in self.loss_hooks:
                hook(loss.detach())
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            losses[steps] = loss.detach()
            remaining -= size
            steps += 1
            acc.steps += 1
            acc.counts[-1] = steps
        return remaining

    def next_batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The next ``size`` training samples of the run's data order and their targets,
        the inputs prepared as `train` prepares them (augmentation, normalisation, memory
        format): what a step outside `train` (an LR range test) trains on.

        The data order moves on (later batches are the ones after these), but nothing is
        counted: a caller that trains on the batch counts its samples with `spend`.
        """
        index = self._next_batch(size)
        return self._prepare(self.data.train_x[index], train=True), self.data.train_y[index]

    def _recover_from_oom(self) -> None:
        """Drop the failed step, free the cache, fall back to a batch size that fits."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        size = self.hparams.batch_size
        fallback = self._fitting_batch_size
        smaller = fallback if fallback is not None and fallback < size else size // 2
        if size <= 1 or smaller < 1:
            raise torch.OutOfMemoryError(
                f"out of memory on {self.device} even at batch size {size}: the model does "
                "not fit; use a smaller model, amp=True or another device"
            )
        self.hparams = self.hparams.replace(batch_size=smaller)

    def _stats(
        self, values: list[float], samples: int, steps: int, start: float, oom: bool = False
    ) -> IntervalStats:
        mean, spread, grad, delta, weight, weight_after = values
        if is_diverged(mean, weight_after, self.max_loss):
            self.diverged = True
        return IntervalStats(
            loss_mean=mean,
            loss_std=spread,
            grad_norm=grad,
            update_ratio=delta / weight if weight > 0 else math.nan,
            samples=samples,
            steps=steps,
            wall_time=time.perf_counter() - start,
            diverged=self.diverged,
            samples_done=self.samples_done,
            steps_done=self.steps_done,
            oom=oom,
        )

    @torch.inference_mode()
    def evaluate(self, split: str = "val") -> EvalStats:
        """Mean loss and accuracy on the fixed validation subset, or a whole other split.

        Out of device memory, the evaluation batch size is halved and the
        evaluation repeated (down to batch size 1).
        """
        start = time.perf_counter()
        xs, ys = self.data.split(split)
        if split == "val" and self._val_index is not None:
            xs, ys = xs[self._val_index], ys[self._val_index]
        self.model.eval()
        if hasattr(self.optimizer, "eval"):  # Schedule-Free: score the averaged weights
            self.optimizer.eval()
        while True:
            try:
                loss, hits = self._score(xs, ys)
                break
            except torch.OutOfMemoryError:
                if self.eval_batch_size <= 1:
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                self.eval_batch_size //= 2
        n = xs.shape[0]
        return EvalStats(loss / n, hits / n, n, time.perf_counter() - start)

    def _score(self, xs: torch.Tensor, ys: torch.Tensor) -> tuple[float, float]:
        """Summed loss and correct predictions over ``xs`` (one host sync)."""
        total_loss = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        for i in range(0, xs.shape[0], self.eval_batch_size):
            inputs = self._prepare(xs[i : i + self.eval_batch_size], train=False)
            targets = ys[i : i + self.eval_batch_size]
            with self._autocast():
                outputs = self.model(inputs)
            total_loss += self._loss(outputs, targets, reduction="sum")
            correct += (self._predict(outputs) == targets).sum()
        loss, hits = torch.stack([total_loss, correct]).tolist()
        return loss, hits

    # --------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to roll back or resume exactly (deep copies)."""
        return {
            "version": STATE_VERSION,
            "task": self.task.name,
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "hparams": self.hparams.to_dict(),
            "generator": self.generator.get_state(),
            "order": self._order.clone(),
            "cursor": self._cursor,
            "epochs_started": self.epochs_started,
            "samples_done": self.samples_done,
            "steps_done": self.steps_done,
            "diverged": self.diverged,
        }

    def weights_state(self) -> dict[str, Any]:
        """Copies of the weights (and buffers) and the optimizer state only: what a probe
        rolls back (`load_weights_state`); the data order and counters are not in it."""
        return {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }

    def load_weights_state(self, state: dict[str, Any]) -> None:
        """Put back a `weights_state`: the run is not diverged after it (its weights are the
        ones saved); hyperparameters, data order and counters stay as they are."""
        hparams = self.hparams
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        self.apply_hparams(hparams)  # the optimizer's groups carry the current values again
        self.diverged = False

    def spend(self, samples: int) -> None:
        """Count ``samples`` training samples against the budget without training on them
        (the part of a probe's reserved batches its sweep did not use)."""
        if samples < 0:
            raise ValueError(f"samples must be >= 0, got {samples}")
        self.samples_done += samples

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict` of a run of the same task and model."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"TrainingRun state version {state.get('version')} != {STATE_VERSION}")
        if state["task"] != self.task.name:
            raise ValueError(f"state is for task {state['task']!r}, not {self.task.name!r}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        self.apply_hparams(HParams(**state["hparams"]))
        self.generator.set_state(state["generator"])
        self._order = state["order"].to(self.device)
        self._cursor = state["cursor"]
        self.epochs_started = state["epochs_started"]
        self.samples_done = state["samples_done"]
        self.steps_done = state["steps_done"]
        self.diverged = state["diverged"]

    # ---------------------------------------------------------------- internals

    def _new_order(self) -> torch.Tensor:
        n = self.data.train_x.shape[0]
        return torch.randperm(n, generator=self.generator, device=self.device)

    def _next_batch(self, size: int) -> torch.Tensor:
        end = self._cursor + size
        if end <= self._order.shape[0]:
            index = self._order[self._cursor : end]
            self._cursor = end
            return index
        head = self._order[self._cursor :]
        self._order = self._new_order()
        self.epochs_started += 1
        self._cursor = size - head.shape[0]
        return torch.cat([head, self._order[: self._cursor]])

    def _prepare(self, inputs: torch.Tensor, train: bool) -> torch.Tensor:
        if self.data.kind != "image":
            return inputs
        if train and self.task.augment == "crop_flip":
            inputs = crop_flip(inputs, self.generator)
        assert self._scale is not None
        assert self._shift is not None
        inputs = torch.addcmul(self._shift, inputs.float(), self._scale)
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return inputs

    def _loss(
        self, outputs: torch.Tensor, targets: torch.Tensor, reduction: str = "mean"
    ) -> torch.Tensor:
        return task_loss(self.task.loss, outputs, targets, reduction)

    def _predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return task_predict(self.task.loss, outputs)

    def _autocast(self) -> AbstractContextManager[Any]:
        if not self.amp:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)


# ------------------------------------------- shared with hpenv.population (one copy)


def build_model(task: Task, data: TaskData, dropout: float) -> nn.Module:
    """``task``'s model for ``data``, its weights still to initialise (`init_parameters`).

    torch's layers draw a default init from the global RNG when built: the model
    is built under a forked RNG, so the global stream is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        return task.build_model(data, dropout=dropout)


def default_max_loss(task: Task, data: TaskData) -> float:
    """The divergence threshold: 100 times the loss of a uniform guess (``ln`` classes)."""
    chance_loss = math.log(2 if task.loss == "binary" else max(data.num_classes, 2))
    return 100.0 * chance_loss


def is_diverged(loss_mean: float, weight_norm: float, max_loss: float) -> bool:
    """An interval diverged: non-finite mean loss or weights, or a mean loss over ``max_loss``."""
    return not (math.isfinite(loss_mean) and math.isfinite(weight_norm)) or loss_mean > max_loss


def fixed_val_subset(n: int, size: int) -> torch.Tensor | None:
    """Sorted indices (CPU) of the fixed ``size``-sample validation subset of ``n``.

    None means the whole split (``size`` 0 or at least ``n``). The draw uses its
    own generator seeded with `VAL_SUBSET_SEED`, so every run of a task scores
    the same samples.
    """
    if size < 0:
        raise ValueError(f"val_size must be >= 0, got {size}")
    if size == 0 or size >= n:
        return None
    order = torch.randperm(n, generator=torch.Generator().manual_seed(VAL_SUBSET_SEED))
    return order[:size].sort().values


def image_normalisation(
    data: TaskData, device: torch.device
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(scale, shift)`` of shape (1, C, 1, 1) turning uint8 images into normalised floats.

    None for non-image data. Normalising is one multiply-add: ``x * scale + shift``.
    """
    if data.kind != "image":
        return None, None
    channels = data.train_x.shape[1]
    mean = torch.tensor(data.image_mean or (0.5,) * channels, device=device)
    std = torch.tensor(data.image_std or (0.5,) * channels, device=device)
    scale = (1.0 / (255.0 * std)).view(1, -1, 1, 1)
    return scale, (-mean / std).view(1, -1, 1, 1)


def task_loss(
    loss: str,
    outputs: torch.Tensor,
    targets: torch.Tensor,
    reduction: str = "mean",
    classes_first: bool = False,
) -> torch.Tensor:
    """The training loss of a task whose ``Task.loss`` is ``loss`` (computed in float32).

    Args:
        loss: ``cross_entropy`` or ``binary``.
        outputs: (B, C) logits (C = 1 for binary tasks).
        targets: (B,) labels.
        reduction: ``mean`` or ``sum`` over the batch.
        classes_first: Compute the cross-entropy on the (1, C, B) view of the
            logits: the same values, but the softmax is vectorised over the batch
            instead of over few classes (an order of magnitude faster under
            ``vmap``, as `hpenv.population` runs it).
    """
    outputs = outputs.float()
    if loss == "binary":
        return F.binary_cross_entropy_with_logits(
            outputs.squeeze(-1), targets.float(), reduction=reduction
        )
    if classes_first:
        return F.cross_entropy(outputs.T.unsqueeze(0), targets.unsqueeze(0), reduction=reduction)
    return F.cross_entropy(outputs, targets, reduction=reduction)


def task_predict(loss: str, outputs: torch.Tensor) -> torch.Tensor:
    """Predicted labels from a model's outputs."""
    if loss == "binary":
        return (outputs.squeeze(-1) > 0).long()
    return outputs.argmax(dim=-1)


def _make_optimizer(params: list[nn.Parameter], hparams: HParams) -> torch.optim.Optimizer:
    if hparams.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=hparams.lr, momentum=hparams.momentum, weight_decay=hparams.weight_decay
        )
    cls = torch.optim.Adam if hparams.optimizer == "adam" else torch.optim.AdamW
    return cls(
        params, lr=hparams.lr, betas=(hparams.momentum, 0.999), weight_decay=hparams.weight_decay
    )


def global_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """L2 norm of all ``tensors`` together, without a host sync (the gradient norm statistic)."""
    if not tensors:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(tensors))))
