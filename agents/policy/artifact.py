"""The frozen policy artifact: save, load, check compatibility, predict.

One file (``torch.save`` of plain tensors and Python values, loadable with
``weights_only=True``, written atomically) holding:

- the policy network's weights (an SB3 ``ActorCriticPolicy``, or sb3-contrib's
  ``RecurrentActorCriticPolicy``) and the keyword arguments that rebuild it;
- the observation normalisation statistics (``VecNormalize``'s running mean
  and variance, clip and epsilon), applied exactly as in training;
- metadata: observation layout version, tuned hyperparameters and their
  ranges, action mode, frame stack, tasks trained on, agent steps, package
  versions, creation time; for a policy adapted from another one
  (`agents.metatrain.adapt`), its parent and the adaptation run.

An ensemble (`FrozenPolicy.ensemble`: policies of one recipe meta-trained from
different seeds, acting by the mean of their actions, or their median) is one
artifact too: the first member's weights and statistics where a single policy
keeps them, the others under ``members``, and ``metadata.ensemble`` saying how
it combines them. It
is written as format 2 (`ENSEMBLE_FORMAT`), so an hpenv that reads only single
policies refuses it instead of acting on its first member.

Metadata fields added later have defaults, so older artifacts load (their
``parent`` and ``adaptation`` are empty), and unknown fields are ignored.

`load_policy` refuses an artifact written for another observation layout or
artifact format, or a damaged file, with a message that says what to do.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.cli import option
from hpenv.base import BaseConfig, ProbeStart
from hpenv.errors import InputError
from hpenv.hyperparams import (
    FALL_HOLD_THRESHOLD,
    TUNABLES,
    ActionMode,
    FallHold,
    RiseGuard,
    action_space,
)
from hpenv.io import UnsafeFileError, atomic_open, safe_torch_load
from hpenv.observation import LAYOUTS, OBS_VERSION, layout_bounds
from hpenv.plan import DEFAULT_DECISIONS
from hpenv.probe import ProbeConfig, Rollback
from hpenv.restart import RestartConfig

ARTIFACT_FORMAT = 1
#: The format of an ensemble's file (a single policy is still written as `ARTIFACT_FORMAT`).
ENSEMBLE_FORMAT = 2
#: Every format this hpenv reads.
READABLE_FORMATS = (ARTIFACT_FORMAT, ENSEMBLE_FORMAT)
#: How an ensemble combines its members' actions (`FrozenPolicy.ensemble`'s ``reduce``).
EnsembleReduce = Literal["mean", "median"]
ENSEMBLE_REDUCES: tuple[str, ...] = ("mean", "median")
#: ``--rise-guard`` of the scripts -> `FrozenPolicy.with_rise_guard`'s ``on`` (None: the
#: policy's own, `PolicyMetadata.rise_guard`).
RISE_GUARD_CHOICES: dict[str, bool | None] = {"policy": None, "on": True, "off": False}
#: ``--probe-rollback`` of the scripts -> `FrozenPolicy.with_probe_rollback`'s ``rollback``
#: (None: the policy's own, `PolicyMetadata.probe_config`).
PROBE_ROLLBACK_CHOICES: dict[str, Rollback | None] = {
    "policy": None,
    "best": "best",
    "start": "start",
}
#: ``--probe-rollback``'s help, the same in every script.
PROBE_ROLLBACK_HELP = (
    "where the policy's probe (layout 2, or a probe start) rolls back to: 'policy' (as its "
    "file says), 'best' (the sweep's lowest-loss state) or 'start' (the state before it)"
)
#: ``--restart`` of the scripts -> `FrozenPolicy.with_restart`'s ``restart`` (None: the
#: policy's own, `PolicyMetadata.restart`).
RESTART_CHOICES: dict[str, RestartConfig | bool | None] = {
    "policy": None,
    "on": True,
    "train": RestartConfig(train_loss=True),
    "rollback": RestartConfig(train_loss=True, rollback=True),
    "collapse": RestartConfig(train_loss=True, rollback=True, collapse=True),
    "off": False,
}
#: ``--restart``'s help, the same in every script.
RESTART_HELP = (
    "restart a run whose first interval blew up (hpenv.restart: its validation loss above "
    "the untrained model's x1.1, or diverged) from its untrained weights at the rate / 10, "
    "twice at most: 'policy' (as its file says), 'on', 'train' (also when the interval's "
    "mean training loss is above that limit), 'rollback' ('train', and a later interval that "
    "blows up goes back to the run's best state at that state's rate / 10, twice at most), "
    "'collapse' ('rollback', and a later interval whose validation and training losses are "
    "both back near the untrained model's rolls back too) or 'off'"
)
#: ``--fall-hold`` of the scripts -> `FrozenPolicy.with_fall_hold`'s ``hold`` (None: the
#: policy's own, `PolicyMetadata.fall_hold`).
FALL_HOLD_CHOICES: dict[str, bool | None] = {"policy": None, "on": True, "off": False}
#: ``--fall-hold``'s help, the same in every script.
FALL_HOLD_HELP = (
    "the policy's fall hold (hpenv.hyperparams.FallHold, layout-1 policies: no fall of the "
    "rate below the run's start while the validation loss still improves on its best by "
    f"more than {FALL_HOLD_THRESHOLD * 100:g} percent): 'policy' (as its file says), 'on' or 'off'"
)
#: ``--rise-guard``'s help, the same in every script.
RISE_GUARD_HELP = (
    "the policy's rise guard (hpenv.hyperparams.RiseGuard: no rise of the rate until the "
    "validation loss improves): 'policy' (as its file says), 'on' or 'off'"
)
#: What the scripts' ``--probe-start`` takes (`probe_start_choice`).
PROBE_START_HELP = (
    "layout-1 policies: probe first and start at the probe's rate (hpenv.base.ProbeStart): "
    "'on' (the suggestion by min/30), a rule (min/3, min/10, min/30, min/100, steepest), "
    "either with ':F' to keep the run's own rate when within a factor F of it (e.g. on:10); "
    "'off'; 'policy': as the file says"
)
#: The SB3 algorithms a policy can come from (sb3-contrib's RecurrentPPO for the LSTM policy).
AlgorithmName = Literal["ppo", "recurrent_ppo"]
#: How a policy's rate action is applied: ``multiplicative`` (layout 1: x3 at most per
#: decision from the current rate) or ``residual`` (layout 2: an offset from the base
#: schedule anchored at the probe, `hpenv.base`).
ActionKind = Literal["multiplicative", "residual"]
#: The action kind each observation layout is trained with.
ACTION_KINDS: dict[int, ActionKind] = {1: "multiplicative", 2: "residual", 3: "multiplicative"}
_ACTIVATIONS: dict[str, type[nn.Module]] = {"Tanh": nn.Tanh, "ReLU": nn.ReLU, "ELU": nn.ELU}


def rise_guard_option(help_suffix: str = "") -> Any:
    """The scripts' ``--rise-guard`` config field (`RISE_GUARD_CHOICES`), default ``policy``."""
    return option(
        RISE_GUARD_HELP + help_suffix, default="policy", choices=tuple(RISE_GUARD_CHOICES)
    )


