"""`HyperController`: a frozen policy driving any PyTorch training loop.

The controller attaches to a ``torch.optim.Optimizer`` through its step hooks:
before each optimizer step it reads the gradient norm (every few steps, on the
device) and, at the end of an interval, snapshots the weights; after each step
it counts, and at every decision point it builds the observation with the same
`hpenv.observation.FeatureTracker` the environment uses, asks the policy
(`agents.policy.step.PolicyStep`, shared with the evaluation harness), and
writes the new learning rate, momentum and weight decay into every parameter
group (keeping the groups' ratios to the first group).

The decision schedule mirrors `hpenv.env.HPTuneEnv`: the budget is split into
``decisions + 1`` intervals, a warm-up interval runs at the starting
hyperparameters, then one decision per interval.

Example (plain PyTorch)::

    controller = HyperController.from_file("policy.pt", optimizer, total_steps=10_000,
                                           evaluate=lambda: validate(model))
    for inputs, targets in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        controller.report_loss(loss)   # a device tensor: no host sync per step
        optimizer.step()               # decisions happen inside the step hook

NaN or infinite losses (or validation losses) mark the run as diverged: from
then on the controller keeps the last finite hyperparameters, changes nothing,
and says so once with a warning; it never writes NaN into the optimizer.

A policy deployed with a restart (`FrozenPolicy.with_restart`, `hpenv.restart`; the
default ``hpenv-lr-v2.1`` is) takes a copy of the weights (through the optimizer's groups;
``model=``'s buffers too) and of the optimizer state when it is attached (before any
probe); if the first interval blows the validation loss up, they are put back, the rate
divided by 10, and the policy starts its episode again (one warning each time). With the
rollback (``--restart rollback`` or ``collapse``) each new best validation loss replaces that
copy with one of the run's state then, and a later interval that blows up or collapses puts
it back at a tenth of the rate. The copy lives in host memory (`SNAPSHOT_DEVICE`): one at a
time, 3x the weights with Adam, 2x with SGD and momentum, none of it on the GPU. The HF and
Lightning callbacks get it through the controller.

If ``evaluate`` raises at a decision point, that decision is skipped with a
warning (the hyperparameters stay as they are) and the schedule goes on: the
next decision comes one interval later. Metrics that cannot be right (an
accuracy outside [0, 1] or NaN, a negative loss) raise `InvalidMetricsError`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.deploy.decision_log import DecisionLog
from agents.policy.artifact import FrozenPolicy, IncompatiblePolicyError, load_policy
from agents.policy.hub import load_pretrained
from agents.policy.step import PolicyStep
from agents.warn import warn
from hpenv.base import BaseConfig, BaseSchedule, rate_after_probe
from hpenv.hyperparams import HParams, OptimizerName
from hpenv.observation import IntervalMetrics
from hpenv.plan import split_budget
from hpenv.probe import (
    OptimizerProbe,
    ProbeConfig,
    ProbeResult,
    optimizer_snapshot,
    restore_snapshot,
)
from hpenv.restart import Restarts
from hpenv.training import global_norm

#: Batch size assumed when neither given nor inferable (TrainingRun's default).
ASSUMED_BATCH_SIZE = 128
#: Hyperparameters an optimizer's parameter groups can carry.
SERVABLE = ("lr", "momentum", "weight_decay")
#: Where the restart's and the rollback's copy of the run's state lives: host memory, so
#: a GPU run spends none of its memory on it (`hpenv.probe.optimizer_snapshot`).
SNAPSHOT_DEVICE = "cpu"

Evaluate = Callable[[], "tuple[float, float] | dict[str, float]"]


class InvalidMetricsError(ValueError):
    """Validation metrics the controller cannot use (accuracy outside [0, 1], negative loss)."""


def check_metrics(val_loss: float, val_accuracy: float) -> tuple[float, float]:
    """Validate one evaluation's ``(val_loss, val_accuracy)``; returns them.

    A NaN or infinite loss is allowed (it marks the run as diverged); the
    accuracy must be a fraction in [0, 1].

    Raises:
        InvalidMetricsError: With what is wrong.
    """
    if not 0.0 <= val_accuracy <= 1.0:  # also refuses NaN
        hint = " (a percentage? give a fraction)" if 1.0 < val_accuracy <= 100.0 else ""
        raise InvalidMetricsError(
            f"val_accuracy must be a fraction in [0, 1], got {val_accuracy!r}{hint}"
        )
    if val_loss < 0:
        raise InvalidMetricsError(f"val_loss must be >= 0 (a loss), got {val_loss!r}")
    return val_loss, val_accuracy


def check_servable(policy: FrozenPolicy, where: str = "a HyperController") -> None:
    """Refuse a policy that tunes what an optimizer's parameter groups cannot carry.

    A controller (and so the HF Trainer and Lightning callbacks) can only write
    ``lr``, ``momentum`` and ``weight_decay``: the batch size belongs to the data
    loader and dropout to the model, both owned by the training loop.

    Raises:
        IncompatiblePolicyError: Naming what the policy tunes and what to use instead.
    """
    unsupported = [n for n in policy.metadata.tuned if n not in SERVABLE]
    if unsupported:
        raise IncompatiblePolicyError(
            f"this policy tunes {unsupported}, which an optimizer cannot apply: {where} "
            f"changes only what an optimizer's parameter groups carry ({', '.join(SERVABLE)}). "
            "Drive a TrainingRun job with it instead (scripts/run_policy.py, "
            "agents.deploy.drive.drive_task, which apply batch-size and dropout decisions); "
            "where a framework owns the data loader (HF Trainer, Lightning) the batch size "
            "cannot be changed, so use a policy that tunes only these (e.g. hpenv-lr-v2.1)"
        )


def _probe_config(
    probe: ProbeConfig | bool | None, needs_probe: bool, default: ProbeConfig | None
) -> ProbeConfig | None:
    """The controller's probe settings from its ``probe`` argument (see `HyperController`;
    ``True``: ``default``, the policy's own probe). ``needs_probe``: the policy's runs
    probe (layout 2, or a layout-1 policy with a probe start).

    Raises:
        ValueError: A probe for a layout-1 policy without a probe start, which could not
            use it.
    """
    if probe is None:
        probe = needs_probe
    if probe is False:
        return None
    if not needs_probe:
        raise ValueError(
            "this policy reads observation layout 1, which has no probe features: it would "
            "ignore the probe (leave probe=None; to start the run at the probe's rate, "
            "attach policy.with_probe_start(True))"
        )
    return (default or ProbeConfig()) if probe is True else probe


class HyperController:
    """Drive an optimizer's hyperparameters with a frozen policy.

    Args:
        policy: A loaded `FrozenPolicy`.
        optimizer: Any ``torch.optim.Optimizer`` (SGD-style ``momentum`` or
            Adam-style ``betas``; ``weight_decay`` in its groups).
        total_steps: Optimizer steps in the whole run (sets progress and the
            decision points).
        decisions: Decisions over the run; default: what the policy was trained with.
        evaluate: Callable returning ``(val_loss, val_accuracy)`` (or a dict with
            those keys), called at attach time and at every decision point. If
            None, call `report_validation` before each decision instead.
        batch_size: The loop's batch size (an observation feature; not changed).
            Default: inferred from the first per-sample loss tensor given to
            `report_loss`; if that never comes, 128 is assumed with one warning.
        dropout: The model's dropout (an observation feature; not changed).
        log_dir: TensorBoard directory for the hyperparameter trajectory and metrics.
        stats_every: Measure the gradient norm every this many steps (and on the
            last step of each interval), as `hpenv.training.TrainingRun` does.
        probe: The probe before the first decision (`hpenv.probe`): a
            `ProbeConfig` (e.g. a narrower window for fine-tuning), True (the
            defaults), False (none) or None (the default: a layout-2 policy probes,
            and a layout-1 policy with a probe start, `FrozenPolicy.with_probe_start`,
            which then starts at the probe's rate; other layout-1 policies do not).
            The probe's steps are the loop's first
            `probe_steps` steps, counted in ``total_steps``; the rate is swept over
            them (the groups keep their ratios to the first), then the weights
            (reached through the optimizer's groups) and the optimizer state roll
            back; the loop's data order goes on. Without a probe a layout-2 policy
            steers around a base anchored at the loop's own starting rate.
        model: The model, whose buffers (BatchNorm statistics) roll back with the
            weights after the probe (and a restart).
        base: How a layout-2 policy's base is read off the probe (`hpenv.base`).

    Raises:
        IncompatiblePolicyError: The policy tunes batch size or dropout (an
            optimizer cannot apply them; see `check_servable`).
        ValueError: Bad budget or decisions.
    """

    def __init__(
        self,
        policy: FrozenPolicy,
        optimizer: torch.optim.Optimizer,
        *,
        total_steps: int,
        decisions: int | None = None,
        evaluate: Evaluate | None = None,
        batch_size: int | None = None,
        dropout: float = 0.0,
        log_dir: str | os.PathLike[str] | None = None,
        stats_every: int = 4,
        probe: ProbeConfig | bool | None = None,
        model: torch.nn.Module | None = None,
        base: BaseConfig | None = None,
    ) -> None:
        check_servable(policy)
        if decisions is None:
            decisions = policy.metadata.decisions
        if isinstance(decisions, bool) or not isinstance(decisions, int) or decisions < 1:
            raise ValueError(
                f"decisions must be an int >= 1 (or None: the policy's), got {decisions!r}"
            )
        if isinstance(total_steps, bool) or not isinstance(total_steps, int):
            raise ValueError(f"total_steps must be an int, got {total_steps!r}")
        if total_steps < decisions + 1:
            raise ValueError(f"total_steps ({total_steps}) must exceed decisions ({decisions})")
        if stats_every < 1:
            raise ValueError("stats_every must be >= 1")
        self.policy = policy
        self.optimizer = optimizer
        self.total_steps = total_steps
        self.decisions = decisions
        self.evaluate = evaluate
        self.stats_every = stats_every
        self.step_policy = PolicyStep(policy)
        #: Where a layout-1 policy's run starts after the probe (None: at the loop's rate).
        self.probe_start = policy.metadata.probe_start
        probes = self.step_policy.needs_probe or self.probe_start is not None
        config = _probe_config(probe, probes, policy.metadata.probe_config())
        #: Optimizer steps of the probe (0: none), the first of the loop.
        self.probe_steps = 0 if config is None else config.steps_for(total_steps)
        if config is not None and self.probe_steps == 0:
            what = "the base starts" if self.step_policy.needs_probe else "the run stays"
            warn(
                f"a run of {total_steps} steps is too short for the probe (at least "
                f"{4 * config.min_steps}); {what} at the loop's own rate"
            )
        # the plan HPTuneEnv uses: the probe, then decisions + 1 intervals over the rest
        self.interval = split_budget(total_steps - self.probe_steps, decisions)
        self.base_config = base or policy.metadata.base_config() or BaseConfig()
        #: The base schedule a layout-2 policy steers around (set once the probe is done).
        self.base: BaseSchedule | None = None
        self.probe_result: ProbeResult | None = None
        self._probe: OptimizerProbe | None = None
        if config is not None and self.probe_steps:
            self._probe = OptimizerProbe(optimizer, config, self.probe_steps, model=model)
        self.steps = 0
        self.diverged = False
        self._model = model
        #: A policy deployed with a restart (`hpenv.restart`): the first interval that blew
        #: up goes back to the weights and optimizer state it began with, lower.
        restart = policy.metadata.restart
        self.restarts = None if restart is None else Restarts(restart)
        self._restart_state: dict[str, Any] | None = None
        if self.restarts is not None:  # the weights as attached: before any probe
            self._restart_state = optimizer_snapshot(optimizer, model, device=SNAPSHOT_DEVICE)
        #: With the restart's rollback: the state at the run's best validation loss so far.
        self._best_state: dict[str, Any] | None = None
        self._ratios = self._group_ratios()
        self._batch_size_known = batch_size is not None
        self.hparams = self._read_hparams(batch_size or ASSUMED_BATCH_SIZE, dropout)
        self._interval_start = 0
        self._losses: list[torch.Tensor] = []
        self._grad_sum: torch.Tensor | None = None
        self._grad_count = 0
        self._before: list[torch.Tensor] = []
        self._validation: tuple[float, float] | None = None
        self._decisions = DecisionLog(log_dir)
        self._params = [p for g in optimizer.param_groups for p in g["params"]]
        self._hooks = [
            optimizer.register_step_pre_hook(self._pre_step),
            optimizer.register_step_post_hook(self._post_step),
        ]
        self._started = False
        self._initial: tuple[float, float] | None = None
        self._closure_step = False
        self._interval_start = self.probe_steps
        if self._probe is None and self.step_policy.needs_probe:
            self._set_base()
        if evaluate is not None:
            self._start(*self._call_evaluate())

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], optimizer: torch.optim.Optimizer, **kwargs: Any
    ) -> HyperController:
        """Load a policy artifact file (`agents.policy.load_policy`) and attach it."""
        return cls(load_policy(Path(path)), optimizer, **kwargs)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str] | None,
        optimizer: torch.optim.Optimizer,
        **kwargs: Any,
    ) -> HyperController:
        """Load a policy by file, folder, shipped name or Hub repo id and attach it.

        Args:
            name_or_path: See `agents.policy.hub` (None: the shipped default policy).
            optimizer: The optimizer to drive.
            **kwargs: The other arguments of `HyperController`.
        """
        return cls(load_pretrained(name_or_path), optimizer, **kwargs)

    # ------------------------------------------------------------------ reporting

    def report_loss(self, loss: torch.Tensor | float) -> None:
        """Record this step's training loss (a tensor stays on its device: no host sync).

        Args:
            loss: The batch's mean loss (a scalar tensor or a Python or NumPy number), or the
                per-sample losses of the batch (a 1-D tensor, averaged here).

        Raises:
            TypeError: ``loss`` is not a tensor or a real number.
            ValueError: A tensor of more than one dimension, or an empty one.
        """
        if isinstance(loss, torch.Tensor):
            value = loss.detach().float()
            if value.ndim > 1 or value.numel() == 0:
                raise ValueError(
                    "report_loss takes the batch's loss: a scalar or a 1-D tensor of per-sample "
                    f"losses; got a tensor of shape {tuple(loss.shape)}"
                )
            if value.ndim == 1:
                if not self._batch_size_known:  # per-sample losses: their count is the batch
                    self.hparams = self.hparams.replace(batch_size=value.numel())
                    self._batch_size_known = True
                    self._decisions.release(batch_size=value.numel())  # the start entry
                value = value.mean()
        elif isinstance(loss, int | float | np.integer | np.floating) and not isinstance(
            loss, bool
        ):
            value = torch.tensor(float(loss))  # a Python or NumPy number
        else:
            raise TypeError(
                f"report_loss takes the batch's loss as a tensor or a number, got {type(loss)!r}"
            )
        if self.probing:
            assert self._probe is not None
            self._probe.report_loss(value)
            return
        self._losses.append(value.reshape(()))

    @property
    def probing(self) -> bool:
        """The probe is still sweeping the rate."""
        return self._probe is not None and not self._probe.done

    def report_validation(self, val_loss: float, val_accuracy: float) -> None:
        """Validation metrics for the coming decision (when no ``evaluate`` was given).

        The first call, before training, gives the untrained model's metrics.

        Raises:
            InvalidMetricsError: ``val_accuracy`` outside [0, 1] (or NaN), or a negative loss.
        """
        metrics = check_metrics(float(val_loss), float(val_accuracy))
        if self._initial is None:
            self._start(*metrics)
        else:
            self._validation = metrics

    def detach(self) -> None:
        """Remove the optimizer hooks (the optimizer keeps its current values)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        self._decisions.flush()

    # ---------------------------------------------------------------- optimizer hooks

    def _pre_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self.probing:
            return  # the probe's steps are not an interval's
        if self._probe is not None:
            self._probe.release()  # its last hook, a no-op since the probe ended
        # With ``step(closure)`` (LBFGS, Lightning) the closure computes this step's
        # gradients inside step(), after this hook: measure them in the post-step hook.
        self._closure_step = kwargs.get("closure", args[0] if args else None) is not None
        if not self._closure_step:
            self._measure_grad()
        if self.steps + 1 == self._next_decision():
            self._before = [p.detach().clone() for p in self._params]

    def _post_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self._probe is not None and self.probe_result is None:
            self.steps += 1
            if self._probe.done:  # its hook rolled back after this step: the base starts
                result = self._probe.result  # (its hook cannot be removed inside the step)
                assert result is not None
                self.probe_result = result
                self._set_base()
                self._decisions.probe(result)
                if self._initial is not None:
                    self._start(*self._initial)
            return
        if self._closure_step:
            self._measure_grad()
        self.steps += 1
        if self.steps == self._next_decision() and self.steps < self.total_steps:
            self.decide()

    def _measure_grad(self) -> None:
        in_interval = self.steps - self._interval_start
        if self.steps + 1 == self._next_decision() or in_interval % self.stats_every == 0:
            grads = [p.grad for p in self._params if p.grad is not None]
            if grads:
                norm = global_norm(grads)
                self._grad_sum = norm if self._grad_sum is None else self._grad_sum + norm
                self._grad_count += 1

    def _next_decision(self) -> int:
        return self._interval_start + self.interval

    # --------------------------------------------------------------------- decisions

    def decide(self) -> HParams:
        """End the current interval: observe, ask the policy, apply. Returns the hyperparameters.

        The interval ends whatever happens, so the schedule always goes on. If
        ``evaluate`` raises, the decision is skipped with one warning (the
        hyperparameters stay) and the next decision comes at the next interval
        boundary. Invalid metrics (an accuracy outside [0, 1], a negative loss)
        raise ``ValueError`` after the interval has ended.
        """
        if not self._started:
            raise RuntimeError(
                "the controller has no initial validation metrics: pass evaluate= or call "
                "report_validation() before training"
            )
        if not self._batch_size_known:
            self._batch_size_known = True  # warn once
            warn(
                f"the controller does not know the batch size and assumes {ASSUMED_BATCH_SIZE} "
                "(a policy feature): pass batch_size= or report per-sample losses "
                "(report_loss(loss_fn(outputs, targets, reduction='none')))",
            )
            self._decisions.release()  # the start entry, at the assumed batch size
        try:
            metrics = self._interval_metrics()
        finally:
            self._interval_start = self.steps
        if metrics is None:
            return self.hparams
        self.hparams = self.step_policy.decide(metrics)
        self._write_hparams(self.hparams)
        self._log(metrics, **self.step_policy.log_values())
        restarts, initial = self.restarts, self._initial
        if (
            restarts is not None
            and initial is not None
            and restarts.new_best(metrics.val_loss, metrics.hparams.lr, initial[0])
        ):
            # a snapshot is the weights and the optimizer state (Adam: 3x the weights), in
            # host memory: free the old copy before the new one is taken, so two never sit
            # side by side
            self._best_state = None
            self._best_state = optimizer_snapshot(
                self.optimizer, self._model, device=SNAPSHOT_DEVICE
            )
        return self.hparams

    def _interval_metrics(self) -> IntervalMetrics | None:
        losses, self._losses = self._losses, []
        grad_sum, grad_count = self._grad_sum, self._grad_count
        self._grad_sum, self._grad_count = None, 0
        before, self._before = self._before, []
        if self.diverged:
            return None
        if not losses:
            raise RuntimeError(
                "no training loss was reported this interval: call report_loss(loss)"
            )
        stacked = torch.stack([loss.to(losses[0].device) for loss in losses])
        device = stacked.device
        values = [stacked.mean(), stacked.std(correction=0) if len(losses) > 1 else stacked[0] * 0]
        values.append(grad_sum.to(device) / grad_count if grad_sum is not None else stacked[0] * 0)
        if before:
            params = [p.detach() for p in self._params]
            delta = torch._foreach_sub(params, before)
            values += [global_norm(list(delta)).to(device), global_norm(before).to(device)]
        mean, spread, grad, *update = torch.stack(values).tolist()  # one host sync
        if self.evaluate is None:
            val_loss, val_accuracy = self._take_validation()
        else:
            try:
                val_loss, val_accuracy = self._call_evaluate()
            except InvalidMetricsError:
                raise
            except Exception as exc:
                warn(
                    f"evaluate() raised {type(exc).__name__}: {exc}; the decision at step "
                    f"{self.steps} is skipped (hyperparameters unchanged) and the next one comes "
                    f"at step {self.steps + self.interval}",
                )
                return None
        if self._restarted(mean, val_loss) or self._rolled_back(mean, val_loss):
            return None
        if not (math.isfinite(mean) and math.isfinite(val_loss)):
            self._mark_diverged(mean, val_loss)
            return None
        ratio = update[0] / update[1] if update and update[1] > 0 else math.nan
        base_lr = None
        if self.base is not None and self.step_policy.needs_probe:
            base_lr = self.base.lr(self.steps / self.total_steps)
        return IntervalMetrics(
            base_lr=base_lr,
            progress=self.steps / self.total_steps,
            train_loss=mean,
            train_loss_std=spread,
            grad_norm=grad,
            update_ratio=ratio,
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            hparams=self.hparams,
        )

    def _restarted(self, train_loss: float, val_loss: float) -> bool:
        """Whether the interval just ended blew up and the run went back to where it began
        (`hpenv.restart`: weights, optimizer state, ``model``'s buffers, as attached: before
        any probe), at a lower rate; the policy's episode starts again from the untrained
        scores."""
        if self.restarts is None or self._restart_state is None or self._initial is None:
            return False
        diverged = not (math.isfinite(train_loss) and math.isfinite(val_loss))
        restart = self.restarts.after_interval(val_loss, self._initial[0], diverged, train_loss)
        state = self._restart_state
        if self.restarts.over:
            self._restart_state = None  # no restart can come any more
        if not restart:
            return False
        lr = self.restarts.lr(self.hparams.lr)
        self._put_back(state, lr, val_loss, restarts=float(self.restarts.count))
        self.step_policy.start(
            *self._initial, self.hparams, probe=self.probe_result, base=self.base
        )
        warn(self.restarts.message(val_loss, self._initial[0], self.hparams.lr))
        return True

    def _rolled_back(self, train_loss: float, val_loss: float) -> bool:
        """Whether an interval after the first blew up (or collapsed) and the run went back to
        its best state (`hpenv.restart`'s rollback: weights, optimizer state, ``model``'s
        buffers) at a lower rate; the policy's episode goes on."""
        restarts, state, initial = self.restarts, self._best_state, self._initial
        if restarts is None or state is None or initial is None:
            return False
        diverged = not (math.isfinite(train_loss) and math.isfinite(val_loss))
        loss = math.nan if diverged else val_loss
        if not restarts.after_later_interval(loss, initial[0], diverged, train_loss):
            return False
        self._put_back(state, restarts.rollback_lr(), loss, rollbacks=float(restarts.rollbacks))
        warn(restarts.rollback_message(loss, initial[0], self.hparams.lr))
        return True

    def _put_back(self, state: dict[str, Any], lr: float, loss: float, **record: float) -> None:
        """A restart's or a rollback's move: ``state`` back (`hpenv.probe.restore_snapshot`),
        the rate set to ``lr``, the decision log told (``record``)."""
        restore_snapshot(self.optimizer, state, self._model)
        self.hparams = self.hparams.replace(lr=lr)
        self._write_hparams(self.hparams)
        self._log(None, val_loss=loss, **record)

    def _mark_diverged(self, train_loss: float, val_loss: float) -> None:
        self.diverged = True
        self.step_policy.mark_diverged()
        warn(
            f"training diverged at step {self.steps} (train loss {train_loss}, val loss "
            f"{val_loss}); the controller keeps the last finite hyperparameters "
            f"({self.hparams.to_dict()}) and makes no further changes",
        )

    def _set_base(self) -> None:
        """The base schedule (from the probe, or the loop's rate without one); the rate now:
        the base's (layout 2) or the probe start's (`hpenv.base.ProbeStart`, layout 1)."""
        p0 = self.probe_steps / self.total_steps
        self.base = self.base_config.schedule(
            self.probe_result, self.hparams.lr, p0, self.total_steps
        )
        base = self.base if self.step_policy.needs_probe else None
        lr = rate_after_probe(self.probe_result, self.hparams.lr, base, self.probe_start)
        if lr is None:
            return
        restarts, probed = self.restarts, self.probe_result is not None
        if restarts is not None and probed and restarts.after_probe(self.hparams.lr, lr):
            self._restart_state = None  # the probe set the rate: no restart (hpenv.restart)
        self.hparams = self.hparams.replace(lr=lr)
        self._write_hparams(self.hparams)

    def _start(self, val_loss: float, val_accuracy: float) -> None:
        self._initial = (val_loss, val_accuracy)
        if self.probing:
            return  # a layout-2 policy starts once the probe has found its base
        self.step_policy.start(
            val_loss, val_accuracy, self.hparams, probe=self.probe_result, base=self.base
        )
        self._started = True
        # Until the batch size is known (from the first per-sample losses), the start
        # entry stays out of TensorBoard; `report_loss` corrects and writes it.
        if not self._batch_size_known:
            self._decisions.hold_next()
        self._log(None, val_loss=val_loss, val_accuracy=val_accuracy)

    def _take_validation(self) -> tuple[float, float]:
        if self._validation is None:
            raise RuntimeError(
                f"decision at step {self.steps} needs validation metrics: call "
                "report_validation(val_loss, val_accuracy) before it, or pass evaluate="
            )
        value, self._validation = self._validation, None
        return value

    def _call_evaluate(self) -> tuple[float, float]:
        assert self.evaluate is not None
        result = self.evaluate()
        try:
            if isinstance(result, dict):
                loss, accuracy = result["val_loss"], result["val_accuracy"]
            else:
                loss, accuracy = result
            return check_metrics(float(loss), float(accuracy))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidMetricsError):
                raise
            raise InvalidMetricsError(
                "evaluate() must return (val_loss, val_accuracy) or a dict with those keys, "
                f"as numbers; got {result!r}"
            ) from None

    # ---------------------------------------------------------------- optimizer I/O

    def _group_ratios(self) -> list[dict[str, float]]:
        groups = self.optimizer.param_groups
        base = groups[0]
        ratios = []
        for group in groups:
            ratios.append(
                {
                    "lr": group["lr"] / base["lr"] if base["lr"] else 1.0,
                    "weight_decay": (
                        group.get("weight_decay", 0.0) / base["weight_decay"]
                        if base.get("weight_decay")
                        else 1.0
                    ),
                }
            )
        return ratios

    def _read_hparams(self, batch_size: int, dropout: float) -> HParams:
        group = self.optimizer.param_groups[0]
        momentum = group["betas"][0] if "betas" in group else group.get("momentum", 0.0)
        kind: OptimizerName = "sgd" if isinstance(self.optimizer, torch.optim.SGD) else "adam"
        if isinstance(self.optimizer, torch.optim.AdamW):
            kind = "adamw"
        return HParams(
            optimizer=kind,
            lr=float(group["lr"]),
            momentum=float(min(momentum, 0.999)),
            weight_decay=float(group.get("weight_decay", 0.0)),
            batch_size=batch_size,
            dropout=dropout,
        )

    def _write_hparams(self, hparams: HParams) -> None:
        tuned = self.policy.metadata.tuned
        for group, ratio in zip(self.optimizer.param_groups, self._ratios, strict=True):
            if "lr" in tuned:
                group["lr"] = hparams.lr * ratio["lr"]
            if "weight_decay" in tuned and "weight_decay" in group:
                group["weight_decay"] = hparams.weight_decay * ratio["weight_decay"]
            if "momentum" in tuned:
                if "betas" in group:
                    group["betas"] = (hparams.momentum, *tuple(group["betas"])[1:])
                elif "momentum" in group:
                    group["momentum"] = hparams.momentum

    # ------------------------------------------------------------------- logging

    @property
    def history(self) -> list[dict[str, Any]]:
        """The start entry, then one entry per decision: step, hyperparameters, metrics.

        The start entry holds the hyperparameters before training (its batch size
        is the loop's once known: given, or read from the first per-sample losses).
        """
        return self._decisions.history

    @property
    def decisions_made(self) -> int:
        """Decisions applied so far: the entries of `history` after the start entry."""
        return max(len(self.history) - 1, 0)

    def _log(self, metrics: IntervalMetrics | None, **extra: float) -> None:
        self._decisions.record(self.steps, self.hparams, metrics, **extra)

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue a resumed run identically, at any step.

        Save it with the model's and the optimizer's state (``torch.save``; it
        holds plain values and tensors only, so ``torch.load(..., weights_only=True)``
        reads it). Mid-interval it keeps the interval's losses and gradient-norm
        sum, a validation reported for the coming decision, and the weights
        snapshot of the update ratio, so the next decisions are those of the
        uninterrupted run.
        """
        if self.probing:
            raise RuntimeError(
                f"the probe is sweeping the rate (its {self.probe_steps} steps): save the "
                "controller's state after them"
            )
        grad_sum = None if self._grad_sum is None else self._grad_sum.detach().clone()
        base = None if self.base is None else dataclasses.asdict(self.base)
        probe = None if self.probe_result is None else self.probe_result.to_dict()
        return {
            "probe": probe,
            "base": base,
            "initial": None if self._initial is None else list(self._initial),
            "steps": self.steps,
            "interval_start": self._interval_start,
            "hparams": self.hparams.to_dict(),
            **self.step_policy.state_dict(),
            "diverged": self.diverged,
            "started": self._started,
            "batch_size_known": self._batch_size_known,
            "history": list(self.history),
            "losses": [float(loss) for loss in self._losses],
            "grad_sum": grad_sum,
            "grad_count": self._grad_count,
            "before": [p.clone() for p in self._before],
            "validation": None if self._validation is None else list(self._validation),
            "ratios": [dict(r) for r in self._ratios],
            "restarts": None if self.restarts is None else self.restarts.state_dict(),
            "restart_state": self._restart_state,
            "best_state": self._best_state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict` (the optimizer's own state is restored by the caller)."""
        device = self._params[0].device if self._params else torch.device("cpu")
        self.steps = state["steps"]
        self._interval_start = state["interval_start"]
        self.hparams = HParams(**state["hparams"])
        self.step_policy.load_state_dict(state)
        self.diverged = state["diverged"]
        self._started = state["started"]
        self._batch_size_known = state.get("batch_size_known", True)
        self._decisions.restore(state["history"])
        self._losses = [torch.tensor(v, device=device) for v in state["losses"]]
        grad_sum = state.get("grad_sum")
        self._grad_sum = None if grad_sum is None else grad_sum.to(device)
        self._grad_count = state.get("grad_count", 0)
        before = state.get("before") or []  # empty, or one tensor per parameter
        params = self._params if before else []
        self._before = [b.to(p.device) for b, p in zip(before, params, strict=True)]
        validation = state.get("validation")
        self._validation = None if validation is None else (validation[0], validation[1])
        if "ratios" in state:
            self._ratios = [dict(r) for r in state["ratios"]]
        probe, base, initial = state.get("probe"), state.get("base"), state.get("initial")
        self.probe_result = None if probe is None else ProbeResult.from_dict(probe)
        self.base = None if base is None else BaseSchedule(**base)
        self._initial = None if initial is None else (initial[0], initial[1])
        if self.restarts is not None and state.get("restarts") is not None:
            self.restarts.load_state_dict(state["restarts"])
            self._restart_state = state.get("restart_state")
            self._best_state = state.get("best_state")  # older states: none
        if self._probe is not None and (self.probe_result is not None or self.steps > 0):
            self._probe.cancel()  # a resumed run does not probe again
        self._write_hparams(self.hparams)
