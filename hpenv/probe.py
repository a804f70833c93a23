"""The probe: a learning-rate range test before a run's first decision, rolled back.

The rate is swept exponentially from ``lr_min`` to ``lr_max`` (the whole
tunable range, 1e-6 to 1, unless a user narrows the window), one optimizer step
per rate, on the run's own batches; each step's training loss is smoothed (an
exponential moving average with bias correction, as in Lightning's
``lr_find`` and fastai); the sweep stops when the smoothed loss exceeds
``diverge_factor`` times its minimum or a loss is not finite. Then the weights
and the optimizer state are rolled back, to the state right after the step of
the lowest smoothed loss (``rollback="best"``: the useful part of the sweep is
kept) or to the state before the sweep (``"start"``). The data order goes on:
the probe's batches are used up.

The probe's steps count against the run's budget: a run reserves
`ProbeConfig.steps_for` batches for it, whether the sweep used them all or
stopped early, so every run of a plan has the same intervals after it (and a
population's members stay in lock-step). Its cost, the reserved steps whose
updates were thrown away, is `ProbeResult.cost`.

This module is the only implementation: `Sweep` is the sweep's logic (which
rate, when to keep a snapshot, when to stop) and `ProbeResult` what it found;
`probe_run` drives a `hpenv.training.TrainingRun` with it, and the population
(`hpenv.population.Population.probe`), the deployed controller and the
framework callbacks drive the same `Sweep`.

Example:
    >>> import torch
    >>> from hpenv.training import TrainingRun
    >>> torch.set_num_threads(1)
    >>> run = TrainingRun("digits", seed=0, device="cpu")
    >>> result = probe_run(run, ProbeConfig(min_steps=12, max_steps=12), steps=12)
    >>> result.steps, run.samples_done == 12 * run.hparams.batch_size, run.diverged
    (12, True, False)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from hpenv.population import Population
    from hpenv.training import TrainingRun

Rollback = Literal["best", "start"]


@dataclass(frozen=True)
class ProbeConfig:
    """How a run's probe sweeps the learning rate.

    Attributes:
        lr_min / lr_max: The sweep's window (default: the whole tunable range).
        fraction: Steps of the probe as a fraction of the run's optimizer steps,
            clamped to [``min_steps``, ``max_steps``] (`steps_for`).
        min_steps / max_steps: Bounds of the probe's length.
        smoothing: Weight of the past in the loss's moving average (0: none).
        diverge_factor: The sweep stops once the smoothed loss exceeds this
            times its minimum (or a loss is not finite).
        rollback: ``"best"`` (the state after the step of the lowest smoothed
            loss) or ``"start"`` (the state before the sweep).
    """

    lr_min: float = 1e-6
    lr_max: float = 1.0
    fraction: float = 0.1
    min_steps: int = 20
    max_steps: int = 60
    smoothing: float = 0.9
    diverge_factor: float = 4.0
    rollback: Rollback = "best"

    def __post_init__(self) -> None:
        if not 0 < self.lr_min < self.lr_max:
            raise ValueError(
                f"the probe needs 0 < lr_min < lr_max, got {self.lr_min}, {self.lr_max}"
            )
        if not 0 < self.fraction < 1:
            raise ValueError(f"fraction must be in (0, 1), got {self.fraction}")
        if not 2 <= self.min_steps <= self.max_steps:
            raise ValueError(
                f"the probe needs 2 <= min_steps <= max_steps, got {self.min_steps}, "
                f"{self.max_steps}"
            )
        if not 0 <= self.smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {self.smoothing}")
        if not self.diverge_factor > 1:
            raise ValueError(f"diverge_factor must be > 1, got {self.diverge_factor}")
        if self.rollback not in ("best", "start"):
            raise ValueError(f"rollback must be 'best' or 'start', got {self.rollback!r}")

    def steps_for(self, budget_steps: int) -> int:
        """The probe's length in a run of ``budget_steps`` optimizer steps (0: too short).

        ``fraction`` of the run, clamped to [``min_steps``, ``max_steps``], and never
        more than a quarter of the run: a run of fewer than ``4 * min_steps`` steps
        has no probe.
        """
        if budget_steps < 4 * self.min_steps:
            return 0
        steps = round(self.fraction * budget_steps)
        return max(self.min_steps, min(self.max_steps, steps, budget_steps // 4))

    def samples_for(self, budget: int, batch_size: int) -> int:
        """Training samples a run of ``budget`` samples reserves for its probe at
        ``batch_size`` (`steps_for` its optimizer steps, whole batches; 0: no probe)."""
        return self.steps_for(budget // max(batch_size, 1)) * batch_size

    def lrs(self, steps: int) -> np.ndarray:
        """The sweep's ``steps`` learning rates, log-spaced from ``lr_min`` to ``lr_max``."""
        return np.geomspace(self.lr_min, self.lr_max, steps)