def fall_hold_option(help_suffix: str = "") -> Any:
    """The scripts' ``--fall-hold`` config field (`FALL_HOLD_CHOICES`), default ``policy``."""
    return option(FALL_HOLD_HELP + help_suffix, default="policy", choices=tuple(FALL_HOLD_CHOICES))


def probe_start_option(help_suffix: str = "") -> Any:
    """The scripts' ``--probe-start`` config field (`probe_start_choice`), default ``policy``."""
    return option(PROBE_START_HELP + help_suffix, default="policy")


def probe_rollback_option() -> Any:
    """The scripts' ``--probe-rollback`` config field (`PROBE_ROLLBACK_CHOICES`)."""
    return option(PROBE_ROLLBACK_HELP, default="policy", choices=tuple(PROBE_ROLLBACK_CHOICES))


def restart_option(help_suffix: str = "") -> Any:
    """The scripts' ``--restart`` config field (`RESTART_CHOICES`), default ``policy``."""
    return option(RESTART_HELP + help_suffix, default="policy", choices=tuple(RESTART_CHOICES))


def probe_start_choice(text: str) -> ProbeStart | bool | None:
    """The scripts' ``--probe-start`` as `FrozenPolicy.with_probe_start` takes it
    (`PROBE_START_HELP`): ``policy`` -> None, ``off`` -> False, ``on`` -> `ProbeStart()`,
    ``RULE``, ``on:F`` or ``RULE:F`` -> that `ProbeStart`.

    >>> probe_start_choice("on:10")
    ProbeStart(rule='min/30', within=10.0)

    Raises:
        InputError: Not one of those forms.
    """
    if text in ("policy", "off"):
        return None if text == "policy" else False
    rule, _, within = text.partition(":")
    try:
        return ProbeStart(
            rule=ProbeStart.rule if rule == "on" else rule,  # type: ignore[arg-type]
            within=float(within) if within else 1.0,
        )
    except ValueError as exc:
        raise InputError(f"--probe-start {text!r}: {exc}; {PROBE_START_HELP}") from None


def probe_start_text(start: ProbeStart | None) -> str:
    """A probe start as ``--probe-start`` writes it (`probe_start_choice` reads it back):
    ``off``, or ``RULE:F``.

    >>> probe_start_text(ProbeStart(within=10.0))
    'min/30:10'
    """
    return "off" if start is None else f"{start.rule}:{start.within:g}"


class PolicyLoadError(InputError):
    """The file is not a readable policy artifact."""


class IncompatiblePolicyError(InputError):
    """The artifact cannot serve this version of hpenv or this request."""


