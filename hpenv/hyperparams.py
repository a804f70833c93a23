"""The tunable hyperparameters of a training run.

`HParams` holds the values a `TrainingRun` trains with. Everything but the
optimizer's kind can change between any two training intervals.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

OptimizerName = Literal["sgd", "adam", "adamw"]
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw")


@dataclass(frozen=True)
class HParams:
    """Hyperparameter values of one training run.

    Attributes:
        optimizer: ``"sgd"`` (with momentum), ``"adam"`` or ``"adamw"``. Fixed for a run.
        lr: Learning rate.
        momentum: SGD momentum, or beta1 for the Adam family.
        weight_decay: L2 penalty (SGD, Adam) or decoupled decay (AdamW).
        batch_size: Samples per optimizer step.
        dropout: Drop probability of every dropout layer of the model.
        grad_clip: Maximum global gradient norm; ``None`` disables clipping.
    """

    optimizer: OptimizerName = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 128
    dropout: float = 0.0
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        _check(math.isfinite(self.lr) and self.lr >= 0, "lr", self.lr, "a finite value >= 0")
        _check(0 <= self.momentum < 1, "momentum", self.momentum, "in [0, 1)")
        _check(
            math.isfinite(self.weight_decay) and self.weight_decay >= 0,
            "weight_decay",
            self.weight_decay,
            "a finite value >= 0",
        )
        _check(
            isinstance(self.batch_size, int) and self.batch_size >= 1,
            "batch_size",
            self.batch_size,
            "an int >= 1",
        )
        _check(0 <= self.dropout < 1, "dropout", self.dropout, "in [0, 1)")
        if self.grad_clip is not None:
            _check(self.grad_clip > 0, "grad_clip", self.grad_clip, "> 0 or None")

    def replace(self, **changes: Any) -> HParams:
        """Return a copy with ``changes`` applied (validated)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown hyperparameters {sorted(unknown)}; known: {FIELDS}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(HParams))


def _check(ok: bool, name: str, value: object, expected: str) -> None:
    if not ok:
        raise ValueError(f"hyperparameter {name} must be {expected}, got {value!r}")
