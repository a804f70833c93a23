"""`TrainingRunDriver`: a frozen policy driving a `hpenv.training.TrainingRun`, batch size included.

`agents.deploy.controller.HyperController` hooks an optimizer, so it can change
only what the optimizer carries (learning rate, momentum, weight decay). A
`TrainingRun` owns its data order and model too, so a driver over it can apply
every hyperparameter a policy tunes: batch size and dropout as well. This is
what ``scripts/run_policy.py`` (`agents.deploy.drive.drive_task`) runs.

The run follows the episode plan of `hpenv.plan`, exactly as `hpenv.env.HPTuneEnv`
and the evaluation harness plan it: the budget is counted in **training
samples** and split into ``decisions + 1`` intervals (a warm-up at the starting
hyperparameters, then one decision per interval), so a policy that doubles the
batch size takes half the optimizer steps in the same samples and cannot buy
compute. At every boundary but the last the run is evaluated and
`agents.policy.step.PolicyStep` (the one policy-in-the-loop step, shared with
the controller and the harness) chooses the next interval's hyperparameters.

Example::

    policy = load_pretrained("logs/meta-lr-bs/best_policy.pt")  # --tuned lr,batch_size
    plan = plan_for(policy, budget=20_000, task_val_size=get_task("digits").val_size)
    run = TrainingRun("digits", seed=0, device="cpu", val_size=plan.val_size)
    driver = TrainingRunDriver(policy, run, plan)
    driver.train()  # or: driver.start(); then run.train(driver.next_samples()) and
                    # driver.after_interval(stats) until driver.done
    print(driver.history[-1]["batch_size"], run.evaluate().accuracy)
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from agents.deploy.decision_log import DecisionLog
from agents.policy.artifact import FrozenPolicy
from agents.policy.step import PolicyStep
from agents.warn import warn
from hpenv.base import BaseSchedule
from hpenv.hyperparams import HParams
from hpenv.observation import IntervalMetrics
from hpenv.plan import EpisodePlan, plan_episode
from hpenv.probe import ProbeResult
from hpenv.restart import RestartConfig, Restarts
from hpenv.training import EvalStats, IntervalStats, TrainingRun

if TYPE_CHECKING:
    from hpenv.population import MemberRun


def plan_for(
    policy: FrozenPolicy,
    budget: int,
    task_val_size: int,
    decisions: int | None = None,
    batch_size: int = 0,
) -> EpisodePlan:
    """The plan of a driven run of ``budget`` samples: `hpenv.plan.plan_episode` with the
    policy's decisions (unless given), so it is the run `HPTuneEnv` would make. A policy
    whose runs probe (layout 2, or layout 1 with a probe start: `PolicyMetadata.probe_config`)
    gets its probe's samples reserved at ``batch_size``
    (the run's first batch size; 0: none).

    Raises:
        ValueError: A budget too small for the decisions.
    """
    probe = policy.metadata.probe_config()
    return plan_episode(
        budget=budget,
        decisions=policy.metadata.decisions if decisions is None else decisions,
        task_val_size=task_val_size,
        probe=0 if probe is None or batch_size < 1 else probe.samples_for(budget, batch_size),
    )


class TrainingRunDriver:
    """Let ``policy`` set a `TrainingRun`'s hyperparameters between sample-counted intervals.

    Call `start` once before training (it scores the untrained model), then for
    each interval ``run.train(driver.next_samples())`` and `after_interval` with
    its statistics, until `done`; or call `train` to do all of it.

    Args:
        policy: The frozen policy; it may tune any `hpenv.hyperparams.TUNABLES` entry.
        run: The run to drive (its current hyperparameters are the start): a
            `TrainingRun`, or one member of a population (`hpenv.population.MemberRun`,
            as the evaluation harness batches cells). Build it with
            ``val_size=plan.val_size`` to score what `HPTuneEnv` scores.
        plan: The run's plan (`plan_for`, or `hpenv.plan.plan_episode`).
        log_dir: TensorBoard directory (``controller/...`` tags, as the controller writes).
        base: The base schedule a layout-2 policy steers around (`hpenv.base`); its
            probe is given to `start`.
        restart: Restart the run when its first interval blows up (`hpenv.restart`: the
            weights back, the rate lowered, no decision on that interval; with its
            ``rollback``, a later interval that blows up goes back to the run's best
            state); the job driver
            passes the policy's `PolicyMetadata.restart`. None: never (the evaluation
            harness restarts its runs itself, population members too).
        restart_state: The run's `TrainingRun.weights_state` before its probe, what a
            restart puts back (default: the weights as `start` finds them).
    """

    def __init__(
        self,
        policy: FrozenPolicy,
        run: TrainingRun | MemberRun,
        plan: EpisodePlan,
        *,
        log_dir: str | os.PathLike[str] | None = None,
        base: BaseSchedule | None = None,
        restart: RestartConfig | None = None,
        restart_state: dict[str, Any] | None = None,
    ) -> None:
        self.policy = policy
        self.run = run
        self.plan = plan
        self.budget = plan.budget
        self.decisions = plan.decisions
        self.interval = plan.interval
        self.step_policy = PolicyStep(policy)
        self.base = base
        if self.step_policy.needs_probe and base is None:
            raise ValueError(
                "this policy steers the rate around a base anchored at the probe (layout 2): "
                "give the run's base= (hpenv.base.BaseConfig.schedule of its probe)"
            )
        self.diverged = False
        self.started = False
        self._decisions = DecisionLog(log_dir)
        if restart is not None and not isinstance(run, TrainingRun):
            raise ValueError("a driver restarts a TrainingRun only (the harness restarts members)")
        self.restarts = None if restart is None else Restarts(restart)
        self._start_state: dict[str, Any] | None = restart_state  # until no restart can come
        self._best_state: dict[str, Any] | None = None  # with a rollback: the best so far
        self._interval_end = 0

    @property
    def history(self) -> list[dict[str, Any]]:
        """One entry at the start and one per decision: step, samples, hyperparameters, metrics."""
        return self._decisions.history

    @property
    def hparams(self) -> HParams:
        return self.run.hparams

    @property
    def done(self) -> bool:
        """The budget is spent or the run diverged."""
        return self.run.samples_done >= self.budget or self.run.diverged

    def start(self, initial: EvalStats | None = None, probe: ProbeResult | None = None) -> None:
        """Begin the policy's episode from the untrained model's scores (``initial``, if the
        caller has them, else evaluated now); ``probe``: what the run's probe found (its
        curve goes to TensorBoard and `probe_record`)."""
        if probe is not None:
            self._decisions.probe(probe)
        first = self.run.evaluate() if initial is None else initial
        self.step_policy.start(
            first.loss, first.accuracy, self.run.hparams, probe=probe, base=self.base
        )
        self.initial = (first.loss, first.accuracy)
        self._probe = probe
        take = self.restarts is not None and self._start_state is None
        if take and isinstance(self.run, TrainingRun):
            self._start_state = self.run.weights_state()
        self.started = True
        self._record(None, val_loss=first.loss, val_accuracy=first.accuracy)

    def next_samples(self) -> int:
        """Samples of the next interval (the last one completes the budget)."""
        samples = min(self.interval, self.budget - self.run.samples_done)
        self._interval_end = self.run.samples_done + samples
        return samples

    def after_interval(self, stats: IntervalStats, evaluation: EvalStats | None = None) -> HParams:
        """Decide after an interval (not after the last one); returns the hyperparameters now.

        ``evaluation``: the run's scores after the interval, if the caller has them
        (else evaluated now). A diverged run makes no more decisions (`TrainingRun`
        trains no further).
        """
        if not self.started:
            raise RuntimeError("call start() before training: the policy needs the initial metrics")
        if self._restart_open() and not stats.diverged and evaluation is None:
            evaluation = self.run.evaluate()  # read by the restart and the decision alike
        if self._restarted(stats, evaluation):
            return self.run.hparams
        if stats.diverged:
            if self._rolled_back(math.nan, diverged=True, train_loss=math.nan):
                return self.run.hparams
            if not self.diverged:
                self.diverged = True
                self.step_policy.mark_diverged()
            return self.run.hparams
        if self.run.samples_done >= self.budget:
            return self.run.hparams
        if evaluation is None:
            evaluation = self.run.evaluate()
        if self._rolled_back(evaluation.loss, diverged=False, train_loss=stats.loss_mean):
            return self.run.hparams
        progress = self.run.samples_done / self.budget
        base_lr = None if self.base is None else self.base.lr(progress)
        metrics = IntervalMetrics.from_stats(
            progress, stats, evaluation, self.run.hparams, base_lr=base_lr
        )
        self.run.apply_hparams(self.step_policy.decide(metrics))
        self._record(metrics, **self.step_policy.log_values())
        restarts = self.restarts
        if restarts is not None and restarts.new_best(
            evaluation.loss, metrics.hparams.lr, self.initial[0]
        ):
            assert isinstance(self.run, TrainingRun)  # a driver restarts a TrainingRun only
            self._best_state = self.run.weights_state()  # what a rollback puts back
        return self.run.hparams

    def _restart_open(self) -> bool:
        """A restart can still come: the run kept its start and the budget is not spent."""
        return self._start_state is not None and self.run.samples_done < self.budget

    def _restarted(self, stats: IntervalStats, evaluation: EvalStats | None) -> bool:
        """Whether the interval just trained blew up and the run went back to its start
        (`hpenv.restart`); its samples stay spent, the decision log records it."""
        run, restarts, state = self.run, self.restarts, self._start_state
        if not self._restart_open() or restarts is None or not isinstance(run, TrainingRun):
            return False
        assert state is not None
        loss = math.nan if stats.diverged or evaluation is None else evaluation.loss
        restart = restarts.after_interval(loss, self.initial[0], stats.diverged, stats.loss_mean)
        if restarts.over:
            self._start_state = None  # no restart can come any more
        if not restart:
            return False
        self._put_back(state, restarts.lr(run.hparams.lr), loss, restarts=float(restarts.count))
        warn(restarts.message(loss, self.initial[0], run.hparams.lr))
        # The policy's episode begins again, from the untrained scores at the lower rate (as
        # the harness starts its driver after a restart).
        self.step_policy.start(*self.initial, run.hparams, probe=self._probe, base=self.base)
        return True

    def _rolled_back(self, loss: float, diverged: bool, train_loss: float) -> bool:
        """Whether an interval after the first blew up (or collapsed: ``train_loss``, its mean
        training loss) and the run went back to its best state (`hpenv.restart`'s rollback);
        its samples stay spent, the policy's episode goes on."""
        run, restarts, state = self.run, self.restarts, self._best_state
        if restarts is None or state is None or run.samples_done >= self.budget:
            return False
        if not restarts.after_later_interval(loss, self.initial[0], diverged, train_loss):
            return False
        self._put_back(state, restarts.rollback_lr(), loss, rollbacks=float(restarts.rollbacks))
        warn(restarts.rollback_message(loss, self.initial[0], run.hparams.lr))
        return True

    def _put_back(self, state: dict[str, Any], lr: float, loss: float, **record: float) -> None:
        """A restart's or a rollback's move: ``state`` back, the rate set to ``lr``, the rest
        of the interval spent, the decision log told (``record``)."""
        run = self.run
        assert isinstance(run, TrainingRun)  # a driver restarts a TrainingRun only
        run.load_weights_state(state)
        run.apply_hparams(run.hparams.replace(lr=lr))
        run.spend(max(0, self._interval_end - run.samples_done))
        self._record(None, val_loss=loss, **record)

    def train(self) -> None:
        """Start (if needed) and train to the end of the budget."""
        if not self.started:
            self.start()
        while not self.done:
            self.after_interval(self.run.train(self.next_samples()))
        self._decisions.flush()

    def _record(self, metrics: IntervalMetrics | None, **extra: float) -> None:
        run = self.run
        self._decisions.record(
            run.steps_done, run.hparams, metrics, samples=run.samples_done, **extra
        )

    def flush(self) -> None:
        self._decisions.flush()

    @property
    def probe_record(self) -> dict[str, Any] | None:
        """The run's probe curve (`hpenv.probe.ProbeResult.to_dict`), or None without one."""
        return self._decisions.probe_record

    def state_dict(self) -> dict[str, Any]:
        """Plain values to continue identically (the run's own state is saved by the caller)."""
        return {
            **self.step_policy.state_dict(),
            "diverged": self.diverged,
            "started": self.started,
            "history": list(self.history),
            "probe": self._decisions.probe_record,
            "restarts": None if self.restarts is None else self.restarts.state_dict(),
            "start_state": self._start_state,
            "best_state": self._best_state,
            "initial": getattr(self, "initial", None),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_policy.load_state_dict(state)
        self.diverged = state["diverged"]
        self.started = state["started"]
        self._decisions.restore(state["history"])
        self._decisions.probe_record = state.get("probe")  # older states: none saved
        if self.restarts is not None and state.get("restarts") is not None:
            self.restarts.load_state_dict(state["restarts"])
            self._start_state = state.get("start_state")
            self._best_state = state.get("best_state")  # older states: none
            self.initial = tuple(state["initial"])
            record = self._decisions.probe_record
            self._probe = None if record is None else ProbeResult.from_dict(record)