@dataclass(frozen=True)
class PolicyMetadata:
    """What a frozen policy was trained on and how to rebuild it.

    Attributes:
        obs_version / obs_size: The observation layout it reads (`hpenv.observation.LAYOUTS`).
        action_kind: How its rate action is applied (`ActionKind`; layout 1's policies,
            written before it existed, are ``multiplicative``).
        tasks: Every task the policy was trained on (an adapted policy adds its
            adaptation task to its parent's).
        agent_steps: Agent steps of all its training (an adapted policy: its
            parent's plus the adaptation's).
        parent: Empty, or for an adapted policy a summary of the policy it came
            from: ``source`` (the name or path given), ``file``, ``tuned``,
            ``tasks``, ``agent_steps``, ``created``, ``hpenv`` (version) and its own
            ``parent`` (so a chain of adaptations keeps its lineage).
        adaptation: Empty, or the adaptation run: ``task``, ``episodes``,
            ``agent_steps``, ``training_samples``, ``seconds`` and the settings
            (fidelity, normalisation, PPO options, seed); see `agents.metatrain.adapt`.
        ensemble: Empty for a single policy; for an ensemble (`FrozenPolicy.ensemble`)
            ``size``, ``reduce`` (how the members' actions combine: ``"mean"`` or
            ``"median"``; files written before the choice existed are means) and
            ``members`` (each member's ``source``, ``agent_steps`` and ``created``).
        deploy: Settings its drivers use in place of those it was trained with; empty: as
            trained. ``rise_guard`` (bool): hold the rate's rises until the validation loss
            improves (`hpenv.hyperparams.RiseGuard`), set by `FrozenPolicy.with_rise_guard`;
            ``probe_start`` (`hpenv.base.ProbeStart.to_dict`, layout 1 only): probe first
            and start at the probe's rate, set by `FrozenPolicy.with_probe_start`; ``probe``
            (`hpenv.probe.ProbeConfig`'s fields): the probe's settings, set by
            `FrozenPolicy.with_probe_rollback`; ``restart`` (`hpenv.restart.RestartConfig`'s
            fields): restart a run whose first interval blew up, set by
            `FrozenPolicy.with_restart`; ``fall_hold`` (float, layout 1 only): hold the
            rate's falls below the run's start while the validation loss improves on its
            best by more than this (`hpenv.hyperparams.FallHold`), set by
            `FrozenPolicy.with_fall_hold`.
    """

    obs_version: int
    obs_size: int
    tuned: tuple[str, ...]
    ranges: dict[str, dict[str, Any]]
    action_mode: ActionMode
    algorithm: AlgorithmName
    policy_kwargs: dict[str, Any]
    frame_stack: int = 1
    env_config: dict[str, Any] = field(default_factory=dict)
    tasks: tuple[str, ...] = ()
    agent_steps: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    notes: str = ""
    parent: dict[str, Any] = field(default_factory=dict)
    adaptation: dict[str, Any] = field(default_factory=dict)
    action_kind: ActionKind = "multiplicative"
    ensemble: dict[str, Any] = field(default_factory=dict)
    deploy: dict[str, Any] = field(default_factory=dict)

    @property
    def decisions(self) -> int:
        """Decisions per run the policy was trained with (every driver's default)."""
        return int(self.env_config.get("decisions", DEFAULT_DECISIONS))

    @property
    def rise_guard(self) -> bool:
        """Whether its drivers hold the rate's rises until the validation loss improves
        (`hpenv.hyperparams.RiseGuard`): ``deploy``'s choice, else as its episodes did."""
        return bool(self.deploy.get("rise_guard", self.env_config.get("rise_guard", False)))

    @property
    def probe_start(self) -> ProbeStart | None:
        """Where a layout-1 policy's runs start after a probe (`hpenv.base.ProbeStart`):
        ``deploy``'s choice, else as its episodes did; None: no probe, the run's own rate."""
        if "probe_start" in self.deploy:
            value = self.deploy["probe_start"]
        else:
            value = self.env_config.get("probe_start")
        return None if value is None else ProbeStart.from_dict(value)

    @property
    def restart(self) -> RestartConfig | None:
        """Whether its runs restart when their first interval blows up (`hpenv.restart`), a
        deployment setting only (``deploy``); None: never."""
        value = self.deploy.get("restart")
        return None if value is None else RestartConfig.from_dict(value)

    @property
    def fall_hold(self) -> float | None:
        """The threshold of its runs' fall hold (`hpenv.hyperparams.FallHold`): ``deploy``'s
        choice, else as its episodes did (``train_agent.py --fall-hold``); None: none."""
        if "fall_hold" in self.deploy:
            value = self.deploy["fall_hold"]
        else:
            value = self.env_config.get("fall_hold")
        if value is None:
            return None
        return FallHold(value).threshold  # checked

    def probe_config(self) -> ProbeConfig | None:
        """The probe of the policy's runs (None: they have none): a layout-2 policy's
        episodes', or a layout-1 policy's with a `probe_start`; ``deploy``'s (set by
        `FrozenPolicy.with_probe_rollback`), else the one recorded in ``env_config``, else
        today's default (`hpenv.probe.ProbeConfig`)."""
        if self.obs_version != 2 and self.probe_start is None:
            return None
        return ProbeConfig(**self.deploy.get("probe", self.env_config.get("probe", {})))

    def base_config(self) -> BaseConfig | None:
        """The base schedule the policy steers around (layout 2; None for layout 1): the
        one its episodes used, recorded in ``env_config``, else today's default. Every
        driver anchors its base this way, so the policy sees the base it was trained on."""
        if self.obs_version != 2:
            return None
        return BaseConfig(**self.env_config.get("base", {}))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tuned"], data["tasks"] = list(self.tuned), list(self.tasks)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyMetadata:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["tuned"] = tuple(values["tuned"])
        values["tasks"] = tuple(values.get("tasks", ()))
        return cls(**values)


