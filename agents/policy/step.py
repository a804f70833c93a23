"""The policy in the loop: metrics -> features -> action -> hyperparameters, in one place.

`PolicyStep` is what every consumer of a frozen policy runs at a decision
point: the deployed `agents.deploy.controller.HyperController` and the
evaluation harness's policy method. It is built from the environment's own
pieces (`hpenv.observation.FeatureTracker` for the observation and
`hpenv.hyperparams.apply_action` for the action), so a policy sees and acts
exactly as it did in `hpenv.env.HPTuneEnv` during meta-training; a parity test
rolls all three on the same cell.
"""

from __future__ import annotations

from typing import Any

from agents.policy.artifact import FrozenPolicy, PolicyActor
from hpenv.hyperparams import HParams, apply_action
from hpenv.observation import FeatureTracker, IntervalMetrics


class PolicyStep:
    """One run's decisions by a frozen policy.

    Call `start` with the untrained model's validation metrics, then `decide`
    after every interval but the last.

    Args:
        policy: The frozen policy.
        deterministic: Take the policy's mean action (as deployed) or sample.
    """

    def __init__(self, policy: FrozenPolicy, deterministic: bool = True) -> None:
        self.policy = policy
        self.features = FeatureTracker()
        self.actor = PolicyActor(policy, deterministic=deterministic)

    def start(self, val_loss: float, val_accuracy: float, hparams: HParams) -> None:
        """Begin a run (resets the features, frame stack and recurrent state)."""
        self.features.reset(val_loss, val_accuracy, hparams)
        self.actor.reset()

    def decide(self, metrics: IntervalMetrics) -> HParams:
        """The hyperparameters for the next interval, from the interval just trained."""
        obs = self.features.update(metrics)
        meta = self.policy.metadata
        return apply_action(meta.tuned, meta.action_mode, self.actor(obs), metrics.hparams)

    def mark_diverged(self) -> None:
        """The run diverged: the features say so from now on."""
        self.features.mark_diverged()

    def state_dict(self) -> dict[str, Any]:
        """Plain values to resume a run's decisions with."""
        return {"features": self.features.state_dict(), "actor": self.actor.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.features.load_state_dict(state["features"])
        self.actor.load_state_dict(state["actor"])
