"""`Population`: N training runs of one architecture, trained in lock-step as one batched step.

Each member is what a `hpenv.training.TrainingRun` of the same task, seed and
hyperparameters would be, to float tolerance: the same initial weights
(`init_parameters` from ``torch.Generator().manual_seed(seed)``), the same data
order (a permutation from the member's own ``torch.Generator``, a fresh one on
wrap-around), the same dropout masks and augmentation (drawn from that
generator in the order a `TrainingRun` draws them), the same optimizer rules
(`hpenv.stacked_optim`), the same statistics and the same validation subset.

The members' weights are stacked along a leading member axis
(``torch.func.stack_module_state``); one optimizer step of all members is one
``vmap`` of ``grad_and_value`` over ``functional_call`` of the shared
architecture. ``vmap`` cannot draw from per-member generators, so random masks
are drawn outside it, member by member, and fed in. Statistics stay on the
device and are read back with one host sync per `Population.train` call.

Members share the architecture, the shapes of their data, the optimizer kind
and the batch size (lock-step); each has its own data, seed, learning rate,
momentum, weight decay, dropout and gradient clipping. A member that diverges
is frozen: its weights and optimizer state stop changing, it reports
`TrainingRun`'s diverged statistics, and the others train on unaffected (every
reduction is per member, so NaNs cannot leak). `Population.reinit` starts a
member afresh in place (a vectorised environment's auto-reset), `Population.add`
appends one.

Example:
    >>> import torch
    >>> from hpenv.tasks import SyntheticSpec
    >>> torch.set_num_threads(1)
    >>> spec = SyntheticSpec(num_samples=200, width=16, depth=1)
    >>> members = [Member(spec.task(), seed=s) for s in range(3)]
    >>> population = Population(members, device="cpu")
    >>> [stats.steps for stats in population.train(256)]
    [4, 4, 4]
    >>> len(population.evaluate())
    3
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

from hpenv.hyperparams import HParams
from hpenv.stacked_optim import MemberHParams, StackedOptimizer
from hpenv.tasks import Task, TaskData
from hpenv.tasks.augment import apply_crop_flip, draw_crop_flip
from hpenv.tasks.models import Dropout, init_parameters
from hpenv.training import (
    EvalStats,
    IntervalStats,
    build_model,
    default_max_loss,
    fixed_val_subset,
    image_normalisation,
    is_diverged,
    resolve_device,
    task_loss,
    task_predict,
)

#: Layers a population can train (stateless between steps, no buffers).
SUPPORTED_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Sequential,
    nn.Linear,
    nn.Conv2d,
    nn.ReLU,
    nn.MaxPool2d,
    nn.Flatten,
    nn.Unflatten,
    Dropout,
)
#: Hyperparameters every member of a population shares (lock-step), so not set per member.
SHARED_HPARAMS: tuple[str, ...] = ("batch_size",)
#: Activations (elements, all members) of one evaluation chunk: about 4 MiB per layer.
EVAL_CHUNK_ELEMENTS = 2**20
#: Largest size (bytes) of the dropout masks and crop draws held at once.
DRAW_BUFFER_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Member:
    """What one member trains: the arguments a `TrainingRun` would get.

    Attributes:
        task: The task (its model, loss and augmentation; members of one
            population must build the same architecture).
        seed: Seeds weights, data order, augmentation and dropout.
        hparams: Starting hyperparameters; the task's defaults if None.
        data: Pre-loaded data; loaded (or generated) from the task if None.
        subset: Train on this seeded fraction of the training split.
        subset_seed: Seed of the subset draw.
    """

    task: Task
    seed: int = 0
    hparams: HParams | None = None
    data: TaskData | None = None
    subset: float | None = None
    subset_seed: int = 0

    def resolved_hparams(self) -> HParams:
        return self.hparams if self.hparams is not None else self.task.defaults

    def load(self) -> TaskData:
        """The member's training data (CPU or device tensors)."""
        if self.data is None:
            return self.task.load_data(subset=self.subset, subset_seed=self.subset_seed)
        return self.data.subset(self.subset, self.subset_seed)