def package_versions() -> dict[str, str]:
    import gymnasium
    import stable_baselines3

    import hpenv

    return {
        "hpenv": hpenv.__version__,
        "torch": str(torch.__version__),
        "stable_baselines3": stable_baselines3.__version__,
        "gymnasium": gymnasium.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def spaces_for(meta: PolicyMetadata) -> tuple[gym.spaces.Box, gym.spaces.Space[Any]]:
    """Observation and action spaces of an artifact (stacked observations if framed)."""
    low, high = layout_bounds(meta.obs_version)
    low, high = np.tile(low, meta.frame_stack), np.tile(high, meta.frame_stack)
    obs_space = gym.spaces.Box(low, high, dtype=np.float32)
    return obs_space, action_space(len(meta.tuned), meta.action_mode)


class FrozenPolicy:
    """A trained policy with its frozen observation normalisation.

    Args:
        policy: The SB3 policy module (in eval mode on the CPU).
        obs_mean / obs_var: Normalisation statistics, one entry per observation value.
        clip_obs / epsilon: ``VecNormalize``'s clip and epsilon.
        metadata: See `PolicyMetadata`.

    An ensemble (`ensemble`) is a `FrozenPolicy` whose `members` are the policies it
    averages; ``policy``, ``obs_mean`` and ``obs_var`` are then its first member's, and
    code that needs one network (export, adaptation) refuses it (`single`).
    """

    def __init__(
        self,
        policy: Any,
        obs_mean: np.ndarray,
        obs_var: np.ndarray,
        clip_obs: float,
        epsilon: float,
        metadata: PolicyMetadata,
    ) -> None:
        self.policy = policy.to("cpu").eval()
        self.obs_mean = np.asarray(obs_mean, dtype=np.float64)
        self.obs_var = np.asarray(obs_var, dtype=np.float64)
        self.clip_obs = float(clip_obs)
        self.epsilon = float(epsilon)
        self.metadata = metadata
        #: The policies an ensemble averages (empty: a single policy).
        self.members: tuple[FrozenPolicy, ...] = ()

    @property
    def recurrent(self) -> bool:
        return self.metadata.algorithm == "recurrent_ppo"

    @property
    def reduce(self) -> EnsembleReduce:
        """How an ensemble combines its members' actions (``metadata.ensemble['reduce']``;
        ``"mean"`` for a single policy and for ensembles written before the choice)."""
        return "median" if self.metadata.ensemble.get("reduce") == "median" else "mean"

    @property
    def size(self) -> int:
        """How many policies act (1, or an ensemble's members)."""
        return max(1, len(self.members))

    def single(self, what: str) -> FrozenPolicy:
        """This policy, if it is a single network; ``what`` (e.g. "export") otherwise raises.

        Raises:
            IncompatiblePolicyError: It is an ensemble.
        """
        if self.members:
            raise IncompatiblePolicyError(
                f"{what} takes one policy network; this is an ensemble of {self.size} "
                "(FrozenPolicy.ensemble). Use one of its members' artifacts (the files it was "
                "built from: metadata.ensemble['members'])"
            )
        return self

    @classmethod
    def ensemble(
        cls,
        policies: list[FrozenPolicy],
        sources: list[str] | None = None,
        reduce: EnsembleReduce = "mean",
    ) -> FrozenPolicy:
        """One policy acting by the mean (or the median) of ``policies``' deterministic actions.

        The members must be feed-forward, continuous-action policies that act the same
        way: the same observation layout, frame stack, tuned hyperparameters and ranges,
        network, decisions per run, probe, base and rise guard (`_acting`; settings written out by a
        newer hpenv and left to their defaults by an older one compare equal), differing
        in their weights and normalisation statistics (meta-training seeds of one recipe;
        their training distributions are not compared). Each member normalises the
        observation with its own statistics and its actions are clipped to [-1, 1] before
        the mean, so one member stuck at a bound moves the mean by at most 2/size.
        ``reduce="median"`` takes each action's median over the members instead: fewer
        than half of them, however far off, do not move it outside the others' range.
        ``sources`` (the members' files, for the record) defaults to their positions.

        Raises:
            InputError: Fewer than two policies, an ensemble among them, members that
                differ in anything but their weights (it names the field), or an
                unknown ``reduce``.
        """
        if reduce not in ENSEMBLE_REDUCES:
            raise InputError(f"reduce must be one of {ENSEMBLE_REDUCES}, got {reduce!r}")
        if len(policies) < 2:
            raise InputError(f"an ensemble needs at least two policies, got {len(policies)}")
        if sources is not None and len(sources) != len(policies):
            raise InputError(f"{len(sources)} sources for {len(policies)} policies")
        names = sources or [f"member {i}" for i in range(len(policies))]
        first = policies[0].metadata
        theirs = _acting(first)
        for name, policy in zip(names, policies, strict=True):
            meta = policy.metadata
            if policy.members:
                raise InputError(f"{name} is an ensemble already; give its members")
            if policy.recurrent or meta.action_mode != "continuous":
                raise InputError(
                    f"{name}: only feed-forward policies with continuous actions average "
                    f"(got {meta.algorithm}, {meta.action_mode})"
                )
            for key, value in _acting(meta).items():
                if value != theirs[key]:
                    raise InputError(
                        f"{name} differs from {names[0]} in {key} ({value!r} against "
                        f"{theirs[key]!r}): an ensemble's members act the same way"
                    )
            if (policy.clip_obs, policy.epsilon) != (policies[0].clip_obs, policies[0].epsilon):
                raise InputError(f"{name} normalises with another clip or epsilon")
        record = {
            "size": len(policies),
            "reduce": reduce,
            "members": [
                {"source": str(n), "agent_steps": p.metadata.agent_steps,
                 "created": p.metadata.created}
                for n, p in zip(names, policies, strict=True)
            ],
        }  # fmt: skip
        tasks = tuple(dict.fromkeys(t for p in policies for t in p.metadata.tasks))
        meta = replace(
            first,
            ensemble=record,
            tasks=tasks,
            agent_steps=sum(p.metadata.agent_steps for p in policies),
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        return cls._of_members(policies, meta)

    @classmethod
    def _of_members(cls, members: list[FrozenPolicy], meta: PolicyMetadata) -> FrozenPolicy:
        """The ensemble of ``members`` described by ``meta`` (its first member's network and
        statistics where a single policy keeps them), built or loaded."""
        lead = members[0]
        combined = cls(lead.policy, lead.obs_mean, lead.obs_var, lead.clip_obs, lead.epsilon, meta)
        combined.members = tuple(members)
        return combined

    def with_rise_guard(self, on: bool | None) -> FrozenPolicy:
        """This policy, deployed with (or without) the rise guard whatever it was trained
        with (`PolicyMetadata.deploy`; saved with it, so every driver of the file follows it).
        ``on`` None: the policy as it is (the scripts' ``--rise-guard policy``,
        `RISE_GUARD_CHOICES`).

        Raises:
            InputError: ``on`` for a policy that sets its rate's offset (steer mode
                ``absolute``; `hpenv.hyperparams.RiseGuard.check_steer_mode`).
        """
        if on is None:
            return self
        base = self.metadata.base_config() if self.metadata.action_kind == "residual" else None
        if on and base is not None:
            RiseGuard.check_steer_mode(base.steer_mode)
        return self._deployed(rise_guard=bool(on))

    def with_probe_start(self, start: ProbeStart | bool | None) -> FrozenPolicy:
        """This policy, deployed so that each run probes first and starts at the probe's
        rate (`hpenv.base.ProbeStart`; `PolicyMetadata.deploy`, saved with it).

        ``start``: a `ProbeStart`, True (`ProbeStart()`: the suggestion itself), False (no
        probe: the run's own rate) or None (the policy as it is; the scripts'
        ``--probe-start policy``, `probe_start_choice`).

        Raises:
            InputError: A probe start for a layout-2 policy (its runs already probe and
                start at their base).
        """
        if start is None:
            return self
        if start is True:
            start = ProbeStart()
        if start and self.metadata.obs_version == 2:
            raise InputError(
                "this policy reads observation layout 2: its runs already probe and start at "
                "their base schedule; a probe start is for layout-1 policies"
            )
        return self._deployed(probe_start=start.to_dict() if start else None)

    def with_probe_rollback(self, rollback: Rollback | None) -> FrozenPolicy:
        """This policy, deployed with its probe rolled back to ``rollback`` (``"best"``: the
        sweep's lowest-loss state, ``"start"``: the state before it;
        `hpenv.probe.ProbeConfig.rollback`) whatever it was trained with; None: as it is.
        A policy whose runs do not probe is returned as it is."""
        probe = self.metadata.probe_config()
        if rollback is None or probe is None:
            return self
        if rollback not in ("best", "start"):
            raise InputError(f"rollback must be 'best' or 'start', got {rollback!r}")
        return self._deployed(probe=asdict(replace(probe, rollback=rollback)))

    def with_restart(self, restart: RestartConfig | bool | None) -> FrozenPolicy:
        """This policy, deployed so that a run whose first interval blew up starts again
        from its untrained weights at a lower rate (`hpenv.restart`; `PolicyMetadata.deploy`,
        saved with it). ``restart``: a `RestartConfig`, True (`RestartConfig()`), False
        (never) or None (the policy as it is; the scripts' ``--restart policy``)."""
        if restart is None:
            return self
        if restart is True:
            restart = RestartConfig()
        return self._deployed(restart=restart.to_dict() if restart else None)

    def with_fall_hold(self, hold: float | bool | None) -> FrozenPolicy:
        """This policy, deployed so that its rate does not fall below the run's start while
        the validation loss still improves (`hpenv.hyperparams.FallHold`;
        `PolicyMetadata.deploy`, saved with it). ``hold``: a threshold, True (the default
        `hpenv.hyperparams.FALL_HOLD_THRESHOLD`), False (none) or None (the policy as it is;
        the scripts' ``--fall-hold policy``).

        Raises:
            InputError: A hold for a layout-2 policy (its actions are offsets from a base,
                not moves of the rate), or a bad threshold.
        """
        if hold is None:
            return self
        if hold is True:
            hold = FALL_HOLD_THRESHOLD
        if hold is not False and self.metadata.action_kind == "residual":
            raise InputError(
                "the fall hold holds a layout-1 policy's moves of the rate; this policy steers "
                "around a base schedule (layout 2)"
            )
        try:
            threshold = None if hold is False else FallHold(hold).threshold
        except ValueError as exc:
            raise InputError(str(exc)) from None
        return self._deployed(fall_hold=threshold)

    def with_deploy_flags(
        self,
        rise_guard: str = "policy",
        probe_start: str = "policy",
        probe_rollback: str = "policy",
        restart: str = "policy",
        fall_hold: str = "policy",
    ) -> FrozenPolicy:
        """This policy with the scripts' deployment flags applied: ``--rise-guard``
        (`RISE_GUARD_CHOICES`), ``--probe-start`` (`probe_start_choice`),
        ``--probe-rollback`` (`PROBE_ROLLBACK_CHOICES`), ``--restart``
        (`RESTART_CHOICES`) and ``--fall-hold`` (`FALL_HOLD_CHOICES`); each ``"policy"``
        keeps the file's own choice. The one place every script (evaluation, the job driver,
        ensembles, meta-training's written files) turns those flags into deployment settings.

        Raises:
            InputError: A value none of those forms, or a choice the policy refuses
                (`with_rise_guard`, `with_probe_start`, `with_fall_hold`).
        """
        for flag, value, choices in (
            ("--rise-guard", rise_guard, RISE_GUARD_CHOICES),
            ("--probe-rollback", probe_rollback, PROBE_ROLLBACK_CHOICES),
            ("--restart", restart, RESTART_CHOICES),
            ("--fall-hold", fall_hold, FALL_HOLD_CHOICES),
        ):
            if value not in choices:
                raise InputError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")
        policy = self.with_rise_guard(RISE_GUARD_CHOICES[rise_guard])
        policy = policy.with_probe_start(probe_start_choice(probe_start))
        policy = policy.with_probe_rollback(PROBE_ROLLBACK_CHOICES[probe_rollback])
        policy = policy.with_restart(RESTART_CHOICES[restart])
        return policy.with_fall_hold(FALL_HOLD_CHOICES[fall_hold])

    def _deployed(self, **changes: Any) -> FrozenPolicy:
        """This policy with ``changes`` to its `PolicyMetadata.deploy` (same weights)."""
        meta = replace(self.metadata, deploy={**self.metadata.deploy, **changes})
        if self.members:
            return type(self)._of_members(list(self.members), meta)
        return type(self)(
            self.policy, self.obs_mean, self.obs_var, self.clip_obs, self.epsilon, meta
        )

    def normalise(self, obs: np.ndarray) -> np.ndarray:
        """Exactly ``VecNormalize.normalize_obs`` with frozen statistics."""
        scaled = (np.asarray(obs, dtype=np.float64) - self.obs_mean) / np.sqrt(
            self.obs_var + self.epsilon
        )
        return np.clip(scaled, -self.clip_obs, self.clip_obs).astype(np.float32)

    def predict(
        self,
        obs: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Action for a raw (unnormalised) observation, or a batch of them.

        Continuous actions are clipped to [-1, 1], as SB3 does. Recurrent
        policies take and return their LSTM ``state``. An ensemble returns the mean (or
        the median: `reduce`) of its members' (clipped) actions.
        """
        if self.members:
            actions = [m.predict(obs, deterministic=deterministic)[0] for m in self.members]
            combine = np.median if self.reduce == "median" else np.mean
            return combine(actions, axis=0).astype(np.float32), None
        normalised = self.normalise(obs)
        with torch.no_grad():
            if self.recurrent:
                if episode_start is None:
                    batch = 1 if normalised.ndim == 1 else normalised.shape[0]
                    episode_start = np.array([state is None] * batch)
                action, new_state = self.policy.predict(
                    normalised, state, episode_start, deterministic=deterministic
                )
                return action, new_state
            action, _ = self.policy.predict(normalised, deterministic=deterministic)
        return action, None

    def fingerprint(self) -> str:
        """sha256 (hex) of what decides the actions: weights, normalisation, action layout,
        the rise guard, the probe start, a deployed probe's settings, the restart and the
        fall hold.

        The same policy has the same fingerprint whichever file, folder, shipped name or
        copy it was loaded from; its training record (tasks, dates, versions, notes) is
        left out. An ensemble's is that of its members' fingerprints, in order.
        """
        # The rise guard, the probe start, a deployed probe, the restart and the fall hold:
        # each absent leaves the fingerprint as it was before the setting existed.
        settings = " rise_guard" if self.metadata.rise_guard else ""
        start = self.metadata.probe_start
        if start is not None:
            settings += f" probe_start {start.rule} {start.within:g}"
        probe = self.metadata.deploy.get("probe")
        if probe is not None:
            settings += f" probe {json.dumps(probe, sort_keys=True)}"
        restart = self.metadata.deploy.get("restart")
        if restart is not None:
            settings += f" restart {json.dumps(restart, sort_keys=True)}"
        fall_hold = self.metadata.fall_hold
        if fall_hold is not None:
            settings += f" fall_hold {fall_hold!r}"
        if self.members:
            digest = hashlib.sha256(f"ensemble {self.reduce} {self.size}{settings}".encode())
            for member in self.members:
                digest.update(member.fingerprint().encode())
            return digest.hexdigest()
        meta = self.metadata
        layout = {
            "obs": [meta.obs_version, meta.obs_size, meta.frame_stack],
            "actions": [list(meta.tuned), meta.ranges, meta.action_mode],
            "network": [meta.algorithm, meta.policy_kwargs],
            "normalisation": [self.clip_obs, self.epsilon],
        }
        if self.metadata.rise_guard:
            layout["rise_guard"] = True
        if start is not None:
            layout["probe_start"] = start.to_dict()
        if probe is not None:
            layout["probe"] = probe
        if restart is not None:
            layout["restart"] = restart
        if fall_hold is not None:
            layout["fall_hold"] = fall_hold
        digest = hashlib.sha256(json.dumps(layout, sort_keys=True, default=str).encode())
        for name, tensor in sorted(self.policy.state_dict().items()):
            value = tensor.detach().cpu().contiguous()
            digest.update(f"{name} {value.dtype} {tuple(value.shape)}".encode())
            digest.update(value.numpy().tobytes())
        for stats in (self.obs_mean, self.obs_var):
            digest.update(np.ascontiguousarray(stats, dtype=np.float64).tobytes())
        return digest.hexdigest()

    # ------------------------------------------------------------------- files

    def save(self, path: str | Path) -> Path:
        """Write the artifact atomically (an ensemble as `ENSEMBLE_FORMAT`); returns its path."""
        blob = {
            "format": ENSEMBLE_FORMAT if self.members else ARTIFACT_FORMAT,
            "metadata": self.metadata.to_dict(),
            **_weights(self),
            "clip_obs": self.clip_obs,
            "epsilon": self.epsilon,
        }
        if self.members:
            blob["members"] = [_weights(m) for m in self.members[1:]]
        target = Path(path)
        with atomic_open(target, "wb") as fh:
            torch.save(blob, fh)
        return target

    @classmethod
    def from_model(
        cls,
        model: Any,
        obs_rms: Any,
        clip_obs: float,
        epsilon: float,
        *,
        tuned: tuple[str, ...],
        action_mode: ActionMode,
        frame_stack: int = 1,
        env_config: dict[str, Any] | None = None,
        tasks: tuple[str, ...] = (),
        notes: str = "",
        obs_version: int = OBS_VERSION,
    ) -> FrozenPolicy:
        """Freeze an SB3 model and its ``VecNormalize`` statistics (copied, not shared).

        ``obs_version`` is the observation layout it was trained on; its action kind
        follows from it (`ACTION_KINDS`).
        """
        algorithm: AlgorithmName = (
            "recurrent_ppo" if type(model).__name__ == "RecurrentPPO" else "ppo"
        )
        kwargs = dict(model.policy_kwargs)
        activation = kwargs.get("activation_fn", nn.Tanh)
        kwargs["activation_fn"] = activation.__name__
        if kwargs["activation_fn"] not in _ACTIVATIONS:
            raise ValueError(
                f"cannot freeze activation {activation}; use one of {list(_ACTIVATIONS)}"
            )
        if "net_arch" in kwargs and isinstance(kwargs["net_arch"], tuple):
            kwargs["net_arch"] = list(kwargs["net_arch"])
        meta = PolicyMetadata(
            obs_version=obs_version,
            obs_size=len(LAYOUTS[obs_version]),
            action_kind=ACTION_KINDS[obs_version],
            tuned=tuple(tuned),
            ranges={n: asdict(TUNABLES[n]) for n in tuned},
            action_mode=action_mode,
            algorithm=algorithm,
            policy_kwargs=kwargs,
            frame_stack=frame_stack,
            env_config=dict(env_config or {}),
            tasks=tuple(tasks),
            agent_steps=int(model.num_timesteps),
            versions=package_versions(),
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            notes=notes,
        )
        policy = _build_policy(meta)
        policy.load_state_dict(model.policy.state_dict())
        return cls(policy, obs_rms.mean.copy(), obs_rms.var.copy(), clip_obs, epsilon, meta)


def _acting(meta: PolicyMetadata) -> dict[str, Any]:
    """What decides how a policy of ``meta`` acts on a run (an ensemble's members share it):
    its observation and action layout, network, decisions per run, probe, base and rise guard."""
    return {
        "obs_version": meta.obs_version,
        "frame_stack": meta.frame_stack,
        "tuned": tuple(meta.tuned),
        "ranges": meta.ranges,
        "action_mode": meta.action_mode,
        "action_kind": meta.action_kind,
        "policy_kwargs": meta.policy_kwargs,
        "decisions": meta.decisions,
        "probe": meta.probe_config(),
        "base": meta.base_config(),
        "rise_guard": meta.rise_guard,
        "probe_start": meta.probe_start,
        "restart": meta.restart,
    }


def _weights(policy: FrozenPolicy) -> dict[str, Any]:
    """One network's entries of an artifact: its weights and normalisation statistics."""
    return {
        "policy_state": {k: v.detach().cpu() for k, v in policy.policy.state_dict().items()},
        "obs_mean": torch.as_tensor(policy.obs_mean),
        "obs_var": torch.as_tensor(policy.obs_var),
    }


def _build_policy(meta: PolicyMetadata) -> Any:
    obs_space, action_space = spaces_for(meta)
    kwargs = dict(meta.policy_kwargs)
    kwargs["activation_fn"] = _ACTIVATIONS[kwargs.get("activation_fn", "Tanh")]
    if meta.algorithm == "recurrent_ppo":
        from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

        return RecurrentActorCriticPolicy(obs_space, action_space, lambda _: 0.0, **kwargs)
    from stable_baselines3.common.policies import ActorCriticPolicy

    return ActorCriticPolicy(obs_space, action_space, lambda _: 0.0, **kwargs)


def load_policy(path: str | Path) -> FrozenPolicy:
    """Load a frozen policy artifact.

    Raises:
        FileNotFoundError: ``path`` does not exist (a shipped name or a Hub repo id
            loads with `agents.policy.hub.load_pretrained`).
        PolicyLoadError: The file is empty, damaged or not a policy artifact.
        IncompatiblePolicyError: It was written for another observation layout
            or artifact format.
    """
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(
            f"no policy artifact at {target} (load_policy reads an artifact file; "
            "agents.policy.load_pretrained also takes a shipped name such as 'hpenv-lr-v2.1', "
            "a folder in the hub layout or a Hugging Face Hub repo id)"
        )
    try:
        blob = safe_torch_load(target, "policy artifact")
    except UnsafeFileError as exc:
        raise PolicyLoadError(str(exc)) from None
    if not isinstance(blob, dict) or "metadata" not in blob:
        raise PolicyLoadError(
            f"{target} is a torch file but not an hpenv policy artifact (it has no policy "
            "metadata); give a run's policy.pt or best_policy.pt"
        )
    try:
        meta = PolicyMetadata.from_dict(blob["metadata"])
    except Exception as exc:
        raise PolicyLoadError(
            f"{target} is not a readable hpenv policy artifact ({type(exc).__name__}: {exc}). "
            "The file may be truncated or corrupted: copy it again from where it was trained "
            "(the run directory's best_policy.pt or policy.pt)."
        ) from None
    if blob.get("format") not in READABLE_FORMATS:
        raise IncompatiblePolicyError(
            f"{target} has artifact format {blob.get('format')}, this hpenv reads formats "
            f"{', '.join(map(str, READABLE_FORMATS))}; use the hpenv version that wrote it "
            f"({meta.versions.get('hpenv', 'unknown')}) or retrain."
        )
    known = LAYOUTS.get(meta.obs_version)
    if known is None or meta.obs_size != len(known):
        layouts = ", ".join(f"v{v} ({len(f)} features)" for v, f in LAYOUTS.items())
        raise IncompatiblePolicyError(
            f"{target} was trained on observation layout v{meta.obs_version} "
            f"({meta.obs_size} features); this hpenv produces {layouts}. "
            f"Retrain the policy with this version (scripts/train_agent.py) or install hpenv "
            f"{meta.versions.get('hpenv', '(the version that wrote it)')}."
        )
    if meta.action_kind != ACTION_KINDS[meta.obs_version]:
        raise IncompatiblePolicyError(
            f"{target} says its actions are {meta.action_kind!r}, but layout "
            f"v{meta.obs_version} policies act {ACTION_KINDS[meta.obs_version]!r}: it is damaged"
        )
    unknown = [name for name in meta.tuned if name not in TUNABLES]
    if unknown:
        raise IncompatiblePolicyError(f"{target} tunes unknown hyperparameters {unknown}")
    moved = [n for n in meta.tuned if meta.ranges.get(n) != asdict(TUNABLES[n])]
    if moved:
        raise IncompatiblePolicyError(
            f"{target} was trained with other ranges or step sizes for {moved} "
            f"({[meta.ranges.get(n) for n in moved]}); its actions would mean something else now"
        )
    try:  # the probe settings its drivers will read (a deployment choice, or its training's)
        meta.probe_config()  # reads probe_start too
        _ = meta.restart, meta.fall_hold
    except (TypeError, ValueError) as exc:
        raise PolicyLoadError(
            f"{target}: unreadable probe, restart or fall-hold settings ({exc}); "
            "the file is damaged"
        ) from None
    if (blob["format"] == ENSEMBLE_FORMAT) != bool(meta.ensemble):
        raise PolicyLoadError(
            f"{target}: format {blob['format']} but metadata.ensemble is "
            f"{meta.ensemble or 'empty'}: the file is damaged"
        )
    single = replace(meta, ensemble={})
    policy = _load_member(target, blob, single)
    if not meta.ensemble:
        return policy
    others = blob.get("members")
    if not isinstance(others, list) or len(others) + 1 != meta.ensemble.get("size"):
        raise PolicyLoadError(
            f"{target}: an ensemble of {meta.ensemble.get('size')} must hold "
            f"{meta.ensemble.get('size', 1) - 1} further members; the file is damaged"
        )
    if meta.ensemble.get("reduce", "mean") not in ENSEMBLE_REDUCES:
        raise IncompatiblePolicyError(
            f"{target}: an ensemble that combines its members by "
            f"{meta.ensemble.get('reduce')!r}; this hpenv knows {', '.join(ENSEMBLE_REDUCES)} "
            "(upgrade hpenv, or rebuild the ensemble from its members)"
        )
    members = [policy]
    for other in others:
        if not isinstance(other, dict):
            raise PolicyLoadError(f"{target}: an ensemble member is not a table of weights")
        members.append(_load_member(target, {**blob, **other}, single))
    return FrozenPolicy._of_members(members, meta)


def _load_member(target: Path, blob: dict[str, Any], meta: PolicyMetadata) -> FrozenPolicy:
    """One network of an artifact: its weights and statistics, checked against ``meta``."""
    try:
        policy = _build_policy(meta)
        policy.load_state_dict(blob["policy_state"])
    except Exception as exc:
        raise PolicyLoadError(
            f"{target}: policy weights do not match its metadata ({exc})"
        ) from exc
    mean, var, clip_obs, epsilon = _normalisation(target, blob, meta.obs_size * meta.frame_stack)
    return FrozenPolicy(policy, mean, var, clip_obs, epsilon, meta)


def _normalisation(
    target: Path, blob: dict[str, Any], size: int
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The artifact's observation statistics, checked: present, of the right shape, finite."""
    missing = [k for k in ("obs_mean", "obs_var", "clip_obs", "epsilon") if k not in blob]
    if missing:
        raise PolicyLoadError(f"{target} lacks its observation normalisation ({missing})")
    stats = {}
    for key in ("obs_mean", "obs_var"):
        value = blob[key]
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != (size,):
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value)
            raise PolicyLoadError(
                f"{target}: {key} must be a tensor of shape ({size},), got {shape}"
            )
        array = value.double().numpy()
        if not np.isfinite(array).all() or (key == "obs_var" and (array < 0).any()):
            raise PolicyLoadError(f"{target}: {key} holds NaN, infinite or negative values")
        stats[key] = array
    numbers = []
    for key in ("clip_obs", "epsilon"):
        value = blob[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise PolicyLoadError(f"{target}: {key} must be a positive number, got {value!r}")
        if not math.isfinite(value):
            raise PolicyLoadError(f"{target}: {key} must be finite, got {value!r}")
        numbers.append(float(value))
    return stats["obs_mean"], stats["obs_var"], numbers[0], numbers[1]


class PolicyActor:
    """A `FrozenPolicy` acting over one episode at a time.

    Stacks the last ``frame_stack`` observations exactly as SB3's
    ``VecFrameStack`` does (zeros before the first one) and carries a recurrent
    policy's LSTM state. Call `reset` at the start of every episode.
    """

    def __init__(self, policy: FrozenPolicy, deterministic: bool = True) -> None:
        self.policy = policy
        self.deterministic = deterministic
        self.reset()

    def reset(self) -> None:
        meta = self.policy.metadata
        self._size = meta.obs_size
        self._stack = np.zeros(meta.obs_size * meta.frame_stack, dtype=np.float32)
        self._state: tuple[np.ndarray, ...] | None = None
        self._start = True

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if np.shape(obs) != (self._size,):
            raise IncompatiblePolicyError(
                f"this policy reads observation layout v{self.policy.metadata.obs_version} "
                f"({self._size} features), the run produced {np.shape(obs)}: drive it with a "
                f"run of its layout (layout 2 needs the probe: HPTune-*-v1 environments)"
            )
        self._stack = np.roll(self._stack, -self._size)
        self._stack[-self._size :] = obs
        action, self._state = self.policy.predict(
            self._stack[None],
            state=self._state,
            episode_start=np.array([self._start]),
            deterministic=self.deterministic,
        )
        self._start = False
        return np.asarray(action)[0]

    def state_dict(self) -> dict[str, Any]:
        """Frame stack, recurrent state and episode-start flag (for resuming a controller)."""
        state = None if self._state is None else [np.asarray(s).tolist() for s in self._state]
        return {"stack": self._stack.tolist(), "state": state, "start": self._start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._stack = np.asarray(state["stack"], dtype=np.float32)
        saved = state["state"]
        self._state = None if saved is None else tuple(np.asarray(s, np.float32) for s in saved)
        self._start = bool(state["start"])
