"""Drive a full training job of a registered task with a frozen policy.

`drive_task` is the library behind ``scripts/run_policy.py``: a `TrainingRun`
of the task's real budget (or one given), driven by the policy through
`agents.deploy.run_driver.TrainingRunDriver`, a progress bar, TensorBoard logs,
a checkpoint at every decision (atomic) that ``resume`` continues from, and the
final metrics as JSON.

The driver applies every hyperparameter the policy tunes, **batch size
included** (and dropout), which a `agents.deploy.controller.HyperController` on
someone else's training loop cannot. The budget is counted in training samples
(``epochs`` x the train split) and planned by `hpenv.plan` as in
`hpenv.env.HPTuneEnv`, so batch-size decisions change the number of optimizer
steps, not the samples trained. A layout-2 policy's job starts as its episodes did
(`hpenv.base.probe_and_base`): the probe (its samples count against the budget),
then the base its rate steers around; both are saved with the checkpoint, so a
resumed job does not probe again. A layout-1 policy with a probe start
(`hpenv.base.ProbeStart`) probes the same way and starts at the probe's rate.
``rise_guard``, ``probe_start``, ``probe_rollback``, ``restart`` and ``fall_hold`` deploy the
policy with other settings than its file's
(`agents.policy.artifact.FrozenPolicy.with_deploy_flags`, as ``scripts/evaluate.py`` does);
they are saved with the job's options.
"""

from __future__ import annotations

import json
import time
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agents.cli import check_threads, option, threads_option
from agents.deploy.run_driver import TrainingRunDriver, plan_for
from agents.policy.artifact import (
    FrozenPolicy,
    fall_hold_option,
    probe_rollback_option,
    probe_start_choice,
    probe_start_option,
    restart_option,
    rise_guard_option,
)
from agents.policy.hub import DEFAULT_POLICY_NAME, load_pretrained
from agents.stopping import GracefulStop, JobInterrupted
from hpenv.base import BaseSchedule, probe_and_base
from hpenv.errors import InputError
from hpenv.io import atomic_torch_save, atomic_write_json, read_json_object, safe_torch_load
from hpenv.plan import Fidelity, budget_samples
from hpenv.probe import ProbeResult
from hpenv.tasks import get_task, list_tasks
from hpenv.training import TrainingRun, resolve_device


@dataclass(frozen=True)
class DriveConfig:
    """One job: which task, which policy, how long, where (every field is a CLI flag)."""

    task: str = option("registered task to train", choices=list_tasks())
    out_dir: str | None = option(
        "where logs, checkpoint and result go (default logs/run-<task>-s<seed>-<time>)",
        default=None,
    )
    policy: str = option(
        "policy: an artifact file, a folder in the hub layout, a shipped name or a Hugging "
        "Face Hub repo id (owner/name)",
        default=DEFAULT_POLICY_NAME,
    )
    rise_guard: str = rise_guard_option()
    probe_start: str = probe_start_option()
    probe_rollback: str = probe_rollback_option()
    restart: str = restart_option()
    fall_hold: str = fall_hold_option()
    model: str | None = option("model variant (default: the task's)", default=None)
    epochs: float | None = option("budget in passes over the train split", default=None)
    lr: float | None = option("starting learning rate (default: the task's)", default=None)
    subset: float | None = option("train on this fraction of the train split", default=None)
    seed: int = option("seed of the run", default=0)
    device: str = option("training device: auto, cpu, cuda, ...", default="auto")
    threads: int = threads_option()
    data_dir: str | None = option("local data directory (default HPENV_DATA_DIR)", default=None)
    resume: bool = option("continue the job in --out-dir (its options are reused)", default=False)

    def __post_init__(self) -> None:
        check_threads(self.threads)
        probe_start_choice(self.probe_start)  # a bad value fails before anything loads
        if not self.task:
            raise ValueError("--task is required (or --resume with --out-dir)")
        task = get_task(self.task)  # an unknown name lists the known ones
        if self.epochs is not None and not self.epochs > 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if self.lr is not None:
            task.defaults.replace(lr=self.lr)  # the run's own check of the value
        Fidelity(subset=self.subset)  # a fraction in (0, 1]
        if self.resume and self.out_dir is None:
            raise ValueError("resume needs out_dir: the job directory to continue")

    def resolved_out_dir(self) -> Path:
        if self.out_dir is not None:
            return Path(self.out_dir)
        return Path("logs") / f"run-{self.task}-s{self.seed}-{time.strftime('%Y%m%d-%H%M%S')}"

    def saved(self) -> dict[str, Any]:
        """The job's options as written to ``config.json`` (``resume`` and ``out_dir`` aside)."""
        return {k: v for k, v in asdict(self).items() if k not in ("resume", "out_dir")}


