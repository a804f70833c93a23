"""Reward functions of `HPTuneEnv`, selectable by name.

All rewards are computed on the validation split (never the test split) and
do not depend on the batch size or the task's loss scale.

| name | reward after each decision | episode return |
|---|---|---|
| ``log_val_loss`` (default) | ln(previous val loss) - ln(val loss) | ln(initial / final val loss) |
| ``val_accuracy`` | val accuracy - previous val accuracy | final - initial accuracy |
| ``final_accuracy`` | 0, and the final val accuracy at the last decision | final accuracy |

Divergence ends the episode as if the run had reached the worst outcome on
the reward's own scale, minus ``divergence_penalty`` (default 1.0 for
``log_val_loss``, 0.1 for the accuracy rewards). The divergence reward is
always negative:

| name | reward at divergence |
|---|---|
| ``log_val_loss`` | -max(ln(worst loss) - ln(previous val loss), 0) - penalty |
| ``val_accuracy`` | -(previous val accuracy) - penalty (accuracy falls to 0) |
| ``final_accuracy`` | -penalty |

The worst loss is the run's divergence threshold (100x the loss of a uniform
guess). So a diverged episode returns less than any episode that ends below the
divergence threshold: diverging never pays.

A decision whose interval ran out of device memory (a batch size too large:
the run reverts it, see `hpenv.training.TrainingRun.train`) costs an extra
`OOM_PENALTY` (0.1) on top of the step's reward, for every reward.

Losses below `LOSS_FLOOR` (1e-7, about the smallest non-zero float32
cross-entropy) count as `LOSS_FLOOR`, so a validation loss of exactly 0 (an
easy task solved) gives a finite reward. Rewards never raise on a metric:
non-finite inputs are the environment's divergence case.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from typing import Literal

#: Names of the reward functions (the ``reward=`` argument of `hpenv.env.HPTuneEnv`).
RewardName = Literal["log_val_loss", "val_accuracy", "final_accuracy", "paired_log_val_loss"]
#: Rewards that compare the run with a reference run of the base schedule.
PAIRED_REWARDS: tuple[str, ...] = ("paired_log_val_loss",)
#: The largest margin (in ln of the loss ratio) a paired reward counts, either way.
MAX_MARGIN = 5.0

#: Subtracted from a step's reward when its interval ran out of device memory.
OOM_PENALTY = 0.1
#: Smallest loss the log rewards distinguish (a float32 cross-entropy is 0 or above ~6e-8).
LOSS_FLOOR = 1e-7


def log_loss(loss: float) -> float:
    """``ln(max(loss, LOSS_FLOOR))``: finite for a loss of 0."""
    return math.log(max(loss, LOSS_FLOOR))


@dataclass
class Reward:
    """Base class: tracks the return so far so that divergence can cancel it."""

    divergence_penalty: float = 1.0
    name = "base"

    def __post_init__(self) -> None:
        if not self.divergence_penalty > 0:
            raise ValueError(f"divergence_penalty must be > 0, got {self.divergence_penalty}")
        self.episode_return = 0.0

    def reset(self, val_loss: float, val_accuracy: float) -> None:
        self.episode_return = 0.0
        self._start(val_loss, val_accuracy)

    def step(
        self, val_loss: float, val_accuracy: float, last: bool, reference: float | None = None
    ) -> float:
        """The reward of one decision, from the run's validation metrics after its interval
        (and, for a paired reward, the reference run's validation loss at the same point)."""
        reward = self._reward(val_loss, val_accuracy, last, reference)
        self.episode_return += reward
        return reward

    def diverged(self, worst_loss: float) -> float:
        """Reward of the step where the run diverged (negative; see module docstring)."""
        reward = -self._fall(worst_loss) - self.divergence_penalty
        self.episode_return += reward
        return reward

    def _fall(self, worst_loss: float) -> float:
        raise NotImplementedError

    def _start(self, val_loss: float, val_accuracy: float) -> None:
        raise NotImplementedError

    def _reward(
        self, val_loss: float, val_accuracy: float, last: bool, reference: float | None
    ) -> float:
        raise NotImplementedError


@dataclass
class LogValLoss(Reward):
    name = "log_val_loss"

    def _start(self, val_loss: float, val_accuracy: float) -> None:
        self._previous = log_loss(val_loss)

    def _reward(
        self, val_loss: float, val_accuracy: float, last: bool, reference: float | None
    ) -> float:
        current = log_loss(val_loss)
        reward, self._previous = self._previous - current, current
        return reward

    def _fall(self, worst_loss: float) -> float:
        return max(log_loss(worst_loss) - self._previous, 0.0)


@dataclass
class ValAccuracy(Reward):
    divergence_penalty: float = 0.1
    name = "val_accuracy"

    def _start(self, val_loss: float, val_accuracy: float) -> None:
        self._previous = val_accuracy

    def _reward(
        self, val_loss: float, val_accuracy: float, last: bool, reference: float | None
    ) -> float:
        reward, self._previous = val_accuracy - self._previous, val_accuracy
        return reward

    def _fall(self, worst_loss: float) -> float:
        return self._previous


@dataclass
class FinalAccuracy(Reward):
    divergence_penalty: float = 0.1
    name = "final_accuracy"

    def _start(self, val_loss: float, val_accuracy: float) -> None:
        pass

    def _reward(
        self, val_loss: float, val_accuracy: float, last: bool, reference: float | None
    ) -> float:
        return val_accuracy if last else 0.0

    def _fall(self, worst_loss: float) -> float:
        return 0.0


@dataclass
class PairedLogValLoss(Reward):
    """ln(reference val loss) - ln(val loss), as an increment per decision.

    The reference is the run the neutral action gives, on the same seed,
    initialisation and data order (the environment trains it beside the run): the
    base schedule's run with a base (layout 2, `hpenv.base`), else the run held at
    its starting hyperparameters (layouts 1 and 3: static from the warm-up on). So
    the return, the final margin ln(reference / run), says what the policy's
    steering did, the same on an easy task and a hard one. Both runs are the same
    when the rewards start (after the warm-up): the margin starts at 0. A margin is
    counted within +-`MAX_MARGIN`; a reference that diverged while the run did not
    gives the largest margin. The run's own divergence is the worst outcome: the
    margin falls as if the run's loss rose to its divergence threshold, minus the
    penalty.
    """

    name = "paired_log_val_loss"

    def _start(self, val_loss: float, val_accuracy: float) -> None:
        self._margin = 0.0
        self._reference = log_loss(val_loss)

    def _reward(
        self, val_loss: float, val_accuracy: float, last: bool, reference: float | None
    ) -> float:
        if reference is None:
            raise ValueError("the paired reward needs the reference run's validation loss")
        self._reference = log_loss(reference) if math.isfinite(reference) else math.inf
        margin = max(-MAX_MARGIN, min(MAX_MARGIN, self._reference - log_loss(val_loss)))
        reward, self._margin = margin - self._margin, margin
        return reward

    def _fall(self, worst_loss: float) -> float:
        margin = max(-MAX_MARGIN, min(MAX_MARGIN, self._reference - log_loss(worst_loss)))
        return max(self._margin - margin, 0.0)


REWARDS: dict[str, type[Reward]] = {
    r.name: r for r in (LogValLoss, ValAccuracy, FinalAccuracy, PairedLogValLoss)
}
assert set(REWARDS) == set(typing.get_args(RewardName))


def make_reward(name: RewardName, divergence_penalty: float | None = None) -> Reward:
    """A fresh reward function by name; ``divergence_penalty`` None keeps its default."""
    try:
        cls = REWARDS[name]
    except KeyError:
        raise ValueError(f"unknown reward {name!r}; known: {', '.join(REWARDS)}") from None
    return cls() if divergence_penalty is None else cls(divergence_penalty=divergence_penalty)