class Sweep:
    """One run's sweep, step by step: the rate to train at, what the loss says, when to stop.

    A driver asks `lr` for the next step's rate, trains one batch at it, and
    passes the batch's loss to `record`; `record` says whether the state just
    reached is the best so far (keep a copy of the weights and optimizer state
    now) and `done` when the sweep is over.

    Args:
        config: The probe's settings.
        steps: Steps reserved for the sweep (`ProbeConfig.steps_for`).
    """

    def __init__(self, config: ProbeConfig, steps: int) -> None:
        if steps < 2:
            raise ValueError(f"a sweep needs at least 2 steps, got {steps}")
        self.config = config
        self.steps = steps
        self.rates = config.lrs(steps)
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.best = -1
        self.stopped: int | None = None
        self._average = 0.0

    @property
    def done(self) -> bool:
        return self.stopped is not None or len(self.losses) >= self.steps

    def lr(self) -> float:
        """The learning rate of the next step."""
        if self.done:
            raise RuntimeError("the sweep is over")
        return float(self.rates[len(self.losses)])

    def record(self, loss: float) -> bool:
        """The training loss of the step just taken; True if its result is the best so far."""
        if self.done:
            raise RuntimeError("the sweep is over")
        k = len(self.losses)
        self.losses.append(float(loss))
        if not math.isfinite(loss):
            self.smoothed.append(math.nan)
            self.stopped = k
            return False
        beta = self.config.smoothing
        self._average = beta * self._average + (1 - beta) * loss
        smoothed = self._average / (1 - beta ** (k + 1))
        self.smoothed.append(smoothed)
        if self.best >= 0 and smoothed > self.config.diverge_factor * self.smoothed[self.best]:
            self.stopped = k
            return False
        if self.best < 0 or smoothed < self.smoothed[self.best]:
            self.best = k
            return True
        return False

    def result(self) -> ProbeResult:
        """What the sweep found (call when `done`, or to end it early)."""
        kept = self.best + 1 if self.config.rollback == "best" and self.best >= 0 else 0
        return ProbeResult(
            lrs=[float(r) for r in self.rates[: len(self.losses)]],
            losses=list(self.losses),
            smoothed=list(self.smoothed),
            best=self.best,
            stopped=self.stopped,
            steps=self.steps,
            kept=kept,
            lr_min=self.config.lr_min,
            lr_max=self.config.lr_max,
        )


#: Rates read off a probe: ``min/10``, ``min/30``, ``min/100`` (the lowest smoothed
#: loss's rate / 10, 30, 100), ``steepest`` (Lightning's steepest descent).
SuggestionRule = Literal["min/3", "min/10", "min/30", "min/100", "steepest"]
#: Every `SuggestionRule`.
SUGGESTION_RULES: tuple[str, ...] = ("min/3", "min/10", "min/30", "min/100", "steepest")
#: The reading used unless one is named (the base's, find_lr's): ``min/30``, chosen by
#: `scripts/choose_base.py` on training-side tasks only (digits, wine, breast cancer, the
#: synthetic family; Adam and SGD; docs/results.md section 7): the best mean accuracy and
#: regret of the probe's readings; ``min/10`` overshoots (a 2.7x worse mean val loss),
#: ``steepest`` diverges with SGD.
DEFAULT_RULE: SuggestionRule = "min/30"


