"""Task meta-features: what a task looks like before tuning it, and which tasks resemble it.

`describe_task` summarises one evaluation cell's task by what is known before
any search: the data (training samples, input size, classes, modality), the
model (trainable parameters) and a short probe of how training starts (the
first interval's loss curve at the task's default hyperparameters: the
interval is split into `PROBE_POINTS` chunks and each chunk's mean training
loss is taken relative to the untrained model's validation loss, on a log
scale). `nearest` ranks prior tasks by the distance between their feature
vectors and turns distances into similarity weights.

Feature vector (`TaskFeatures.vector`), each entry on a scale where one unit is
a large difference:

| entries | value |
|---|---|
| samples, input size, classes, parameters | log10 of each |
| modality | one-hot over image, text, tabular |
| loss curve | ln(chunk train loss / initial val loss) per chunk, divided by sqrt(points) |

The probe trains one interval of the cell's own plan (1 / (decisions + 1) of a
run), from the cell's seed: it is deterministic and cheap, and its samples are
reported (``TaskFeatures.probe_samples``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from agents.evaluation.methods.core import RunSpec
from hpenv.training import TrainingRun, build_model

#: Chunks the probe interval is split into (points of the loss curve).
PROBE_POINTS = 4
MODALITIES: tuple[str, ...] = ("image", "text", "tabular")
#: A diverged probe chunk counts as this log-ratio (the observation's upper bound).
DIVERGED_CURVE = 5.0


@dataclass(frozen=True)
class TaskFeatures:
    """One task's meta-features (see the module docstring).

    Attributes:
        task: Task name.
        samples: Training samples of the cell's data (after any subset).
        input_size: Values per input (pixels x channels, tokens, columns).
        classes: Label values (2 for binary tasks).
        parameters: Trainable parameters of the task's model.
        modality: ``image``, ``text`` or ``tabular``.
        curve: ln(mean training loss of probe chunk k / initial validation loss).
        probe_samples: Training samples the probe used.
    """

    task: str
    samples: int
    input_size: int
    classes: int
    parameters: int
    modality: str
    curve: tuple[float, ...]
    probe_samples: int

    def vector(self) -> np.ndarray:
        """The feature vector distances are measured on."""
        sizes = [self.samples, self.input_size, self.classes, self.parameters]
        numeric = [math.log10(max(v, 1)) for v in sizes]
        onehot = [float(self.modality == m) for m in MODALITIES]
        curve = [c / math.sqrt(len(self.curve)) for c in self.curve] if self.curve else []
        return np.array(numeric + onehot + curve, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["curve"] = list(self.curve)
        return data


def describe_task(spec: RunSpec, points: int = PROBE_POINTS) -> TaskFeatures:
    """The meta-features of ``spec``'s task, at its data, budget plan and seed.

    Args:
        spec: The cell (its data is loaded if not given).
        points: Chunks of the probe interval.
    """
    if points < 1:
        raise ValueError(f"points must be >= 1, got {points}")
    data = spec.load_data()
    task = spec.resolved_task()
    plan = spec.plan(data)
    hparams = spec.defaults()
    model = build_model(task, data, hparams.dropout)
    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    run = TrainingRun(
        task, hparams=hparams, seed=spec.seed, device=spec.device, data=data,
        val_size=plan.val_size,
    )  # fmt: skip
    initial = run.evaluate().loss
    chunk = max(1, plan.interval // points)
    curve = []
    for _ in range(points):
        stats = run.train(chunk)
        ratio = stats.loss_mean / initial if initial > 0 else math.nan
        finite = not stats.diverged and math.isfinite(ratio) and ratio > 0
        curve.append(min(math.log(ratio), DIVERGED_CURVE) if finite else DIVERGED_CURVE)
    return TaskFeatures(
        task=spec.task,
        samples=int(data.train_x.shape[0]),
        input_size=int(np.prod(data.input_shape)),
        classes=2 if task.loss == "binary" else int(data.num_classes),
        parameters=int(parameters),
        modality=data.kind,
        curve=tuple(curve),
        probe_samples=run.samples_done,
    )


@dataclass(frozen=True)
class Neighbour:
    """A prior task ranked by similarity: its distance and normalised weight."""

    task: str
    distance: float
    weight: float


def nearest(
    target: TaskFeatures,
    priors: Sequence[TaskFeatures],
    k: int,
    bandwidth: float = 1.0,
) -> list[Neighbour]:
    """The ``k`` priors closest to ``target``, closest first, with similarity weights.

    Distance is Euclidean on `TaskFeatures.vector`; similarity is
    ``exp(-distance / bandwidth)``, normalised to sum to 1 over the ``k``
    chosen. Ties keep the order of ``priors``. The target's own task is skipped.

    >>> a = TaskFeatures("a", 1000, 64, 10, 10_000, "image", (-0.5,), 100)
    >>> b = TaskFeatures("b", 1000, 64, 10, 20_000, "image", (-0.6,), 100)
    >>> c = TaskFeatures("c", 50, 8, 2, 500, "tabular", (0.0,), 10)
    >>> [n.task for n in nearest(a, [c, b], k=1)]
    ['b']
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
    point = target.vector()
    scored = [
        (float(np.linalg.norm(prior.vector() - point)), i, prior.task)
        for i, prior in enumerate(priors)
        if prior.task != target.task
    ]
    chosen = sorted(scored)[:k]
    similarity = [math.exp(-d / bandwidth) for d, _, _ in chosen]
    total = sum(similarity) or 1.0
    return [
        Neighbour(task, distance, s / total)
        for (distance, _, task), s in zip(chosen, similarity, strict=True)
    ]


def allocate(weights: Mapping[str, float], slots: int) -> dict[str, int]:
    """Split ``slots`` among tasks in proportion to ``weights`` (largest remainder).

    >>> allocate({"a": 0.6, "b": 0.3, "c": 0.1}, 3)
    {'a': 2, 'b': 1, 'c': 0}
    """
    if slots <= 0 or not weights:
        return dict.fromkeys(weights, 0)
    total = sum(weights.values()) or 1.0
    exact = {task: slots * w / total for task, w in weights.items()}
    counts = {task: math.floor(v) for task, v in exact.items()}
    order = sorted(weights, key=lambda t: (-(exact[t] - counts[t]), -weights[t]))
    for task in order[: slots - sum(counts.values())]:
        counts[task] += 1
    return counts
