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
from hpenv.base import BaseConfig, BaseSchedule, apply_residual, rate_after_probe
from hpenv.hyperparams import FallHold, HParams, RiseGuard, apply_action
from hpenv.observation import FeatureTracker, IntervalMetrics
from hpenv.probe import ProbeResult


class PolicyStep:
    """One run's decisions by a frozen policy.

    Call `start` with the untrained model's validation metrics, then `decide`
    after every interval but the last. The step holds the rate's rises with a
    `hpenv.hyperparams.RiseGuard` when the policy's file says so
    (`PolicyMetadata.rise_guard`: its deployment choice, else its training's), and its
    falls below the run's start while the loss improves with a `hpenv.hyperparams.FallHold`
    (`PolicyMetadata.fall_hold`, a deployment choice of layout-1 policies).

    Args:
        policy: The frozen policy.
        deterministic: Take the policy's mean action (as deployed) or sample.
    """

    def __init__(self, policy: FrozenPolicy, deterministic: bool = True) -> None:
        self.policy = policy
        meta = policy.metadata
        self.guard = RiseGuard() if meta.rise_guard else None
        self.fall_hold = None if meta.fall_hold is None else FallHold(meta.fall_hold)
        self.features = FeatureTracker(meta.obs_version)
        self.actor = PolicyActor(policy, deterministic=deterministic)
        self.base_config = meta.base_config() or BaseConfig()
        self.residual = self.base_config.residual() if meta.action_kind == "residual" else None
        if self.guard is not None and self.residual is not None:
            RiseGuard.check_steer_mode(self.residual.mode)

    @property
    def needs_probe(self) -> bool:
        """The policy reads the probe and steers around a base (layout 2)."""
        return self.residual is not None

    def start(
        self,
        val_loss: float,
        val_accuracy: float,
        hparams: HParams,
        probe: ProbeResult | None = None,
        base: BaseSchedule | None = None,
    ) -> None:
        """Begin a run (resets the features, frame stack, recurrent state and offset).

        ``probe`` and ``base`` (the run's base schedule, `hpenv.base.BaseConfig.schedule`:
        its anchor and whether the probe set it) are a layout-2 policy's. Its run starts at
        the base's first rate; where ``hparams``'s rate differs (a restart cut it), the
        residual follows the cut (`hpenv.base.ResidualRate.follow`), so the decisions
        steer around the cut base instead of going back to the rate that blew up.
        """
        anchor = None if base is None else base.anchor
        self.features.reset(val_loss, val_accuracy, hparams, probe=probe, anchor=anchor)
        self.actor.reset()
        if self.guard is not None:
            self.guard.reset()
        if self.fall_hold is not None:
            self.fall_hold.reset(val_loss, hparams.lr)
        if self.residual is not None:
            self.residual.reset(self.base_config.max_offset(base))
            # the rate the run started at (its base's first), as every driver starts it
            self.residual.follow(hparams.lr, rate_after_probe(probe, hparams.lr, base, None))

    def decide(self, metrics: IntervalMetrics) -> HParams:
        """The hyperparameters for the next interval, from the interval just trained.

        A layout-2 policy's residual follows a rate the interval trained with that is not
        the one it gave (a rollback cut it, `hpenv.base.ResidualRate.follow`).

        Raises:
            ValueError: A layout-2 policy without the base's rate in ``metrics``.
        """
        obs = self.features.update(metrics)
        meta = self.policy.metadata
        action = self.actor(obs)
        if self.guard is not None:
            action = self.guard.filter(meta.tuned, meta.action_mode, action, metrics.val_loss)
        if self.fall_hold is not None:
            action = self.fall_hold.filter(
                meta.tuned, meta.action_mode, action, metrics.val_loss, metrics.hparams.lr
            )
        if self.residual is None:
            return apply_action(meta.tuned, meta.action_mode, action, metrics.hparams)
        if metrics.base_lr is None:
            raise ValueError(
                "this policy steers the rate around a base schedule anchored at the probe "
                "(layout 2): the run must probe first and give the base's rate"
            )
        self.residual.follow(metrics.hparams.lr)
        return apply_residual(
            meta.tuned, meta.action_mode, action, metrics.hparams, self.residual, metrics.base_lr
        )

    def log_values(self) -> dict[str, float]:
        """What the decision log records of the step itself: with a rise guard, how many
        rises it has held so far this run (``rises_held``, TensorBoard's
        ``controller/metrics/rises_held``); with a fall hold, how many falls
        (``falls_held``)."""
        values: dict[str, float] = {}
        if self.guard is not None:
            values["rises_held"] = self.guard.held
        if self.fall_hold is not None:
            values["falls_held"] = self.fall_hold.held
        return values

    def mark_diverged(self) -> None:
        """The run diverged: the features say so from now on."""
        self.features.mark_diverged()

    def state_dict(self) -> dict[str, Any]:
        """Plain values to resume a run's decisions with."""
        residual = self.residual
        return {
            "features": self.features.state_dict(),
            "actor": self.actor.state_dict(),
            "offset": None if residual is None else residual.offset,
            "max_offset": None if residual is None else residual.max_offset,
            "shift": None if residual is None else residual.shift,
            "last_rate": None if residual is None else residual.last_rate,
            "guard": None if self.guard is None else self.guard.state_dict(),
            "fall_hold": None if self.fall_hold is None else self.fall_hold.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.features.load_state_dict(state["features"])
        self.actor.load_state_dict(state["actor"])
        if self.guard is not None and state.get("guard") is not None:
            self.guard.load_state_dict(state["guard"])
        if self.fall_hold is not None and state.get("fall_hold") is not None:
            self.fall_hold.load_state_dict(state["fall_hold"])
        if self.residual is not None:
            self.residual.offset = float(state.get("offset") or 0.0)
            if state.get("max_offset") is not None:  # older states: the range of `start`
                self.residual.max_offset = float(state["max_offset"])
            # older states: no shift, and the next decision's rate taken as given
            self.residual.shift = float(state.get("shift") or 0.0)
            last = state.get("last_rate")
            self.residual.last_rate = None if last is None else float(last)