class _FedDropout(nn.Module):
    """`Dropout` whose mask and keep probability are fed in (as buffers) per call."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mask", None, persistent=False)
        self.register_buffer("keep", None, persistent=False)
        self.shape: tuple[int, ...] = ()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shape = tuple(x.shape[1:])
        mask, keep = self.mask, self.keep
        if mask is None:
            return x
        assert isinstance(mask, torch.Tensor)
        assert isinstance(keep, torch.Tensor)
        return x * mask / keep


@dataclass
class _MemberState:
    """Host-side bookkeeping of one member (what is not a stacked tensor)."""

    task: Task
    hparams: HParams
    generator: torch.Generator
    order: torch.Tensor
    max_loss: float
    cursor: int = 0
    epochs_started: int = 1
    samples_done: int = 0
    steps_done: int = 0
    diverged: bool = False


class Population:
    """N members of one architecture trained together, one interval at a time.

    Args:
        members: One `Member` per run (at least one). They must build the same
            architecture from data of the same shapes, and share the optimizer
            kind and the batch size.
        device: ``"auto"`` (CUDA if present), ``"cpu"``, ``"cuda"``, ...
        val_size: Validation samples scored by `evaluate` (a fixed subset, as in
            `TrainingRun`); the first member's task default if None, 0 for all.
        amp: bfloat16 autocast; default on for CUDA, off on CPU (as `TrainingRun`).
        stats_every: Measure the gradient norm every this many steps (and the
            last) when a member does not clip.
        eval_batch_size: At most this many samples per member per evaluation batch
            (fewer when the members' activations would exceed about 4 MiB).

    Raises:
        ValueError: No members, members that differ in architecture, data shape,
            optimizer or batch size, an unsupported model (see `SUPPORTED_LAYERS`).
    """

    def __init__(
        self,
        members: Sequence[Member],
        *,
        device: str | torch.device = "auto",
        val_size: int | None = None,
        amp: bool | None = None,
        stats_every: int = 4,
        eval_batch_size: int = 1024,
    ) -> None:
        if not members:
            raise ValueError("a population needs at least one member")
        if stats_every < 1 or eval_batch_size < 1:
            raise ValueError("stats_every and eval_batch_size must be >= 1")
        self.device = resolve_device(device)
        self.stats_every = stats_every
        self.eval_batch_size = eval_batch_size
        self.amp = self.device.type == "cuda" if amp is None else amp
        first = members[0]
        hparams = first.resolved_hparams()
        self.optimizer_kind = hparams.optimizer
        self.batch_size = hparams.batch_size
        self.loss_kind = first.task.loss
        self.augment = first.task.augment
        datas = [member.load() for member in members]
        template = build_model(first.task, datas[0], hparams.dropout)
        _check_supported(template, first.task)
        self._param_names = [name for name, _ in template.named_parameters()]
        self._template = _feedable(template).to("meta")
        self._dropouts = [m for m in self._template.modules() if isinstance(m, _FedDropout)]
        self._dropout_names = [
            name for name, m in self._template.named_modules() if isinstance(m, _FedDropout)
        ]
        models = [self._init_model(m, d) for m, d in zip(members, datas, strict=True)]
        params, _ = stack_module_state(models)
        self.params: dict[str, torch.Tensor] = {
            k: v.detach().to(self.device).contiguous() for k, v in params.items()
        }
        self._data = _stack_data(datas, self.device)
        self.kind = datas[0].kind
        self._input_shape = tuple(datas[0].train_x.shape[1:])
        self._dropout_shapes, self._widest = self._probe()
        size = first.task.val_size if val_size is None else val_size
        index = fixed_val_subset(datas[0].val_x.shape[0], size)
        self._val_index = None if index is None else index.to(self.device)
        self.optimizer = StackedOptimizer(self.optimizer_kind, self.params)
        self._members = [self._new_state(m, d) for m, d in zip(members, datas, strict=True)]
        self._scale, self._shift = _stack_normalisation(
            [image_normalisation(d, self.device) for d in datas]
        )
        self._grad_fn = vmap(grad_and_value(self._member_loss))
        self._forward_fn = vmap(self._member_forward)

    # ------------------------------------------------------------ members

    def __len__(self) -> int:
        return len(self._members)

    @property
    def size(self) -> int:
        """Number of members."""
        return len(self._members)

    @property
    def hparams(self) -> list[HParams]:
        """Each member's current hyperparameters."""
        return [m.hparams for m in self._members]

    @property
    def diverged(self) -> list[bool]:
        """Which members have diverged (and are frozen)."""
        return [m.diverged for m in self._members]

    @property
    def samples_done(self) -> list[int]:
        """Training samples each member consumed since it started."""
        return [m.samples_done for m in self._members]

    @property
    def steps_done(self) -> list[int]:
        """Optimizer steps each member took since it started."""
        return [m.steps_done for m in self._members]

    @property
    def max_loss(self) -> list[float]:
        """Each member's divergence threshold (as `TrainingRun.max_loss`)."""
        return [m.max_loss for m in self._members]

    def task(self, index: int) -> Task:
        """The task member ``index`` trains."""
        return self._members[index].task

    def set_hparams(self, index: int, **changes: Any) -> None:
        """Change member ``index``'s hyperparameters for the next interval (state is kept)."""
        self.apply_hparams(index, self._members[index].hparams.replace(**changes))

    def apply_hparams(self, index: int, hparams: HParams) -> None:
        """Make ``hparams`` member ``index``'s hyperparameters.

        Raises:
            ValueError: Another optimizer kind or batch size than the population's.
        """
        self._check_shared(hparams)
        self._members[index].hparams = hparams

    def set_batch_size(self, batch_size: int) -> None:
        """Change the batch size of every member (it is shared: lock-step)."""
        for state in self._members:
            state.hparams = state.hparams.replace(batch_size=batch_size)
        self.batch_size = batch_size

    def reinit(self, index: int, member: Member) -> None:
        """Start member ``index`` afresh in place: new seed, data and hyperparameters.

        The new member must have the population's architecture, data shapes,
        optimizer and batch size. Its weights, optimizer state, data order and
        counters are those of a new `TrainingRun`.
        """
        data, stacked, model = self._load_member(member, "reinit")
        self._write_member(index, member, data, stacked, model)

    def add(self, member: Member) -> int:
        """Append ``member`` as a new last member, as `reinit` starts one; its index.

        Every stacked tensor (weights, optimizer state, data) is copied one row
        longer: the cost of a rare event (a vectorised environment that needs
        one more run mid-population).
        """
        data, stacked, model = self._load_member(member, "add")
        index = self.size
        with torch.no_grad():  # a placeholder row, overwritten below
            self.params = {k: torch.cat([v, v[-1:]]) for k, v in self.params.items()}
            self._data = {k: torch.cat([v, v[-1:]]) for k, v in self._data.items()}
            if self._scale is not None and self._shift is not None:
                self._scale = torch.cat([self._scale, self._scale[-1:]])
                self._shift = torch.cat([self._shift, self._shift[-1:]])
        self.optimizer.grow(self.params)
        self._members.append(self._members[-1])
        self._write_member(index, member, data, stacked, model)
        return index

    def _load_member(
        self, member: Member, action: str
    ) -> tuple[TaskData, dict[str, torch.Tensor], nn.Module]:
        """A new member's data (also stacked, on the device) and initial model, checked
        against the population's hyperparameters, data shapes and architecture."""
        self._check_shared(member.resolved_hparams())
        data = member.load()
        stacked = _stack_data([data], self.device)
        for key, tensor in stacked.items():
            if tensor.shape[1:] != self._data[key].shape[1:]:
                raise ValueError(
                    f"{action}: member data {key} has shape {tuple(tensor.shape[1:])}, "
                    f"the population's is {tuple(self._data[key].shape[1:])}"
                )
        return data, stacked, self._init_model(member, data)

    def _write_member(
        self,
        index: int,
        member: Member,
        data: TaskData,
        stacked: dict[str, torch.Tensor],
        model: nn.Module,
    ) -> None:
        """Make row ``index`` a new `TrainingRun`'s state (see `_load_member`)."""
        with torch.no_grad():
            for name, param in model.named_parameters():
                self.params[name][index].copy_(param.detach())
            for key, tensor in stacked.items():
                self._data[key][index].copy_(tensor[0])
        self.optimizer.reset_member(index)
        self._members[index] = self._new_state(member, data)
        scale, shift = image_normalisation(data, self.device)
        if self._scale is not None and self._shift is not None:
            assert scale is not None
            assert shift is not None
            self._scale[index].copy_(scale)
            self._shift[index].copy_(shift)

    def weights_state(self, members: Sequence[int]) -> dict[str, Any]:
        """Copies of members' weights and optimizer state (step counts included): what a
        probe rolls back (`load_weights_state`); data order and counters are not in it."""
        index = self._check_index(members)
        state = self._snapshot(index)
        state["index"] = index
        state["step_count"] = self.optimizer.step_count[index].copy()
        state["has_buf"] = self.optimizer.has_buf[index].copy()
        return state

    def load_weights_state(self, state: dict[str, Any], members: Sequence[int]) -> None:
        """Put back ``members`` (some of those in ``state``) from a `weights_state`; they are
        not diverged after it (their weights are the ones saved)."""
        saved: list[int] = state["index"]
        rows = [saved.index(i) for i in members]
        at = torch.as_tensor(rows, device=self.device)
        index = self._check_index(members)
        self._restore(
            index,
            {
                "params": {k: v[at] for k, v in state["params"].items()},
                "optimizer": {
                    group: {k: v[at] for k, v in tensors.items()}
                    for group, tensors in state["optimizer"].items()
                },
            },
        )
        self.optimizer.step_count[index] = state["step_count"][rows]
        self.optimizer.has_buf[index] = state["has_buf"][rows]
        for i in index:
            self._members[i].diverged = False

    def batch_size_for_step(self) -> int:
        """Samples of one optimizer step: the batch size, or the whole training split if
        smaller (as `TrainingRun` batches)."""
        return min(self.batch_size, self._data["train_x"].shape[1])

    def pause(self, index: int) -> None:
        """Stop training member ``index`` (it is frozen, as a diverged member is) until its
        `load_weights_state`: a probe whose sweep ended before the others'."""
        self._members[index].diverged = True

    def spend(self, index: int, samples: int) -> None:
        """Count ``samples`` against member ``index``'s budget without training on them."""
        if samples < 0:
            raise ValueError(f"samples must be >= 0, got {samples}")
        self._members[index].samples_done += samples

    def member(self, index: int) -> MemberRun:
        """A `TrainingRun`-like view of member ``index`` (see `MemberRun`)."""
        self._check_index([index])
        return MemberRun(self, index)

    def parameters(self, index: int) -> dict[str, torch.Tensor]:
        """Copies of member ``index``'s weights, keyed like its model's ``state_dict``."""
        return {name: tensor[index].detach().clone() for name, tensor in self.params.items()}

    # ------------------------------------------------------------ training

    def train(self, num_samples: int, members: Sequence[int] | None = None) -> list[IntervalStats]:
        """Train every member on ``num_samples`` samples with its current hyperparameters.

        Batches have the shared batch size, except a last one that completes
        ``num_samples`` exactly. Frozen (diverged) members do not train and report
        `TrainingRun`'s diverged statistics. One host sync for the whole call;
        every member's ``wall_time`` is the whole call's.

        Args:
            num_samples: Training samples per member.
            members: Train only these members (the others are left as they are),
                at a cost proportional to their number; the statistics are
                returned in this order. All members if None.
        """
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if members is not None:
            index = self._check_index(members)
            if index != list(range(self.size)):
                subset = self._subset(index)
                stats = subset.train(num_samples)
                self._absorb(index, subset)
                return stats
        start = time.perf_counter()
        batch = self.batch_size_for_step()
        sizes = [batch] * (num_samples // batch)
        if num_samples % batch:
            sizes.append(num_samples % batch)
        active = np.array([not m.diverged for m in self._members])
        frozen = [i for i, a in enumerate(active) if not a]
        values: list[list[float]] = []
        if active.any():
            saved = self._snapshot(frozen) if frozen else None
            values = self._train_steps(sizes, active)
            if saved is not None:  # frozen members computed along; their state is put back
                self._restore(frozen, saved)
        wall = time.perf_counter() - start
        results = []
        for i, state in enumerate(self._members):
            if not active[i]:
                results.append(self._stats(state, [math.nan] * 6, 0, 0, wall))
                continue
            state.samples_done += num_samples
            state.steps_done += len(sizes)
            result = self._stats(state, [v[i] for v in values], num_samples, len(sizes), wall)
            results.append(result)
        return results

    def _train_steps(self, sizes: list[int], active: np.ndarray) -> list[list[float]]:
        """Take one optimizer step per entry of ``sizes``; the interval's statistics.

        Returns, per statistic, one value per member: loss mean and std, mean
        gradient norm, update norm of the last step, weight norm before and after it.
        """
        steps, n, device = len(sizes), self.size, self.device
        self.optimizer.plan(self._member_hparams(), steps, active)
        measured = [s == steps - 1 or s % self.stats_every == 0 for s in range(steps)]
        clip = self._clip_values()
        losses = torch.zeros(steps, n, device=device)
        grad_sum = torch.zeros(n, device=device)
        before: dict[str, torch.Tensor] = {}
        step = 0
        for chunk in self._chunks(sizes):
            draws = self._draw(chunk, active)
            for offset, size in enumerate(chunk):
                inputs, targets, feeds = self._batch(draws, offset, size)
                grads, loss = self._grad_fn(self.params, feeds, inputs, targets)
                if clip is not None:
                    grad_sum += self._clip(grads, clip) * self._norm_weight(measured[step])
                elif measured[step]:
                    grad_sum += _member_norm(grads.values())
                if step == steps - 1:
                    before = {k: v.clone() for k, v in self.params.items()}
                self.optimizer.step(self.params, grads, step)
                losses[step] = loss.detach()
                step += 1
        counts = [
            steps if m.hparams.grad_clip is not None else sum(measured) for m in self._members
        ]
        return torch.stack(
            [
                losses.mean(0),
                losses.std(0, correction=0) if steps > 1 else torch.zeros(n, device=device),
                grad_sum / torch.as_tensor(counts, dtype=torch.float32).to(device),
                _member_norm([self.params[k] - before[k] for k in self.params]),
                _member_norm(before.values()),
                _member_norm(self.params.values()),
            ]
        ).tolist()  # the interval's one host sync

    @staticmethod
    def _clip(grads: dict[str, torch.Tensor], clip: torch.Tensor) -> torch.Tensor:
        """``clip_grad_norm_`` per member (``inf``: no clipping); the pre-clip norms."""
        norm = _member_norm(grads.values())
        coef = torch.clamp(clip / (norm + 1e-6), max=1.0)
        coef = torch.where(torch.isinf(clip), 1.0, coef)
        for g in grads.values():
            g.mul_(_bcast(coef, g))
        return norm

    @torch.inference_mode()
    def evaluate(self, split: str = "val", members: Sequence[int] | None = None) -> list[EvalStats]:
        """Each member's mean loss and accuracy on the fixed validation subset, or a whole split.

        Every member is scored (a diverged one gets whatever its frozen weights give),
        or only ``members``, in that order.
        """
        if members is not None:
            index = self._check_index(members)
            if index != list(range(self.size)):
                return self._subset(index).evaluate(split)
        start = time.perf_counter()
        if split not in ("train", "val", "test"):
            raise ValueError(f"unknown split {split!r}; expected train, val or test")
        if f"{split}_x" not in self._data:
            raise ValueError(f"the members' data has no {split} split")
        xs, ys = self._data[f"{split}_x"], self._data[f"{split}_y"]
        if split == "val" and self._val_index is not None:
            xs, ys = xs[:, self._val_index], ys[:, self._val_index]
        total_loss = torch.zeros(self.size, device=self.device)
        correct = torch.zeros(self.size, device=self.device)
        # Chunks small enough that one layer's activations for all members stay in
        # cache (and out of fresh page-faulted allocations); sums do not depend on it.
        rows = max(1, min(self.eval_batch_size, EVAL_CHUNK_ELEMENTS // (self.size * self._widest)))
        for i in range(0, xs.shape[1], rows):
            inputs = self._prepare(xs[:, i : i + rows])
            targets = ys[:, i : i + rows]
            with self._autocast():
                outputs = self._forward_fn(self.params, inputs)
            total_loss += vmap(self._sum_loss)(outputs, targets)
            correct += (vmap(self._predict)(outputs) == targets).sum(1)
        losses, hits = torch.stack([total_loss, correct]).tolist()
        count = xs.shape[1]
        wall = time.perf_counter() - start
        return [
            EvalStats(loss / count, hit / count, count, wall)
            for loss, hit in zip(losses, hits, strict=True)
        ]

    # ------------------------------------------------------------ per-member function

    def _member_forward(
        self, params: dict[str, torch.Tensor], inputs: torch.Tensor, feeds: Any = None
    ) -> torch.Tensor:
        state = params if feeds is None else {**params, **feeds}
        return functional_call(self._template, state, (inputs,))

    def _member_loss(
        self,
        params: dict[str, torch.Tensor],
        feeds: dict[str, torch.Tensor],
        inputs: torch.Tensor,
        targets: torch.Tensor,
    ) -> torch.Tensor:
        with self._autocast():
            outputs = self._member_forward(params, inputs, feeds or None)
        return task_loss(self.loss_kind, outputs, targets, classes_first=True)

    def _sum_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return task_loss(self.loss_kind, outputs, targets, reduction="sum", classes_first=True)

    def _predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return task_predict(self.loss_kind, outputs)

    # ------------------------------------------------------------ batches and draws

    def _chunks(self, sizes: list[int]) -> list[list[int]]:
        """Split the interval's steps so that one chunk's random draws fit the buffer."""
        per_step = sum(math.prod(s) for s in self._dropout_shapes) * 4 + 3 * 8
        per_step *= self.size * max(sizes)
        if not self._needs_draws() or per_step == 0:
            return [sizes]
        span = max(1, DRAW_BUFFER_BYTES // per_step)
        return [sizes[i : i + span] for i in range(0, len(sizes), span)]

    def _needs_draws(self) -> bool:
        dropout = bool(self._dropouts) and any(
            m.hparams.dropout > 0 for m in self._members if not m.diverged
        )
        return dropout or self._augments()

    def _augments(self) -> bool:
        return self.kind == "image" and self.augment == "crop_flip"

    def _draw(self, sizes: list[int], active: np.ndarray) -> dict[str, Any]:
        """Every random draw of the next steps, member by member, in `TrainingRun`'s order.

        Per step a `TrainingRun` draws: a new permutation when the data order
        wraps around, then the augmentation, then the dropout masks layer by layer.
        """
        n, device = self.size, self.device
        total, width = sum(sizes), max(sizes)
        index = torch.zeros(n, total, dtype=torch.long, device=device)
        keeps = [1.0 - m.hparams.dropout for m in self._members]
        use_dropout = bool(self._dropouts) and any(keeps[i] < 1.0 for i in range(n) if active[i])
        mask_dtype = torch.bfloat16 if self.amp else torch.float32
        masks = (
            [torch.ones(n, len(sizes), width, *s, dtype=mask_dtype, device=device)
             for s in self._dropout_shapes]
            if use_dropout
            else []
        )  # fmt: skip
        crops: list[torch.Tensor] = []
        if self._augments():  # shift_y, shift_x, flip (see hpenv.tasks.augment)
            crops = [
                torch.zeros(n, len(sizes), width, 1, dtype=dtype, device=device)
                for dtype in (torch.long, torch.long, torch.bool)
            ]
        for i, state in enumerate(self._members):
            if not active[i]:
                continue
            if not (crops or (masks and keeps[i] < 1.0)):  # only the data order is random
                index[i] = self._take(state, total)
                continue
            pieces = []
            for s, size in enumerate(sizes):
                pieces.append(self._take(state, size))
                if crops:
                    draw = draw_crop_flip(size, state.generator, device)
                    for buffer, value in zip(crops, draw, strict=True):
                        buffer[i, s, :size] = value
                if masks and keeps[i] < 1.0:
                    for buffer in masks:
                        buffer[i, s, :size].bernoulli_(keeps[i], generator=state.generator)
            index[i] = torch.cat(pieces)
        offsets = torch.arange(n, device=device) * self._data["train_x"].shape[1]
        return {
            "index": index + offsets[:, None],
            "starts": np.cumsum([0, *sizes]),
            "masks": masks,
            "keep": torch.as_tensor(keeps, dtype=torch.float32).to(device),
            "crops": crops,
        }

    def _take(self, state: _MemberState, count: int) -> torch.Tensor:
        """The next ``count`` indices of a member's data order, as `TrainingRun._next_batch`.

        A new permutation is drawn (from the member's generator) only when an index
        past the end of the current one is needed, exactly when `TrainingRun` draws
        it; ``count`` may span several batches when nothing else is drawn between.
        """
        pieces = []
        while True:
            available = state.order.shape[0] - state.cursor
            if count <= available:
                pieces.append(state.order[state.cursor : state.cursor + count])
                state.cursor += count
                break
            pieces.append(state.order[state.cursor :])
            count -= available
            state.order = self._new_order(state.generator)
            state.epochs_started += 1
            state.cursor = 0
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces)

    def _batch(
        self, draws: dict[str, Any], step: int, size: int
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        a = int(draws["starts"][step])
        flat = draws["index"][:, a : a + size].reshape(-1)
        n = self.size
        train_x, train_y = self._data["train_x"], self._data["train_y"]
        inputs = train_x.view(-1, *train_x.shape[2:]).index_select(0, flat)
        targets = train_y.view(-1).index_select(0, flat).view(n, size)
        if draws["crops"]:
            draw = tuple(c[:, step, :size].reshape(n * size, 1) for c in draws["crops"])
            inputs = apply_crop_flip(inputs, draw)
        inputs = self._prepare(inputs.view(n, size, *inputs.shape[1:]))
        feeds: dict[str, torch.Tensor] = {}
        for name, buffer in zip(self._dropout_names, draws["masks"], strict=False):
            feeds[f"{name}.mask"] = buffer[:, step, :size]
            feeds[f"{name}.keep"] = draws["keep"]
        return inputs, targets, feeds

    def _prepare(self, inputs: torch.Tensor) -> torch.Tensor:
        """Members' (N, B, ...) raw inputs -> model inputs (images normalised per member)."""
        if self._scale is None or self._shift is None:
            return inputs
        return torch.addcmul(self._shift, inputs.float(), self._scale)

    # ------------------------------------------------------------ statistics

    def _clip_values(self) -> torch.Tensor | None:
        clips = [m.hparams.grad_clip for m in self._members]
        if all(c is None for c in clips):
            return None
        values = [math.inf if c is None else c for c in clips]
        return torch.as_tensor(values, dtype=torch.float32).to(self.device)

    def _norm_weight(self, measured: bool) -> torch.Tensor:
        """Per member 1 where this step's gradient norm counts (every step when clipping)."""
        counts = [
            1.0 if (m.hparams.grad_clip is not None or measured) else 0.0 for m in self._members
        ]
        return torch.as_tensor(counts, dtype=torch.float32).to(self.device)

    def _stats(
        self, state: _MemberState, values: list[float], samples: int, steps: int, wall: float
    ) -> IntervalStats:
        mean, spread, grad, delta, weight, weight_after = values
        if is_diverged(mean, weight_after, state.max_loss):
            state.diverged = True
        return IntervalStats(
            loss_mean=mean,
            loss_std=spread,
            grad_norm=grad,
            update_ratio=delta / weight if weight > 0 else math.nan,
            samples=samples,
            steps=steps,
            wall_time=wall,
            diverged=state.diverged,
            samples_done=state.samples_done,
            steps_done=state.steps_done,
        )

    # ------------------------------------------------------------ internals

    def _init_model(self, member: Member, data: TaskData) -> nn.Module:
        model = build_model(member.task, data, member.resolved_hparams().dropout)
        names = [name for name, _ in model.named_parameters()]
        template = dict(self._template.named_parameters())
        shapes_match = names == self._param_names and all(
            p.shape == template[k].shape for k, p in model.named_parameters()
        )
        if not shapes_match:
            raise ValueError(
                f"member task {member.task.name!r} builds another architecture than the "
                "population's; members must share the model and the data shapes"
            )
        init_parameters(model, torch.Generator().manual_seed(member.seed))
        return model

    def _new_state(self, member: Member, data: TaskData) -> _MemberState:
        hparams = member.resolved_hparams()
        self._check_shared(hparams)
        generator = torch.Generator(device=self.device).manual_seed(member.seed)
        return _MemberState(
            task=member.task,
            hparams=hparams,
            generator=generator,
            order=self._new_order(generator),
            max_loss=default_max_loss(member.task, data),
        )

    def _new_order(self, generator: torch.Generator) -> torch.Tensor:
        n = self._data["train_x"].shape[1]
        return torch.randperm(n, generator=generator, device=self.device)

    def _check_shared(self, hparams: HParams) -> None:
        if hparams.optimizer != self.optimizer_kind:
            raise ValueError(
                f"a population's optimizer is fixed ({self.optimizer_kind}); "
                f"got {hparams.optimizer}"
            )
        if hparams.batch_size != self.batch_size:
            raise ValueError(
                f"population members share one batch size ({self.batch_size}), got "
                f"{hparams.batch_size}; change it for all with set_batch_size()"
            )

    def _member_hparams(self) -> MemberHParams:
        hps = [m.hparams for m in self._members]
        return MemberHParams(
            lr=np.array([h.lr for h in hps], dtype=np.float64),
            momentum=np.array([h.momentum for h in hps], dtype=np.float64),
            weight_decay=np.array([h.weight_decay for h in hps], dtype=np.float64),
        )

    def _check_index(self, members: Sequence[int]) -> list[int]:
        index = [int(i) for i in members]
        if not index or len(set(index)) != len(index) or not all(0 <= i < self.size for i in index):
            raise ValueError(f"members must be distinct indices in [0, {self.size}), got {members}")
        return index

    def _subset(self, index: list[int]) -> Population:
        """Members ``index`` as a population of their own (copies of their tensors).

        The members' host state (generators, data order, counters) is shared, so
        training the subset advances it; `_absorb` writes the tensors back.
        """
        subset = copy.copy(self)
        idx = torch.as_tensor(index, device=self.device)
        subset.params = {k: v[idx] for k, v in self.params.items()}
        subset._data = {k: v[idx] for k, v in self._data.items()}
        subset._members = [self._members[i] for i in index]
        if self._scale is not None and self._shift is not None:
            subset._scale, subset._shift = self._scale[idx], self._shift[idx]
        subset.optimizer = self.optimizer.subset(index)
        return subset

    def _absorb(self, index: list[int], subset: Population) -> None:
        idx = torch.as_tensor(index, device=self.device)
        for name, tensor in subset.params.items():
            self.params[name].index_copy_(0, idx, tensor)
        self.optimizer.absorb(index, subset.optimizer)

    def _snapshot(self, index: list[int]) -> dict[str, Any]:
        idx = torch.as_tensor(index, device=self.device)
        return {
            "params": {k: v[idx].clone() for k, v in self.params.items()},
            "optimizer": self.optimizer.snapshot(index),
        }

    def _restore(self, index: list[int], saved: dict[str, Any]) -> None:
        idx = torch.as_tensor(index, device=self.device)
        for name, value in saved["params"].items():
            self.params[name].index_copy_(0, idx, value)
        self.optimizer.restore(index, saved["optimizer"])

    def _probe(self) -> tuple[list[tuple[int, ...]], int]:
        """One meta-device forward of one sample: every dropout layer's input shape, and
        the largest activation (elements per sample) of any layer."""
        largest = [math.prod(self._input_shape)]

        def record(module: nn.Module, args: Any, output: torch.Tensor) -> None:
            largest.append(math.prod(output.shape[1:]))

        hooks = [m.register_forward_hook(record) for m in self._template.modules()]
        try:
            with torch.no_grad():
                self._template(torch.zeros(1, *self._input_shape, device="meta"))
        finally:
            for hook in hooks:
                hook.remove()
        return [m.shape for m in self._dropouts], max(largest)

    def _autocast(self) -> AbstractContextManager[Any]:
        if not self.amp:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)


class MemberRun:
    """One member of a `Population`, seen through the `TrainingRun` interface its callers use.

    Reading and setting hyperparameters (``hparams``, `set_hparams`,
    `apply_hparams`) and the counters act on the member alone. `train` and
    `evaluate` train or score this member only (a subset of the population, at
    a cost proportional to one member); code that drives many members trains
    the whole population at once instead and hands each member's statistics to
    whatever drives it (`agents.evaluation.methods.core.train_runs`).

    Args:
        population: The population.
        index: The member.
    """

    def __init__(self, population: Population, index: int) -> None:
        self.population, self.index = population, index

    @property
    def task(self) -> Task:
        return self.population.task(self.index)

    @property
    def hparams(self) -> HParams:
        return self.population.hparams[self.index]

    @property
    def samples_done(self) -> int:
        return self.population.samples_done[self.index]

    @property
    def steps_done(self) -> int:
        return self.population.steps_done[self.index]

    @property
    def diverged(self) -> bool:
        return self.population.diverged[self.index]

    @property
    def max_loss(self) -> float:
        return self.population.max_loss[self.index]

    def set_hparams(self, **changes: Any) -> None:
        """Change this member's hyperparameters for the next interval (state is kept)."""
        self.population.set_hparams(self.index, **changes)

    def apply_hparams(self, hparams: HParams) -> None:
        """Make ``hparams`` this member's hyperparameters."""
        self.population.apply_hparams(self.index, hparams)

    def train(self, num_samples: int) -> IntervalStats:
        """Train this member alone on ``num_samples`` samples."""
        return self.population.train(num_samples, members=[self.index])[0]

    def evaluate(self, split: str = "val") -> EvalStats:
        """Score this member alone (validation subset, or a whole other split)."""
        return self.population.evaluate(split, members=[self.index])[0]


def supports(task: Task) -> str | None:
    """None if a population can train ``task``'s model; else why not (one line)."""
    from hpenv.testing import tiny_task_data

    try:
        _check_supported(build_model(task, tiny_task_data(task, n_train=8, n_eval=4), 0.0), task)
    except ValueError as exc:
        return str(exc)
    return None


#: Most multiply-adds per sample (linear and convolution layers) of a model whose runs a CPU
#: population trains faster than one at a time (measured, docs/benchmarks.md section 7).
CPU_BATCH_MACS = 500_000


def batching_pays(task: Task, data: TaskData, device: str | torch.device = "cpu") -> str | None:
    """None if a population of ``task``'s runs on ``data`` trains faster than the runs one
    at a time on ``device``; else why not (one line).

    On CUDA a population always pays. On a CPU it saves the per-step overhead it
    shares among members (the optimizer, the Python around each step), which
    matters for small models only. Member-steps/s of a population of 16 against
    16 `TrainingRun`s, one thread (``scripts/benchmark_population.py
    --core-tasks``, docs/benchmarks.md section 7): diabetes' MLP (5 thousand
    multiply-adds per sample) 5.0x, the digits CNN (0.34 million) 1.6x, the deep
    synthetic MLP (0.34 million) 1.3x, MNIST's MLP (0.67 million) 1.1x, MNIST's
    CNN (4.2 million; batched convolutions are slow there) 0.4x; and the whole
    harness batching MNIST's MLPs too ran 0.9x as fast per cell as one run at a
    time. A model of more than `CPU_BATCH_MACS` multiply-adds per sample runs one
    at a time there.
    """
    if resolve_device(device).type == "cuda":
        return None
    macs = multiply_adds(build_model(task, data, 0.0), _example_input(data))
    if macs > CPU_BATCH_MACS:
        return (
            f"on a CPU a population of a model of {macs / 1e6:.2f} million multiply-adds per "
            "sample trains no faster than one run at a time; it batches on CUDA, or with "
            "engine 'population'"
        )
    return None


def multiply_adds(model: nn.Module, example: torch.Tensor) -> int:
    """Multiply-adds of ``model``'s linear and convolution layers for one sample of ``example``."""
    total = [0]

    def count(module: nn.Module, args: Any, output: torch.Tensor) -> None:
        if isinstance(module, nn.Linear):
            total[0] += module.in_features * module.out_features
        elif isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
            total[0] += math.prod(output.shape[1:]) * per_output

    hooks = [m.register_forward_hook(count) for m in model.modules()]
    try:
        with torch.no_grad():
            model(example[:1])
    finally:
        for hook in hooks:
            hook.remove()
    return total[0]


def _example_input(data: TaskData) -> torch.Tensor:
    """A model input of ``data`` (images normalised to floats as a run feeds them)."""
    x = data.train_x[:2].cpu()
    return x.float() if data.kind == "image" else x


def _check_supported(model: nn.Module, task: Task) -> None:
    for module in model.modules():
        if not isinstance(module, SUPPORTED_LAYERS):
            names = ", ".join(t.__name__ for t in SUPPORTED_LAYERS)
            raise ValueError(
                f"population training does not support task {task.name!r}'s model "
                f"{task.model!r}: it contains {type(module).__name__}; supported layers: "
                f"{names} (MLPs and small CNNs). Train it with TrainingRun instead."
            )


def _feedable(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every `Dropout` replaced by a `_FedDropout`."""
    model = copy.deepcopy(model)
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, Dropout):
                setattr(module, child_name, _FedDropout())
        del name
    return model


def _stack_data(datas: Sequence[TaskData], device: torch.device) -> dict[str, torch.Tensor]:
    """The members' splits stacked along a leading member axis, on ``device``."""
    stacked: dict[str, torch.Tensor] = {}
    for key in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
        tensors = [getattr(d, key) for d in datas]
        if any(t is None for t in tensors):
            continue
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) > 1:
            raise ValueError(f"population members' {key} shapes differ: {sorted(shapes)}")
        stacked[key] = torch.stack([t.to(device) for t in tensors])
    return stacked


def _stack_normalisation(
    norms: list[tuple[torch.Tensor | None, torch.Tensor | None]],
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Per-member (N, 1, C, 1, 1) image scale and shift, or None for non-image data."""
    scales = [s for s, _ in norms if s is not None]
    shifts = [t for _, t in norms if t is not None]
    if len(scales) != len(norms) or len(shifts) != len(norms):
        return None, None
    return torch.stack(scales), torch.stack(shifts)


def _member_norm(tensors: Any) -> torch.Tensor:
    """Per-member global L2 norm (N,) of stacked tensors (N, ...), as `TrainingRun` measures."""
    norms = [torch.linalg.vector_norm(t.reshape(t.shape[0], -1), dim=1) for t in tensors]
    return torch.linalg.vector_norm(torch.stack(norms), dim=0)


def _bcast(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.view(-1, *([1] * (like.dim() - 1)))
