"""`MetaTrainConfig`: every option of a meta-training run, and resuming a run's own options.

`episode_config` turns a run's options into the one `EpisodeConfig` that
every training environment of the run gets (subprocess and in-process
`HPTuneEnv` workers, a population, Ray actors).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agents.cli import check_threads, option, threads_option
from agents.metatrain.suite import DEFAULT_EVAL_TASKS, DEFAULT_TRAIN_TASKS, check_suite
from agents.policy.artifact import (
    FALL_HOLD_CHOICES,
    FALL_HOLD_HELP,
    PROBE_START_HELP,
    RESTART_CHOICES,
    RESTART_HELP,
    RISE_GUARD_CHOICES,
    AlgorithmName,
    probe_start_choice,
)
from hpenv.base import STEER_MODES, BaseConfig, ProbeStart, SteerMode
from hpenv.episode import Around
from hpenv.episode_config import EpisodeConfig
from hpenv.errors import InputError
from hpenv.hyperparams import FALL_HOLD_THRESHOLD, ActionMode, OptimizerName, check_tuned
from hpenv.io import read_json_object
from hpenv.plan import FIDELITY, Fidelity, split_budget
from hpenv.probe import SUGGESTION_RULES, ProbeConfig, SuggestionRule
from hpenv.rewards import PAIRED_REWARDS, RewardName
from hpenv.tasks import SyntheticFamily

#: How the training environments are stepped (see `agents.metatrain.vec_env`).
VecEnvName = Literal["subprocess", "dummy", "population", "ray"]
#: Where the environments on Ray actors get their tasks' data (see `agents.metatrain.vec_env`).
RayDataName = Literal["object_store", "data_dir"]
#: PPO's learning rate over a run (see `agents.metatrain.model.ppo_learning_rate`).
LrScheduleName = Literal["constant", "linear"]
#: How PPO reads an episode's end at its budget (`agents.metatrain.vec_env.BudgetEndAsTermination`).
BudgetEndName = Literal["truncation", "termination"]
#: Options that say where a run executes, not what it computes: a resume may change them.
PLACEMENT_OPTIONS = (
    "ray_address", "ray_cpus_per_env", "ray_gpus_per_env", "ray_data", "ensemble_jobs",
)  # fmt: skip


@dataclass(frozen=True)
class MetaTrainConfig:
    """Configuration of one meta-training run (every field is a CLI flag)."""

    train_tasks: tuple[str, ...] = option(
        "tasks to meta-train on ('synthetic' = a new generated task per episode); "
        "tasks whose data is missing are skipped with a message",
        default=DEFAULT_TRAIN_TASKS,
    )
    eval_tasks: tuple[str, ...] = option(
        "held-out tasks for periodic evaluation and best-policy selection "
        "('synthetic-heldout' = fixed generated tasks training never sees)",
        default=DEFAULT_EVAL_TASKS,
    )
    total_steps: int = option("agent steps (decisions) in total", default=8_000)
    n_envs: int = option(
        "parallel environments (4 on 2 cores: stepping is lock-step, so extra workers "
        "fill the cores while one waits on a slow task)",
        default=4,
    )
    vec_env: VecEnvName = option(
        "'subprocess' (one process per env, 1 torch thread each), 'dummy' (in-process), "
        "'population' (n-envs members of one architecture as one batched step; e.g. 64) or "
        "'ray' (one Ray actor per env, on a cluster: see --ray-address)",
        default="subprocess",
    )
    ray_address: str | None = option(
        "--vec-env ray: the cluster's head, HOST:6379 ('auto': the one `ray start` began on "
        "this machine, or RAY_ADDRESS; default: a Ray instance started on this machine)",
        default=None,
    )
    ray_cpus_per_env: float = option(
        "--vec-env ray: CPUs each environment actor asks Ray for", default=1.0
    )
    ray_gpus_per_env: float = option(
        "--vec-env ray: GPUs each environment actor asks Ray for (a fraction shares a GPU, "
        "e.g. 0.25 with --env-device auto)",
        default=0.0,
    )
    ray_members_per_actor: int = option(
        "--vec-env ray: 1 = each actor is one HPTuneEnv; k > 1 = each actor trains k population "
        "members as one batched step (n-envs must be a multiple of k)",
        default=1,
    )
    ray_data: RayDataName = option(
        "--vec-env ray: 'object_store' (this process loads each task's data once and shares it "
        "through Ray's object store) or 'data_dir' (every actor loads it from --data-dir / "
        "HPENV_DATA_DIR, a path every node must see, e.g. a shared filesystem)",
        default="object_store",
    )
    tuned: tuple[str, ...] = option("hyperparameters the agent controls", default=("lr",))
    action_mode: ActionMode = option("action space", default="continuous")
    decisions: int = option("decisions per episode", default=20)
    budget: int | None = option(
        "episode budget in samples for every task (default: per-task CPU fidelity)", default=None
    )
    reward: RewardName = option("reward (see hpenv.rewards)", default="log_val_loss")
    optimizers: tuple[OptimizerName, ...] = option(
        "each episode of a registered task draws the user's optimizer from these (at its "
        "usual rate; sgd with momentum 0.9) instead of the task's (default: the task's); the "
        "synthetic family's are --synthetic-optimizers",
        default=(),
    )
    layout: int = option(
        "observation layout: 1, 2 (a probe before the warm-up, the rate steered around "
        "the base schedule read off it: hpenv.probe, hpenv.base; pair it with --reward "
        "paired_log_val_loss) or 3 (layout 1 and whether the run's optimizer is SGD: "
        "hpenv.observation.OPTIMIZER_FEATURES; pair it with --optimizers)",
        default=1,
    )
    probe_min_steps: int = option(
        "--layout 2 (or --probe-start): the probe's fewest steps "
        "(hpenv.probe.ProbeConfig.min_steps); a run shorter than 4x this has no probe",
        default=ProbeConfig.min_steps,
    )
    probe_start: str = option(
        "--layout 1 or 3: each episode probes first and starts at the probe's rate "
        "(hpenv.base.ProbeStart): 'off', 'on' (the min/30 reading), a rule, either with ':F' "
        "to keep the drawn rate when within a factor F of it; the policy records it and "
        "meets it when deployed",
        default="off",
    )
    base_short_rule: SuggestionRule | None = option(
        "--layout 2: the base's reading of the probe on runs shorter than "
        "--base-short-steps optimizer steps (hpenv.base.BaseConfig.short_rule; default: "
        "the base's rule on every run)",
        choices=SUGGESTION_RULES,
        default=None,
    )
    base_short_steps: int = option(
        "--layout 2: runs of fewer optimizer steps than this read --base-short-rule",
        default=BaseConfig.short_steps,
    )
    steer_range: float = option(
        "--layout 2: the policy's rate stays within this factor of the base, either way "
        "(hpenv.base.BaseConfig.steer_range)",
        default=BaseConfig.steer_range,
    )
    steer_mode: SteerMode = option(
        "--layout 2: 'increment' (each action moves the rate's offset from the base by at "
        "most x3) or 'absolute' (each action sets the offset within --steer-range) "
        "(hpenv.base.BaseConfig.steer_mode)",
        choices=STEER_MODES,
        default=BaseConfig.steer_mode,
    )
    unprobed_steer_range: float | None = option(
        "--layout 2: the range of runs the probe did not anchor (no probe, or one that "
        "suggested nothing: the base is the run's starting rate); default: --steer-range "
        "(hpenv.base.BaseConfig.unprobed_steer_range)",
        default=None,
    )
    reference_group: int = option(
        "--reward paired_log_val_loss with the population engine: policy members per hidden "
        "reference member (the base schedule's run they are paired with); members of a group "
        "share task, seed and start, so a population of N members trains N + N/k runs "
        "(--n-envs, or --ray-members-per-actor on Ray, must be a multiple of it)",
        default=4,
    )
    synthetic_optimizers: tuple[OptimizerName, ...] = option(
        "optimizers of the synthetic family's tasks (each task draws one; sgd, adam, adamw)",
        default=("adam",),
    )
    synthetic_conv: float = option(
        "fraction of the synthetic family's tasks that are convolutional (a small CNN on "
        "generated images; hpenv.tasks.synthetic)",
        default=0.0,
    )
    synthetic_text: float = option(
        "fraction of the synthetic family's tasks, among those not convolutional, that are "
        "token tasks (generated token sequences through an embedding and a 1-D convolution; "
        "hpenv.tasks.synthetic)",
        default=0.0,
    )
    synthetic_steps: tuple[int, ...] = option(
        "LOW,HIGH: the synthetic family's budgets in optimizer steps, drawn log-uniformly "
        "(a task still trains at least one epoch; with the default probe, runs under 80 "
        "steps have none)",
        default=SyntheticFamily.steps,
    )
    rise_guard: bool = option(
        "hold the rate's rises until the validation loss improves on the loss of the last "
        "rise (hpenv.hyperparams.RiseGuard); the policy records it and meets it when deployed",
        default=False,
    )
    fall_hold: bool = option(
        "hold the rate's falls below the episode's start while the validation loss improves "
        "on its best by more than 1 percent (hpenv.hyperparams.FallHold, layout 1); the "
        "policy records it and meets it when deployed",
        default=False,
    )
    deploy_probe_start: str = option(
        "the probe start of the policies the run writes (as --deploy-rise-guard): "
        + PROBE_START_HELP,
        default="policy",
    )
    deploy_restart: str = option(
        "the restart of the policies the run writes (as --deploy-rise-guard; "
        "FrozenPolicy.with_restart): "
        + RESTART_HELP
        + "; meta-training's own episodes and held-out scores run without it",
        default="policy",
        choices=tuple(RESTART_CHOICES),
    )
    deploy_fall_hold: str = option(
        "the fall hold of the policies the run writes (as --deploy-rise-guard; "
        "FrozenPolicy.with_fall_hold): "
        + FALL_HOLD_HELP
        + "; meta-training's own episodes and held-out scores follow --fall-hold",
        default="policy",
        choices=tuple(FALL_HOLD_CHOICES),
    )
    deploy_rise_guard: str = option(
        "the rise guard of the policies the run writes (policy.pt, best_policy.pt; with "
        "--ensemble the ensemble too) when deployed: 'policy' (as trained, --rise-guard), "
        "'on' or 'off' (FrozenPolicy.with_rise_guard); the run's held-out selection follows "
        "the training setting",
        default="policy",
        choices=tuple(RISE_GUARD_CHOICES),
    )
    lr_scale: float = option(
        "each episode's optimizer trains at a hidden multiple of the rate the policy sets "
        "and sees, drawn log-uniformly in [1/this, this] (EpisodeConfig.lr_scale), so the "
        "absolute rate stops telling where a task's best rate lies; 1: none (layout 1 or 3, "
        "no probe start; --vec-env subprocess or dummy)",
        default=1.0,
    )
    lr_below: float = option("initial lr drawn down to task default / this", default=100.0)
    lr_above: float = option("initial lr drawn up to task default * this", default=30.0)
    algorithm: AlgorithmName = option(
        "'ppo' (MLP policy) or 'recurrent_ppo' (LSTM policy, sb3-contrib, ~10x slower)",
        default="ppo",
    )
    frame_stack: int = option("stack the last N observations (cheap memory)", default=1)
    n_steps: int = option("PPO rollout length per env (a few episodes)", default=64)
    batch_size: int = option("PPO minibatch size", default=64)
    n_epochs: int = option("PPO epochs per update", default=10)
    learning_rate: float = option("PPO learning rate", default=3e-4)
    lr_schedule: LrScheduleName = option(
        "PPO learning rate over the run: 'constant', or 'linear' from --learning-rate down to "
        "0 at --total-steps (a resume that extends --total-steps stretches it)",
        default="constant",
    )
    gamma: float = option("discount factor, in (0, 1]", default=0.99)
    budget_end: BudgetEndName = option(
        "how PPO reads an episode's end at its budget: 'truncation' (SB3's time-limit "
        "handling: the last reward gets gamma x the value of the last observation), or "
        "'termination' (the return ends there: the run is over and its progress is in the "
        "observation; agents.metatrain.vec_env.BudgetEndAsTermination); a divergence ends "
        "it either way",
        default="truncation",
    )
    gae_lambda: float = option("GAE lambda", default=0.95)
    clip_range: float = option("PPO clip range", default=0.2)
    ent_coef: float = option("entropy bonus", default=0.0)
    net_arch: tuple[int, ...] = option("hidden layers of policy and value nets", default=(64, 64))
    log_std_init: float = option("initial log std of the Gaussian policy", default=-0.5)
    clip_obs: float = option("VecNormalize observation clip", default=10.0)
    eval_every: int = option("agent steps between held-out evaluations (0: never)", default=2_000)
    eval_seeds: tuple[int, ...] = option("seeds of each held-out evaluation", default=(0, 1))
    checkpoint_every: int = option("agent steps between checkpoints", default=1_000)
    device: str = option("device of the agent's networks", default="cpu")
    threads: int = threads_option()
    env_device: str = option(
        "device the environments train on ('auto' = CUDA if any)", default="cpu"
    )
    data_dir: str | None = option("local data directory (default HPENV_DATA_DIR)", default=None)
    seed: int = option("seed of the agent and the environments", default=0)
    ensemble: int = option(
        "meta-train this many seeds (--seed, --seed + 1, ...) one after another, each a "
        "whole run in OUT/s<seed>/, and write their ensemble (each member's held-out-selected "
        "policy, acting by the mean of their actions: agents.policy.FrozenPolicy.ensemble) "
        "as OUT/policy.pt; 1: one run (`make train` trains 5 of 4,800 agent steps)",
        default=1,
    )
    ensemble_jobs: int = option(
        "with --ensemble: train this many members at once, each in a process of its own "
        "(its output in OUT/s<seed>/train.log; one thread each with --threads 1); 1: one "
        "after another in this process. Each member is the same run either way; on 2 cores "
        "3 at once trained `make train`'s five in 9.6 min instead of 11.6 (docs/benchmarks.md)",
        default=1,
    )
    out_dir: str | None = option("run directory (default logs/meta-<time>)", default=None)
    resume: bool = option("continue the run in out_dir from its latest checkpoint", default=False)

    def __post_init__(self) -> None:
        check_threads(self.threads)
        if self.layout not in (1, 2, 3):
            raise InputError(f"layout must be 1, 2 or 3, got {self.layout}")
        positive = (
            "total_steps", "n_envs", "decisions", "n_steps", "batch_size", "n_epochs",
            "reference_group", "ensemble", "ensemble_jobs",
        )  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {self.frame_stack}")
        if not 0.0 < self.gamma <= 1.0:
            raise InputError(f"gamma must be in (0, 1], got {self.gamma}")
        if not self.train_tasks:
            raise ValueError("train_tasks is empty")
        check_suite(self.train_tasks, "train_tasks")
        check_suite(self.eval_tasks, "eval_tasks")
        check_tuned(self.tuned)
        if self.budget is not None:
            split_budget(self.budget, self.decisions)  # the environments' own check, now
        overlap = set(self.train_tasks) & set(self.eval_tasks)
        if overlap:
            raise ValueError(f"eval_tasks must be held out from train_tasks; both list {overlap}")
        if "synthetic" in self.eval_tasks:
            raise ValueError(
                "eval_tasks needs fixed tasks: use 'synthetic-heldout', not 'synthetic'"
            )
        if self.resume and self.out_dir is None:
            raise ValueError("resume needs out_dir: the run directory to continue")
        if self.algorithm == "recurrent_ppo" and self.frame_stack > 1:
            raise ValueError("use frame_stack or recurrent_ppo, not both")
        batched = self.vec_env == "population" or (
            self.vec_env == "ray" and self.ray_members_per_actor > 1
        )
        if batched and "batch_size" in self.tuned:
            raise ValueError(
                "the population engine trains its members at one shared batch size, so it "
                "cannot tune batch_size: use --vec-env subprocess (or dummy, or ray with one "
                f"member per actor) with --tuned {','.join(self.tuned)}"
            )
        members = self.n_envs if self.vec_env == "population" else self.ray_members_per_actor
        if batched and self.reward in PAIRED_REWARDS and members % self.reference_group:
            raise ValueError(
                f"the population's {members} members (--n-envs, or --ray-members-per-actor on "
                f"Ray) must be a multiple of --reference-group ({self.reference_group})"
            )
        self.synthetic_family()  # checks the family's settings
        if self.lr_scale != 1.0 and self.vec_env in ("population", "ray"):
            raise InputError(
                "--lr-scale is drawn by HPTuneEnv's episodes: use --vec-env subprocess or dummy"
            )
        if self.synthetic_text > 0 and batched:
            raise InputError(
                "--synthetic-text's token tasks train through an embedding, which the population "
                "engine does not batch: use --vec-env subprocess or dummy (or ray with "
                "--ray-members-per-actor 1)"
            )
        if self.fall_hold and self.layout == 2:
            raise InputError(
                "--fall-hold holds a layout-1 policy's moves of the rate; a layout-2 run steers "
                "around its base (use --layout 1)"
            )
        for name in ("probe_start", "deploy_probe_start"):
            choice = probe_start_choice(getattr(self, name))
            if choice and self.layout == 2:
                raise InputError(
                    f"{name.replace('_', '-')} is for --layout 1: a layout-2 run starts at its base"
                )
            if name == "probe_start" and choice is None:
                raise InputError("probe-start takes 'off', 'on' or a rule, not 'policy'")
        try:  # the probe's and the base's own checks (episode_config builds them)
            ProbeConfig(min_steps=self.probe_min_steps)
        except ValueError as exc:
            raise InputError(f"probe_min_steps: {exc}") from None
        try:
            BaseConfig(
                short_rule=self.base_short_rule,
                short_steps=self.base_short_steps,
                steer_range=self.steer_range,
                unprobed_steer_range=self.unprobed_steer_range,
                steer_mode=self.steer_mode,
            )
        except ValueError as exc:
            raise InputError(
                "base_short_rule, base_short_steps, steer_range, unprobed_steer_range, "
                f"steer_mode: {exc}"
            ) from None
        self._check_ray()

    def synthetic_family(self) -> SyntheticFamily:
        """The family the suite name ``synthetic`` draws from (--synthetic-optimizers,
        --synthetic-conv, --synthetic-text, --synthetic-steps)."""
        steps = self.synthetic_steps
        if len(steps) != 2 or not 1 <= steps[0] <= steps[1]:
            raise InputError(
                "synthetic_steps must be LOW,HIGH with 1 <= LOW <= HIGH, got "
                f"{','.join(map(str, steps))}"
            )
        low, high = steps
        return SyntheticFamily(
            optimizers=self.synthetic_optimizers,
            conv_fraction=self.synthetic_conv,
            text_fraction=self.synthetic_text,
            steps=(low, high),
        )

    def _check_ray(self) -> None:
        if self.vec_env != "ray":
            if self.ray_address is not None:
                raise ValueError("--ray-address needs --vec-env ray")
            return
        if not self.ray_cpus_per_env >= 0 or not self.ray_gpus_per_env >= 0:
            raise ValueError("ray_cpus_per_env and ray_gpus_per_env must be >= 0")
        if self.ray_cpus_per_env == 0 and self.ray_gpus_per_env == 0:
            raise ValueError("an actor must ask for some resource: ray_cpus_per_env > 0")
        k = self.ray_members_per_actor
        if k < 1 or self.n_envs % k:
            raise ValueError(
                f"n_envs ({self.n_envs}) must be a multiple of ray_members_per_actor ({k} >= 1)"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def episode_config(
    config: MetaTrainConfig, fidelity: Mapping[str, Fidelity] | None = None
) -> EpisodeConfig:
    """The episode settings of every training environment of the run ``config``.

    The starting learning rate is drawn from [default / ``lr_below``, default *
    ``lr_above``] (by default `agents.metatrain.population_vec.META_INITIAL`), so
    that meta-training covers runs started 100x too low or 30x too high. Each
    task runs at its CPU fidelity: ``fidelity`` (task name -> run size, e.g.
    adaptation's cheaper episodes), default `hpenv.plan.FIDELITY`; a ``budget``
    (samples) replaces every task's fidelity.
    """
    table = FIDELITY if fidelity is None else fidelity
    choice = probe_start_choice(config.probe_start)
    start = choice if isinstance(choice, ProbeStart) else None
    return EpisodeConfig(
        tuned=config.tuned,
        action_mode=config.action_mode,
        budget=config.budget,
        decisions=config.decisions,
        reward=config.reward,
        initial={"lr": Around(config.lr_below, config.lr_above)},
        fidelity={} if config.budget is not None else table,
        optimizers=config.optimizers,
        rise_guard=config.rise_guard,
        fall_hold=FALL_HOLD_THRESHOLD if config.fall_hold else None,
        probe=(
            ProbeConfig(min_steps=config.probe_min_steps)
            if config.layout == 2 or start is not None
            else None
        ),
        probe_start=start,
        observe_optimizer=config.layout == 3,
        lr_scale=config.lr_scale,
        base=(
            BaseConfig(
                short_rule=config.base_short_rule,
                short_steps=config.base_short_steps,
                steer_range=config.steer_range,
                unprobed_steer_range=config.unprobed_steer_range,
                steer_mode=config.steer_mode,
            )
            if config.layout == 2
            else None
        ),
    )


def env_metadata(config: MetaTrainConfig) -> dict[str, Any]:
    """The episode options a frozen policy records (`PolicyMetadata.env_config`): plain
    values, from which `agents.metatrain.adapt_config.session_config` rebuilds them."""
    episode = episode_config(config)
    return {
        "tuned": config.tuned,
        "action_mode": config.action_mode,
        "decisions": config.decisions,
        "budget": config.budget,
        "reward": config.reward,
        "lr_below": config.lr_below,
        "lr_above": config.lr_above,
        "device": config.env_device,
        "synthetic_optimizers": config.synthetic_optimizers,
        "synthetic_conv": config.synthetic_conv,
        "synthetic_text": config.synthetic_text,
        "synthetic_steps": config.synthetic_steps,
        "layout": config.layout,
        "optimizers": config.optimizers,
        "rise_guard": config.rise_guard,
        "fall_hold": episode.fall_hold,
        "lr_scale": config.lr_scale,
        # the return PPO maximised: its discount and how it read the budget's end
        "gamma": config.gamma,
        "budget_end": config.budget_end,
        **_probe_and_base(episode),
    }


def _probe_and_base(episode: EpisodeConfig) -> dict[str, Any]:
    """A run's probe, base and probe start settings, as plain values
    (`PolicyMetadata.probe_config`, ``base_config`` and ``probe_start`` read them back)."""
    values: dict[str, Any] = {}
    if episode.probe is not None:
        values["probe"] = dataclasses.asdict(episode.probe)
    if episode.base is not None:
        values["base"] = dataclasses.asdict(episode.base)
    if episode.probe_start is not None:
        values["probe_start"] = episode.probe_start.to_dict()
    return values


def default_out_dir(config: MetaTrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    seeds = f"s{config.seed}" + (f"x{config.ensemble}" if config.ensemble > 1 else "")
    return Path("logs") / f"meta-{config.algorithm}-{seeds}-{stamp}"


def check_resumable(config: MetaTrainConfig, saved: dict[str, Any]) -> None:
    """Refuse to resume with options that differ from the run's (``total_steps`` may grow).

    Raises:
        InputError: Naming every differing option with the run's and the given value.
    """
    exempt = ("resume", "total_steps", "out_dir", *PLACEMENT_OPTIONS)
    given = json.loads(json.dumps(config.to_dict()))
    # An option the run's config.json lacks is newer than the run: the run had its default.
    defaults = json.loads(json.dumps(_defaults()))
    changed = [
        f"--{k.replace('_', '-')}: the run has {saved.get(k, defaults[k])!r}, "
        f"this command gives {v!r}"
        for k, v in given.items()
        if k not in exempt and v != saved.get(k, defaults[k])
    ]
    if changed:
        raise InputError(
            "cannot resume with a changed configuration (drop these options, or start a new "
            "run): " + "; ".join(changed)
        )


def _defaults() -> dict[str, Any]:
    return {
        f.name: f.default
        for f in dataclasses.fields(MetaTrainConfig)
        if f.default is not dataclasses.MISSING
    }


def resume_config(out_dir: str | Path, overrides: dict[str, Any]) -> MetaTrainConfig:
    """The configuration of the run in ``out_dir``, with ``overrides`` (given flags) checked.

    Options not given come from the run's ``config.json``; a given option must
    equal the run's, except ``total_steps`` (extend the run explicitly) and
    the placement options (`PLACEMENT_OPTIONS`: where the run executes, e.g.
    ``--ray-address``), which are not carried over: give them again.
    """
    saved = {k: v for k, v in read_run_config(out_dir).items() if k not in PLACEMENT_OPTIONS}
    config = config_from_dict({**saved, **overrides, "out_dir": str(out_dir), "resume": True})
    check_resumable(config, saved)
    return config


def read_run_config(out_dir: str | Path) -> dict[str, Any]:
    """The options in the ``config.json`` of the run in ``out_dir``, as JSON values.

    Raises:
        FileNotFoundError: ``out_dir`` holds no ``config.json``.
        InputError: It is not valid JSON or not an object (naming the file).
    """
    path = Path(out_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"--resume: {path} not found; is {out_dir} a meta-training run?")
    return read_json_object(path, "meta-training run's options")


def config_from_dict(values: dict[str, Any]) -> MetaTrainConfig:
    """A `MetaTrainConfig` from JSON values (lists become tuples); unknown keys refused."""
    fields = {f.name: f for f in dataclasses.fields(MetaTrainConfig)}
    unknown = set(values) - set(fields)
    if unknown:
        raise InputError(f"unknown meta-training options {sorted(unknown)}")
    converted: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in values.items()
    }
    return MetaTrainConfig(**converted)