#: The options' defaults: what a job written before an option existed ran with.
_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in fields(DriveConfig) if f.default is not MISSING
}


def resume_drive_config(out_dir: str | Path, overrides: dict[str, Any]) -> DriveConfig:
    """The configuration of the job in ``out_dir``; ``overrides`` (given flags) must match it.

    Raises:
        FileNotFoundError: ``out_dir`` holds no job.
        InputError: Its ``config.json`` is unreadable, or a given option differs from
            the job's (naming it and both values).
    """
    path = Path(out_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no job to continue in {out_dir} ({path} not found)")
    saved = read_json_object(path, "job's options")
    unknown = set(saved) - set(DriveConfig.__dataclass_fields__)
    if unknown:
        raise InputError(f"{path}: unknown job options {sorted(unknown)}")
    changed = [
        f"--{k.replace('_', '-')}: the job has {saved.get(k)!r}, this command gives {v!r}"
        for k, v in overrides.items()
        if k not in ("resume", "out_dir") and v != saved.get(k, _DEFAULTS.get(k))
    ]
    if changed:
        raise InputError("cannot resume with different options: " + "; ".join(changed))
    return DriveConfig(**saved, out_dir=str(out_dir), resume=True)


def drive_task(config: DriveConfig, policy: FrozenPolicy | None = None) -> dict[str, Any]:
    """Train ``config.task`` with a policy setting the hyperparameters; returns the result.

    SIGINT and SIGTERM stop the job after the current interval, whose
    checkpoint is written: `JobInterrupted` is raised with the line saying how
    to continue.

    Args:
        config: The job.
        policy: A loaded policy; default: load ``config.policy``.

    Raises:
        FileNotFoundError: ``resume`` without a checkpoint, or the task's data or the
            policy is missing.
        InputError: A new job in a directory that holds one, an unreadable
            checkpoint or policy, a device this machine lacks, or resuming with other
            options. Nothing is written.
        JobInterrupted: Stopped by a signal (see above).
    """
    job = _Job(config, policy)
    job.train()
    return job.finish()


class _Job:
    """One job: its run, its driver, its checkpoint."""

    def __init__(self, config: DriveConfig, policy: FrozenPolicy | None) -> None:
        self.config = config
        self.out = config.resolved_out_dir()
        self.checkpoint_path = self.out / "checkpoint.pt"
        resolve_device(config.device)  # a device this machine has, before any loading
        checkpoint = self._checkpoint()
        task = get_task(config.task, model=config.model)
        self.name = f"{task.name}/{task.model}"
        hparams = task.defaults if config.lr is None else task.defaults.replace(lr=config.lr)
        data = task.load_data(data_dir=config.data_dir, subset=config.subset)
        self.epochs = task.budget_epochs if config.epochs is None else config.epochs
        self.budget = budget_samples(
            Fidelity(budget_epochs=self.epochs), data.train_x.shape[0], self.epochs
        )
        loaded = policy if policy is not None else load_pretrained(config.policy)
        loaded = loaded.with_deploy_flags(
            config.rise_guard,
            config.probe_start,
            config.probe_rollback,
            config.restart,
            config.fall_hold,
        )
        batch = min(hparams.batch_size, data.train_x.shape[0])
        plan = plan_for(loaded, self.budget, task.val_size, batch_size=batch)
        self.run = TrainingRun(
            task,
            hparams=hparams,
            seed=config.seed,
            device=config.device,
            data=data,
            val_size=plan.val_size,
        )
        meta = loaded.metadata
        self.probe: ProbeResult | None = None
        self.base: BaseSchedule | None = None
        # The untrained model's scores and (for a restart, hpenv.restart) weights come before
        # any probe, as in HPTuneEnv and the harness.
        initial = None if checkpoint is not None else self.run.evaluate()
        fresh = checkpoint is None and meta.restart is not None
        restart_state = self.run.weights_state() if fresh else None
        probed_lr = None  # the rate after a probe
        if checkpoint is not None:
            saved = checkpoint.get("base")
            self.base = None if saved is None else BaseSchedule(**saved)
        elif (probe := meta.probe_config()) is not None:  # then the base or the probe start
            self.probe, self.base = probe_and_base(
                self.run, plan, hparams, probe, meta.base_config(), meta.probe_start
            )
            probed_lr = self.run.hparams.lr
        self.driver = TrainingRunDriver(
            loaded,
            self.run,
            plan,
            log_dir=self.out,
            base=self.base,
            restart=meta.restart,
            restart_state=restart_state,
        )
        if self.driver.restarts is not None:  # no restart if the probe set the rate
            self.driver.restarts.after_probe(hparams.lr, probed_lr)
        if checkpoint is not None:
            self.run.load_state_dict(checkpoint["run"])
            self.driver.load_state_dict(checkpoint["driver"])
        else:
            self.driver.start(initial, probe=self.probe)
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(config.saved(), self.out / "config.json")
        self.start = time.perf_counter() - (checkpoint["elapsed"] if checkpoint else 0.0)
        if checkpoint is None:
            self.save()

    def _checkpoint(self) -> dict[str, Any] | None:
        """The checkpoint to resume from (checked), or None for a new job."""
        if self.config.resume and not self.checkpoint_path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {self.checkpoint_path}")
        if not self.config.resume and self.checkpoint_path.exists():
            raise InputError(
                f"{self.out} already holds a job; pass --resume or choose another --out-dir"
            )
        if not self.config.resume:
            return None
        checkpoint: Any = safe_torch_load(self.checkpoint_path, "job checkpoint")
        if not isinstance(checkpoint, dict) or not {"config", "run"} <= set(checkpoint):
            raise InputError(f"{self.checkpoint_path} is not a job checkpoint of run_policy.py")
        if checkpoint["config"] != self.config.saved():
            raise InputError("--resume with different options than the checkpointed job")
        if "driver" not in checkpoint:
            raise InputError(
                f"{self.checkpoint_path} was written by an older hpenv (its policy state is a "
                "HyperController's, counted in optimizer steps); start the job again in a new "
                "--out-dir"
            )
        return checkpoint

    def save(self) -> None:
        atomic_torch_save(
            {
                "config": self.config.saved(),
                "run": self.run.state_dict(),
                "driver": self.driver.state_dict(),
                "base": None if self.base is None else asdict(self.base),
                "elapsed": time.perf_counter() - self.start,
            },
            self.checkpoint_path,
        )

    def interrupted(self) -> JobInterrupted:
        saved = safe_torch_load(self.checkpoint_path, "job checkpoint")
        return JobInterrupted(
            f"interrupted; checkpoint at sample {saved['run']['samples_done']} of {self.budget}: "
            f"{self.checkpoint_path}; continue with: python scripts/run_policy.py "
            f"--out-dir {self.out} --resume"
        )

    def train(self) -> None:
        """Train to the end of the budget, one decision interval per step, checkpointing each."""
        run, driver = self.run, self.driver
        print(
            f"{self.name} on {run.device}: {self.budget} samples ({self.epochs:g} epochs), "
            f"{driver.decisions} decisions by {self.config.policy} "
            f"(tuning {', '.join(driver.policy.metadata.tuned)}); logs in {self.out}"
        )
        with (
            GracefulStop("stopping after the current interval (signal again to abort)") as stop,
            tqdm(
                total=self.budget, initial=run.samples_done, unit="sample", unit_scale=True
            ) as bar,
        ):
            try:
                while not driver.done:
                    # One decision interval per call, so checkpoints fall on interval boundaries.
                    stats = run.train(driver.next_samples())
                    driver.after_interval(stats)
                    bar.update(run.samples_done - bar.n)  # a restart's spent samples too
                    hp = run.hparams
                    bar.set_postfix(
                        lr=f"{hp.lr:.2e}", batch=hp.batch_size, loss=f"{stats.loss_mean:.3f}"
                    )
                    self.save()
                    if stop.requested:
                        raise self.interrupted()
            except JobInterrupted:
                raise
            except KeyboardInterrupt:  # a second signal: the last interval's checkpoint stays
                raise self.interrupted() from None

    def finish(self) -> dict[str, Any]:
        """The final metrics, written to ``result.json`` and printed."""
        run = self.run
        final = run.evaluate()
        result: dict[str, Any] = {
            "task": self.name,
            "policy": self.config.policy,
            "diverged": run.diverged,
            "val_loss": final.loss,
            "val_accuracy": final.accuracy,
            "test_accuracy": run.evaluate("test").accuracy if run.data.test_x is not None else None,
            "samples": run.samples_done,
            "optimizer_steps": run.steps_done,
            "tuned": list(self.driver.policy.metadata.tuned),
            "wall_time": time.perf_counter() - self.start,
            "trajectory": self.driver.history,
        }
        if self.base is not None:  # layout 2: where the base was anchored, and by what
            result["base"] = {"anchor": self.base.anchor, "probed": self.base.probed}
        probe = self.driver.probe_record
        if probe is not None:  # its cost: the share of the run's steps it threw away
            found = ProbeResult.from_dict(probe)
            result["probe"] = {"steps": found.steps, "kept": found.kept,
                               "cost": found.cost(run.steps_done), "curve": probe}  # fmt: skip
        self.driver.flush()
        atomic_write_json(result, self.out / "result.json")
        summary = {k: v for k, v in result.items() if k != "trajectory"}
        print(json.dumps(summary, indent=2))
        return result
