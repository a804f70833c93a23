"""torch.optim's SGD, Adam and AdamW update rules on stacked per-member tensors.

Every parameter is one tensor of shape ``(N, *shape)``: member ``i`` owns slice
``i``. Each member has its own learning rate, momentum (beta1) and weight decay;
the rules are those of ``torch.optim`` (single-tensor implementation) with the
scalar hyperparameters replaced by per-member tensors broadcast over the
member axis:

- SGD: L2 decay added to the gradient, momentum buffer created as a copy of the
  gradient at the first step with non-zero momentum, no dampening, no Nesterov.
- Adam: L2 decay added to the gradient, ``beta2 = 0.999``, ``eps = 1e-8``, bias
  correction from each member's own step count.
- AdamW: decoupled decay ``w *= 1 - lr * weight_decay`` before the update.

Step-dependent scalars (bias corrections) are computed on the host in float64
for a whole interval at once, like torch computes them in Python floats, and
uploaded as one small table, so a step never syncs with the device.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hpenv.hyperparams import OptimizerName

ADAM_BETA2 = 0.999
ADAM_EPS = 1e-8

Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True)
class MemberHParams:
    """Per-member optimizer hyperparameters (float64 arrays of length N)."""

    lr: np.ndarray
    momentum: np.ndarray
    weight_decay: np.ndarray


class StackedOptimizer:
    """One optimizer kind for N members whose parameters are stacked along dim 0.

    Args:
        kind: ``"sgd"``, ``"adam"`` or ``"adamw"``.
        params: Name to stacked parameter (updated in place by `step`).
    """

    def __init__(self, kind: OptimizerName, params: Tensors) -> None:
        self.kind = kind
        first = next(iter(params.values()))
        self.size = first.shape[0]
        self.device = first.device
        groups = ("buf",) if kind == "sgd" else ("exp_avg", "exp_avg_sq")
        self.state = {g: {k: torch.zeros_like(v) for k, v in params.items()} for g in groups}
        #: Members whose SGD momentum buffer exists (torch creates it lazily).
        self.has_buf = np.zeros(self.size, dtype=bool)
        #: Optimizer steps taken by each member (Adam's bias-correction count).
        self.step_count = np.zeros(self.size, dtype=np.int64)
        self._plan: dict[str, torch.Tensor] = {}
        self._buffers: Tensors = {}
        self._use_buf = np.zeros(self.size, dtype=bool)
        self._active = np.zeros(self.size, dtype=bool)
        self._steps_planned = 0

    # ------------------------------------------------------------------ state

    def reset_member(self, index: int) -> None:
        """Fresh optimizer state for member ``index`` (as a new ``torch.optim`` optimizer)."""
        for group in self.state.values():
            for tensor in group.values():
                tensor[index].zero_()
        self.has_buf[index] = False
        self.step_count[index] = 0

    def grow(self, params: Tensors) -> None:
        """Add a last member, with fresh state, to match ``params`` (grown by one row)."""
        if next(iter(params.values())).shape[0] != self.size + 1:
            raise ValueError("grow: the parameters must have grown by one member first")
        for group in self.state.values():
            for name, tensor in group.items():
                group[name] = torch.cat([tensor, torch.zeros_like(tensor[:1])])
        self.has_buf = np.append(self.has_buf, False)
        self.step_count = np.append(self.step_count, 0)
        self._use_buf = np.append(self._use_buf, False)
        self._active = np.append(self._active, False)
        self.size += 1
        self._plan, self._buffers = {}, {}

    def snapshot(self, index: Sequence[int]) -> dict[str, Tensors]:
        """Copies of the state of members ``index`` (to restore frozen members)."""
        idx = torch.as_tensor(list(index), device=self.device)
        return {g: {k: v[idx].clone() for k, v in t.items()} for g, t in self.state.items()}

    def restore(self, index: Sequence[int], saved: dict[str, Tensors]) -> None:
        """Write back a `snapshot` of members ``index``."""
        idx = torch.as_tensor(list(index), device=self.device)
        for group, tensors in saved.items():
            for name, value in tensors.items():
                self.state[group][name].index_copy_(0, idx, value)

    def subset(self, index: Sequence[int]) -> StackedOptimizer:
        """A copy of the state of members ``index``, as an optimizer of its own."""
        other = copy.copy(self)
        other.state = self.snapshot(index)
        other.has_buf = self.has_buf[list(index)].copy()
        other.step_count = self.step_count[list(index)].copy()
        other.size = len(index)
        other._plan, other._buffers = {}, {}
        return other

    def absorb(self, index: Sequence[int], other: StackedOptimizer) -> None:
        """Take back the state of members ``index`` from their `subset`."""
        self.restore(index, other.state)
        self.has_buf[list(index)] = other.has_buf
        self.step_count[list(index)] = other.step_count

    # --------------------------------------------------------------- stepping

    def plan(self, hp: MemberHParams, steps: int, active: np.ndarray) -> None:
        """Prepare the next ``steps`` steps of the members marked ``active``.

        Frozen (inactive) members are stepped too (their slices are restored by
        the caller); their step counts do not advance.
        """
        device = self.device
        self._steps_planned = steps

        def column(values: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(values, dtype=torch.float32).to(device)

        plan: dict[str, torch.Tensor] = {}
        lr, mom, wd = hp.lr, hp.momentum, hp.weight_decay
        plan["neg_lr"] = column(-lr)
        if wd.any():
            plan["wd"] = column(wd)
        if self.kind == "sgd":
            self._use_buf = mom != 0
            plan["momentum"] = column(mom)
            plan["use_buf"] = torch.as_tensor(self._use_buf).to(device)
            plan["has_buf"] = torch.as_tensor(self.has_buf).to(device)
        else:
            if self.kind == "adamw" and wd.any():
                plan["decay"] = column(1 - lr * wd)
            plan["one_minus_beta1"] = column(1 - mom)
            t = (self.step_count[None, :] + np.arange(1, steps + 1)[:, None]).astype(np.float64)
            bias1 = 1 - mom[None, :] ** t
            bias2_sqrt = (1 - ADAM_BETA2**t) ** 0.5
            table = np.stack([-(lr[None, :] / bias1), bias2_sqrt])  # (2, steps, N)
            plan["table"] = torch.as_tensor(table, dtype=torch.float32).to(device)
        self._plan = plan
        self._active = active

    def step(self, params: Tensors, grads: Tensors, index: int) -> None:
        """Apply step ``index`` (0-based, of the planned steps) to ``params`` in place.

        ``grads`` are consumed: their buffers are reused as scratch space.
        """
        if index >= self._steps_planned:
            raise RuntimeError("StackedOptimizer.step beyond the planned steps")
        if self.kind == "sgd":
            self._sgd(params, grads, first=index == 0)
        else:
            self._adam(params, grads, index)
        if index == self._steps_planned - 1:
            self.step_count += self._active * self._steps_planned
            if self.kind == "sgd":
                self.has_buf |= self._active & self._use_buf

    def _sgd(self, params: Tensors, grads: Tensors, first: bool) -> None:
        plan, bufs = self._plan, self.state["buf"]
        use = self._use_buf
        # torch.optim.SGD starts a buffer at the gradient on its first momentum step.
        fresh = first and not self.has_buf[use].all()
        for name, param in params.items():
            grad = grads[name]
            if "wd" in plan:
                grad.addcmul_(param, _bcast(plan["wd"], param))
            if not use.any():
                update = grad
            elif use.all() and not fresh:
                update = bufs[name].mul_(_bcast(plan["momentum"], param)).add_(grad)
            else:
                buf = bufs[name]
                new = buf.mul(_bcast(plan["momentum"], param)).add_(grad)
                if fresh:
                    new = torch.where(_bcast(plan["has_buf"], param), new, grad)
                if not use.all():  # members without momentum keep their buffer
                    use_t = _bcast(plan["use_buf"], param)
                    new = torch.where(use_t, new, buf)
                    update = torch.where(use_t, new, grad)
                else:
                    update = new
                bufs[name] = new
            param.addcmul_(update, _bcast(plan["neg_lr"], param))

    def _adam(self, params: Tensors, grads: Tensors, index: int) -> None:
        plan = self._plan
        exp_avgs, exp_avg_sqs = self.state["exp_avg"], self.state["exp_avg_sq"]
        neg_step, bias2_sqrt = plan["table"][0, index], plan["table"][1, index]
        for name, param in params.items():
            grad = grads[name]
            if "decay" in plan:
                param.mul_(_bcast(plan["decay"], param))
            elif "wd" in plan and self.kind == "adam":
                grad.addcmul_(param, _bcast(plan["wd"], param))
            exp_avg, exp_avg_sq = exp_avgs[name], exp_avg_sqs[name]
            exp_avg.lerp_(grad, _bcast(plan["one_minus_beta1"], param))
            exp_avg_sq.mul_(ADAM_BETA2).addcmul_(grad, grad, value=1 - ADAM_BETA2)
            denom = self._scratch(name, param)
            torch.sqrt(exp_avg_sq, out=denom).div_(_bcast(bias2_sqrt, param)).add_(ADAM_EPS)
            # param += (-step_size * exp_avg) / denom, as addcdiv_; the gradient's
            # buffer is free now and holds the update (no allocation per step).
            torch.mul(exp_avg, _bcast(neg_step, param), out=grad).div_(denom)
            param.add_(grad)

    def _scratch(self, name: str, like: torch.Tensor) -> torch.Tensor:
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != like.shape:
            buffer = self._buffers[name] = torch.empty_like(like)
        return buffer


def _bcast(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-member ``values`` (N,) shaped to broadcast over ``like`` (N, ...)."""
    return values.view(-1, *([1] * (like.dim() - 1)))