@dataclass
class ProbeResult:
    """What a probe found (plain values: saved with a run's or a controller's state).

    Attributes:
        lrs: The rate of every step taken.
        losses: Every step's training loss (NaN where it was not finite).
        smoothed: The smoothed losses (NaN from a non-finite loss on).
        best: Index of the lowest smoothed loss (-1: no finite loss).
        stopped: Index of the step that stopped the sweep (None: it ran to ``lr_max``).
        steps: Steps reserved for the probe (counted against the budget).
        kept: Steps whose updates the rollback kept (``best + 1``, or 0).
        lr_min / lr_max: The sweep's window.
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    best: int
    stopped: int | None
    steps: int
    kept: int
    lr_min: float
    lr_max: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        """The curve has a minimum: at least one finite loss."""
        return self.best >= 0

    @property
    def thrown_away(self) -> int:
        """Reserved steps whose updates were rolled back or never trained."""
        return self.steps - self.kept

    def cost(self, budget_steps: int) -> float:
        """`thrown_away` as a fraction of a run of ``budget_steps`` optimizer steps."""
        return self.thrown_away / budget_steps if budget_steps > 0 else math.nan

    @property
    def best_lr(self) -> float:
        """The rate of the lowest smoothed loss (NaN when nothing was found)."""
        return self.lrs[self.best] if self.found else math.nan

    @property
    def divergence_lr(self) -> float:
        """The rate at which the sweep stopped (``lr_max`` when it never did)."""
        return self.lrs[self.stopped] if self.stopped is not None else self.lr_max

    def steepest(self) -> int:
        """Index of the steepest descent of the smoothed loss against ln(lr), before the
        minimum (Lightning's suggestion); -1 when the curve is too short."""
        end = self.best + 1
        if end < 3:
            return -1
        curve = np.asarray(self.smoothed[:end])
        slope = np.gradient(curve, np.log(np.asarray(self.lrs[:end])))
        return int(np.argmin(slope))

    def suggestion(self, rule: SuggestionRule = DEFAULT_RULE) -> float:
        """A fixed rate read off the curve by ``rule`` (NaN when the curve says nothing)."""
        if not self.found:
            return math.nan
        if rule == "steepest":
            index = self.steepest()
            return self.lrs[index] if index >= 0 else math.nan
        if rule not in SUGGESTION_RULES:
            raise ValueError(f"rule must be one of {SUGGESTION_RULES}, got {rule!r}")
        return max(self.best_lr / float(rule.removeprefix("min/")), self.lr_min)

    def doubt(self) -> str | None:
        """Why the curve suggests nothing useful (one sentence), or None when it does.

        No finite loss; a minimum in the sweep's first tenth (the rate was already
        too high at the window's bottom); or a minimum less than 2% below the
        starting loss (the curve is flat or noise: no rate made the loss fall).
        """
        if not self.found:
            return "the loss was never finite: the model or the data is broken"
        if self.best < max(1, len(self.lrs) // 10):
            return (
                "the loss was lowest at the bottom of the window: every rate in it was too high; "
                "lower lr_min"
            )
        start = next((v for v in self.smoothed if math.isfinite(v)), math.nan)
        if not self.smoothed[self.best] < 0.98 * start:
            return "the loss hardly fell at any rate: the curve is too flat or noisy to suggest one"
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ProbeResult:
        return cls(**values)

    def plot(self, path: str, suggest: SuggestionRule | None = DEFAULT_RULE) -> str:
        """Write the curve (smoothed loss against the rate, log x axis) as a PNG; its path."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(6, 4))
        axes.plot(self.lrs, self.losses, color="0.75", linewidth=1, label="batch loss")
        axes.plot(self.lrs, self.smoothed, color="C0", label="smoothed")
        axes.set_xscale("log")
        axes.set_xlabel("learning rate")
        axes.set_ylabel("training loss")
        if self.found:
            axes.axvline(self.best_lr, color="C3", linestyle=":", label="lowest loss")
            if suggest is not None and math.isfinite(self.suggestion(suggest)):
                axes.axvline(self.suggestion(suggest), color="C2", label=f"suggestion ({suggest})")
        finite = [v for v in self.smoothed if math.isfinite(v)]
        if finite:
            axes.set_ylim(min(finite) * 0.9, min(max(finite), 4 * finite[0]) * 1.1)
        axes.legend()
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
        return path


def probe_run(run: TrainingRun, config: ProbeConfig, steps: int) -> ProbeResult:
    """Probe ``run`` before its first interval (see the module docstring).

    One optimizer step per rate at the run's batch size; afterwards the weights
    and optimizer state are rolled back, the rate is the run's again, the run is
    not diverged (whatever the sweep did), and ``steps`` batches of the budget
    are spent (`TrainingRun.spend` counts the ones a stopped sweep did not train).

    Args:
        run: The run (its current weights are the start).
        config: The probe's settings.
        steps: Steps reserved for the sweep (``config.steps_for`` the run's
            optimizer steps; the episode plan knows them).

    Raises:
        ValueError: ``steps`` < 2.
    """
    sweep = Sweep(config, steps)
    hparams = run.hparams
    start = run.weights_state()
    best: dict[str, Any] | None = None
    batch = min(hparams.batch_size, run.data.train_x.shape[0])
    samples_before = run.samples_done
    while not sweep.done:
        run.apply_hparams(hparams.replace(lr=sweep.lr()))
        stats = run.train(batch)
        if sweep.record(stats.loss_mean if not stats.diverged else math.nan):
            best = run.weights_state()
    result = sweep.result()
    run.load_weights_state(best if best is not None and config.rollback == "best" else start)
    run.apply_hparams(hparams)
    run.spend(samples_before + steps * batch - run.samples_done)
    return result


def probe_population(
    population: Population,
    config: ProbeConfig,
    steps: int,
    members: Sequence[int] | None = None,
) -> list[ProbeResult]:
    """`probe_run` for every member of ``population`` (or ``members``) at once.

    Each member sweeps the same rates in lock-step (one batched step per rate);
    a member whose sweep stops is paused (`Population.pause`) while the others go
    on; each member is then rolled back to its own best state (or its start), with
    its own rate again, and ``steps`` batches of its budget are spent. Member ``i``
    ends exactly as ``probe_run`` leaves a `TrainingRun` of the same task, seed and
    hyperparameters (to float tolerance).

    Returns:
        One `ProbeResult` per probed member, in order.
    """
    index = list(range(population.size)) if members is None else list(members)
    subset = None if members is None else index
    sweeps = [Sweep(config, steps) for _ in index]
    hparams = [population.hparams[i] for i in index]
    before = [population.samples_done[i] for i in index]
    start = population.weights_state(index)
    best: dict[int, dict[str, Any]] = {}  # member -> the weights_state holding its best
    batch = population.batch_size_for_step()
    while not all(sweep.done for sweep in sweeps):
        for i, sweep, hp in zip(index, sweeps, hparams, strict=True):
            if not sweep.done:
                population.apply_hparams(i, hp.replace(lr=sweep.lr()))
        stats = population.train(batch, members=subset)
        improved = []
        for i, sweep, stat in zip(index, sweeps, stats, strict=True):
            if sweep.done:
                continue
            if sweep.record(math.nan if stat.diverged else stat.loss_mean):
                improved.append(i)
            if sweep.done and not population.diverged[i]:
                population.pause(i)
        if improved:
            state = population.weights_state(improved)
            best.update(dict.fromkeys(improved, state))
    groups: dict[int, tuple[dict[str, Any], list[int]]] = {}
    for i in index:
        state = best.get(i, start) if config.rollback == "best" else start
        groups.setdefault(id(state), (state, []))[1].append(i)
    for state, members_here in groups.values():
        population.load_weights_state(state, members_here)
    for i, hp, done_before in zip(index, hparams, before, strict=True):
        population.apply_hparams(i, hp)
        population.spend(i, done_before + steps * batch - population.samples_done[i])
    return [sweep.result() for sweep in sweeps]


class OptimizerProbe:
    """The probe inside any PyTorch loop: an optimizer's next ``steps`` steps sweep the rate.

    Attached to a ``torch.optim.Optimizer`` through its step hooks: before each
    step it sets every parameter group's rate to the sweep's (keeping the groups'
    ratios to the first group), after each step it reads the loss given to
    `report_loss` (one host sync per probe step) and keeps a copy of the weights
    (reached through the optimizer's parameter groups; with ``model``, its buffers
    too, e.g. BatchNorm statistics) and of the optimizer state whenever the
    smoothed loss reaches a new minimum. When the sweep is over it puts back the
    best copy (or the start), the groups' own rates, and detaches itself; the
    loop's data order goes on. `result` is then the `ProbeResult`.

    A step the loop skips (``GradScaler`` skips steps with inf gradients) is not a
    sweep step: the sweep waits for the next real step.

    Args:
        optimizer: The optimizer of the loop.
        config: The probe's settings.
        steps: Steps of the sweep.
        model: Optional; its buffers roll back with the weights.
    """

    def __init__(
        self,
        optimizer: Any,
        config: ProbeConfig,
        steps: int,
        model: Any = None,
    ) -> None:
        self.optimizer = optimizer
        self.config = config
        self.model = model
        self.sweep = Sweep(config, steps)
        groups = optimizer.param_groups
        self._rates = [float(g["lr"]) for g in groups]
        base = self._rates[0] or 1.0
        self._ratios = [rate / base for rate in self._rates]
        self._loss: Any = None
        self._start = self._state()
        self._best: dict[str, Any] | None = None
        self.result: ProbeResult | None = None
        self._hooks = [
            optimizer.register_step_pre_hook(self._pre_step),
            optimizer.register_step_post_hook(self._post_step),
        ]

    @property
    def done(self) -> bool:
        """The sweep is over and the rollback done."""
        return self.result is not None

    def report_loss(self, loss: Any) -> None:
        """This step's training loss (a tensor or a number), before ``optimizer.step()``."""
        self._loss = loss

    def finish(self) -> ProbeResult:
        """End the sweep now (rolling back as at its end) and detach; returns the result.

        Call it outside the optimizer's step (torch forbids removing a step hook while
        the hooks run: the hook that ends the sweep leaves itself in place, a no-op,
        for this or `release` to remove).
        """
        if self.result is None:
            self._rollback()
        self.release()
        assert self.result is not None
        return self.result

    def release(self) -> None:
        """Remove the hooks still attached (no-ops once the sweep is over)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def cancel(self) -> None:
        """Detach without rolling anything back (a resumed run: its state is loaded)."""
        self.release()
        self._start = self._best = {}
        self.result = self.sweep.result()

    def _pre_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self.result is not None:
            return
        rate = self.sweep.lr()
        for group, ratio in zip(optimizer.param_groups, self._ratios, strict=True):
            group["lr"] = rate * ratio

    def _post_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self.result is not None:
            return
        if self._loss is None:
            raise RuntimeError(
                "the probe needs each step's loss: call report_loss(loss) before optimizer.step()"
            )
        loss, self._loss = self._loss, None
        value = float(loss.detach().float().mean()) if hasattr(loss, "detach") else float(loss)
        if self.sweep.record(value):
            self._best = self._state()
        if self.sweep.done:
            self._rollback(in_hook=True)

    def _state(self) -> dict[str, Any]:
        return optimizer_snapshot(self.optimizer, self.model)

    def _rollback(self, in_hook: bool = False) -> None:
        if in_hook:  # the step's post-hooks are running: only the pre-hook can go now
            self._hooks[0].remove()
            self._hooks = self._hooks[1:]
        else:
            self.release()
        use_best = self.config.rollback == "best" and self._best is not None
        state = self._best if use_best and self._best is not None else self._start
        restore_snapshot(self.optimizer, state, self.model)
        for group, rate in zip(self.optimizer.param_groups, self._rates, strict=True):
            group["lr"] = rate
        self.result = self.sweep.result()
        self._start = self._best = {}


def optimizer_snapshot(optimizer: Any, model: Any = None, device: Any = None) -> dict[str, Any]:
    """Copies of the weights an optimizer trains (reached through its parameter groups),
    of its state and, with ``model``, of the model's buffers (BatchNorm statistics): what
    `restore_snapshot` puts back (a probe's rollback, a restart: `hpenv.restart`). Plain
    tensors and values, so a checkpoint holding it loads with ``weights_only=True``.

    ``device``: where the copies live; None beside the tensors they copy, ``"cpu"`` in host
    memory (`HyperController`'s rollback: a GPU run keeps none of the copy, which is 3x the
    weights with Adam). Each tensor is copied straight there, never twice."""
    import torch

    def copied(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            value = value.detach()
            return value.clone() if device is None else value.to(device, copy=True)
        if isinstance(value, dict):
            return {key: copied(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            items = [copied(item) for item in value]
            return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
        return copy.deepcopy(value)

    with torch.no_grad():
        state = {
            "params": [copied(p) for g in optimizer.param_groups for p in g["params"]],
            "optimizer": copied(optimizer.state_dict()),
        }
        if model is not None:
            state["buffers"] = {k: copied(b) for k, b in model.named_buffers()}
    return state


def restore_snapshot(optimizer: Any, state: dict[str, Any], model: Any = None) -> None:
    """Put back an `optimizer_snapshot` in place: the weights, the optimizer's state (its
    groups' values as they were then: set the rates afterwards) and ``model``'s buffers.
    A snapshot in host memory goes back to the weights' device (``Tensor.copy_``, the
    optimizer's ``load_state_dict``)."""
    import torch

    params = [p for g in optimizer.param_groups for p in g["params"]]
    with torch.no_grad():
        for param, saved in zip(params, state["params"], strict=True):
            param.copy_(saved)
        if model is not None:
            buffers = dict(model.named_buffers())
            for name, saved in state.get("buffers", {}).items():
                buffers[name].copy_(saved)
    optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))


def find_lr(
    model: Any,
    optimizer: Any,
    loss_fn: Any,
    batches: Any,
    steps: int = 100,
    config: ProbeConfig | None = None,
) -> ProbeResult:
    """A range test on your own model, like Lightning's ``lr_find``: one call, model restored.

    Trains ``model`` with ``optimizer`` on up to ``steps`` batches of ``batches``
    (an iterable of ``(inputs, targets)``; it is cycled if shorter), the rate
    swept from ``config.lr_min`` to ``config.lr_max``; then the model and the
    optimizer are put back as they were (``rollback="start"`` unless the config
    says otherwise) and the curve is returned::

        result = find_lr(model, optimizer, torch.nn.functional.cross_entropy, loader)
        print(result.suggestion())          # the rate at the lowest loss / 30
        result.plot("lr_find.png")

    Args:
        model: The model (its buffers roll back too).
        optimizer: Its optimizer (any ``torch.optim`` optimizer).
        loss_fn: ``loss_fn(model(inputs), targets)`` -> a scalar loss.
        batches: ``(inputs, targets)`` pairs.
        steps: Steps of the sweep.
        config: The window and stopping rule (default: 1e-6 to 1, rolled back to
            the start).
    """
    import itertools

    config = config or ProbeConfig(rollback="start", min_steps=2, max_steps=max(steps, 2))
    probe = OptimizerProbe(optimizer, config, steps, model=model)
    was_training = bool(getattr(model, "training", True))
    model.train()
    try:
        for inputs, targets in itertools.islice(itertools.cycle(batches), steps):
            optimizer.zero_grad()
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            probe.report_loss(loss)
            optimizer.step()
            if probe.done:
                break
    finally:
        result = probe.finish()
        optimizer.zero_grad()
        model.train(was_training)
    return result
