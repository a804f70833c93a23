"""Optuna (TPE, warm start) and PBT (Ray Tune) baselines on tiny cells."""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from agents.evaluation.methods.core import MethodResult, RunSpec
from hpenv.plan import Fidelity
from hpenv.tasks import get_task
from hpenv.testing import tiny_task_data

BUDGET = 300
DECISIONS = 4  # 5 intervals of 60 samples


def make_spec(task: str = "digits", seed: int = 0) -> RunSpec:
    return RunSpec(
        task,
        seed,
        fidelity=Fidelity(budget=BUDGET),
        decisions=DECISIONS,
        data=tiny_task_data(get_task(task)),
    )


def check_row(row: MethodResult, spec: RunSpec, method: str) -> None:
    assert row.method == method
    assert (row.task, row.seed) == (spec.task, spec.seed)
    assert math.isfinite(row.val_loss)
    assert 0.0 <= row.val_accuracy <= 1.0
    assert row.best_val_accuracy >= row.val_accuracy
    assert row.samples == BUDGET
    assert row.compute_samples >= row.samples
    assert row.wall_time > 0
    assert not row.diverged
    assert len(row.trajectory) == DECISIONS + 2  # the untrained point, then every interval
    assert row.trajectory[-1]["samples"] == BUDGET
    assert row.trajectory[-1]["val_accuracy"] == row.val_accuracy


# ------------------------------------------------------------------------ Optuna


def test_optuna_tpe_row_accounting_and_determinism():
    pytest.importorskip("optuna")
    from agents.evaluation.methods.optuna_search import OptunaTPE

    spec = make_spec()
    method = OptunaTPE(trials=4)
    row = method.run(spec)
    check_row(row, spec, "optuna")
    extra = row.extra
    assert extra["trials_run"] == 4
    per_trial = extra["per_trial"]
    assert row.compute_samples == sum(t["samples"] for t in per_trial)
    best = next(t for t in per_trial if t["number"] == extra["best_trial"])
    assert best["state"] == "complete"
    assert best["params"] == extra["best_params"]
    assert set(extra["best_params"]) == {
        "lr_factor",
        "one_minus_momentum",
        "weight_decay",
        "batch_doublings",
        "dropout",
    }
    assert row.trajectory[-1]["lr"] == pytest.approx(extra["best_hparams"]["lr"])
    complete = [t for t in per_trial if t["state"] == "complete"]
    assert row.val_accuracy == max(t["val_accuracy"] for t in complete)

    again = method.run(spec)
    assert again.extra["per_trial"] == per_trial
    assert again.trajectory == row.trajectory
    assert again.compute_samples == row.compute_samples


def test_optuna_pruning_stops_bad_trials_and_counts_their_samples():
    pytest.importorskip("optuna")
    from agents.evaluation.methods.optuna_search import OptunaWarmStart

    spec = make_spec("synthetic")
    interval = BUDGET // (DECISIONS + 1)
    # A good configuration, then two that barely train (1% of the default lr):
    # with one complete trial the median pruner stops them early.
    good = {"lr_factor": 10.0}
    bad = [{"lr_factor": 0.01}, {"lr_factor": 0.0101}]
    warm = {"other": [good, *bad]}
    common = {"trials": 3, "tuned": ("lr",), "max_warm": 3, "prune_startup": 1}
    pruned = OptunaWarmStart(warm_configs=warm, prune_warmup=0, **common).run(spec)
    full = OptunaWarmStart(warm_configs=warm, pruning=False, **common).run(spec)

    states = [t["state"] for t in pruned.extra["per_trial"]]
    assert states == ["complete", "pruned", "pruned"]
    assert pruned.extra["trials_pruned"] == 2
    for trial in pruned.extra["per_trial"][1:]:
        assert 0 < trial["samples"] < BUDGET
        assert trial["samples"] % interval == 0  # stopped at an interval boundary
    assert pruned.compute_samples == sum(t["samples"] for t in pruned.extra["per_trial"])
    assert full.extra["trials_pruned"] == 0
    assert full.compute_samples == 3 * BUDGET > pruned.compute_samples
    # The complete trial is the same run either way.
    assert pruned.trajectory == full.trajectory
    check_row(pruned, spec, "optuna_warm")


def test_optuna_warm_start_enqueues_only_other_tasks():
    pytest.importorskip("optuna")
    from agents.evaluation.methods.optuna_search import (
        OptunaTPE,
        OptunaWarmStart,
        warm_configs_from_rows,
    )

    spec = make_spec("digits")
    own = {"lr_factor": 0.5, "one_minus_momentum": 0.1, "weight_decay": 1e-4}
    mnist = {"lr_factor": 2.0, "one_minus_momentum": 0.05, "batch_doublings": 1, "dropout": 0.1}
    synthetic = [
        {"lr_factor": 3.0, "one_minus_momentum": 0.2, "weight_decay": 1e-5, "dropout": 0.0},
        {"lr_factor": 0.3, "batch_doublings": -1},
    ]
    warm = {"digits": [own], "synthetic": synthetic, "mnist": [mnist]}
    row = OptunaWarmStart(trials=4, warm_configs=warm).run(spec)
    check_row(row, spec, "optuna_warm")
    extra = row.extra
    # trials // 2 configs, round robin over the other tasks in name order.
    assert extra["enqueued_from"] == ["mnist", "synthetic"]
    assert extra["enqueued"] == [mnist, synthetic[0]]
    params = [t["params"] for t in extra["per_trial"]]
    assert {k: params[0][k] for k in mnist} == pytest.approx(mnist)
    assert {k: params[1][k] for k in synthetic[0]} == pytest.approx(synthetic[0])
    assert all({k: p.get(k) for k in own} != own for p in params)
    assert extra["per_trial"][0]["hparams"]["lr"] == pytest.approx(2.0 * 1e-3)
    assert extra["per_trial"][0]["hparams"]["batch_size"] == 64  # digits default 32 x 2

    # Nothing from other tasks: plain OptunaTPE, and it says so.
    alone = OptunaWarmStart(trials=3, warm_configs={"digits": [own]}).run(spec)
    assert alone.extra["warm_start"] == "none available"
    plain = OptunaTPE(trials=3).run(spec)
    assert [t["params"] for t in alone.extra["per_trial"]] == [
        t["params"] for t in plain.extra["per_trial"]
    ]

    # The harness feeds it from the optuna rows of earlier cells.
    rows = [plain, dataclasses.replace(plain, method="random"), plain.to_dict()]
    assert warm_configs_from_rows(rows) == {"digits": [plain.extra["best_params"]] * 2}


def test_optuna_sanitize_moves_foreign_configs_into_the_space():
    pytest.importorskip("optuna")
    from agents.evaluation.methods.optuna_search import OptunaTPE

    method = OptunaTPE(tuned=("lr", "batch_size"))
    clean = method.sanitize(
        {"lr_factor": 1e3, "batch_doublings": 7.4, "dropout": 0.3, "unknown": 1}
    )
    assert clean == {"lr_factor": pytest.approx(10**1.5), "batch_doublings": 2}


# --------------------------------------------------------------------------- PBT


class FakeSession:
    """Stands in for a Ray Tune session around `pbt_member` (no cluster needed)."""

    def __init__(self, trial_id: str, store: Path, restore: Path | None = None) -> None:
        self.trial_id = trial_id
        self.store = store
        self.restore = restore
        self.reports: list[dict[str, Any]] = []
        self.checkpoints: dict[int, Path] = {}

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from ray import tune

        session = self

        class Context:
            def get_trial_id(self) -> str:
                return session.trial_id

        monkeypatch.setattr(tune, "get_context", lambda: Context())
        monkeypatch.setattr(
            tune,
            "get_checkpoint",
            lambda: None if self.restore is None else tune.Checkpoint.from_directory(self.restore),
        )
        monkeypatch.setattr(tune, "report", self.report)

    def report(self, metrics: dict[str, Any], *, checkpoint: Any = None) -> None:
        self.reports.append(dict(metrics))
        if checkpoint is not None:
            dest = self.store / f"{self.trial_id}-{metrics['interval']}"
            shutil.copytree(checkpoint.path, dest)
            self.checkpoints[metrics["interval"]] = dest


def test_pbt_member_checkpoints_restore_exactly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    pytest.importorskip("ray")
    from agents.evaluation.methods.pbt import load_member, member_run, pbt_member

    spec = make_spec("synthetic")
    data = spec.load_data()
    interval = BUDGET // (DECISIONS + 1)
    setup = {
        "spec": dataclasses.replace(spec, data=None),
        "data": data,
        "budget": BUDGET,
        "interval": interval,
        "checkpoint_interval": 1,
    }
    lr = 3e-3
    donor = FakeSession("donor", tmp_path)
    donor.install(monkeypatch)
    pbt_member({"lr": lr, "momentum": 0.9}, setup)
    assert [r["interval"] for r in donor.reports] == [1, 2, 3, 4, 5]
    assert sorted(donor.checkpoints) == [1, 2, 3, 4, 5]
    final = donor.reports[-1]
    assert final["finished"]
    assert final["samples_done"] == BUDGET
    assert final["lineage"] == []

    # Exploit: another member restarts from the donor's checkpoint after 2 intervals
    # with a perturbed learning rate.
    new_lr = lr * 1.2
    clone = FakeSession("clone", tmp_path, restore=donor.checkpoints[2])
    clone.install(monkeypatch)
    pbt_member({"lr": new_lr, "momentum": 0.9}, setup)
    assert [r["interval"] for r in clone.reports] == [3, 4, 5]
    first = clone.reports[0]
    assert (first["exploited_from"], first["exploited_at"]) == ("donor", 2)
    assert all(r["exploited_from"] == "" for r in clone.reports[1:])
    assert sum(r["interval_samples"] for r in clone.reports) == 3 * interval
    history = clone.reports[-1]["history"]
    assert history[:3] == final["history"][:3]  # the donor's trajectory up to the exploit
    assert [h["lr"] for h in history] == [1e-3, lr, lr, new_lr, new_lr, new_lr]
    assert clone.reports[-1]["lineage"] == [
        {"interval": 2, "samples": 2 * interval, "from": "donor", "to": "clone", "lr": new_lr}
    ]

    # The restore is exact: continuing the donor's saved run by hand gives the same metrics.
    torch.set_num_threads(1)
    run = member_run(spec, data)
    load_member(run, str(donor.checkpoints[2]))
    run.set_hparams(lr=new_lr)
    run.train(interval)
    evaluation = run.evaluate()
    assert history[3]["val_loss"] == evaluation.loss
    assert history[3]["val_accuracy"] == evaluation.accuracy

    # Resuming its own checkpoint is not an exploit.
    own = FakeSession("donor", tmp_path / "own", restore=donor.checkpoints[4])
    (tmp_path / "own").mkdir()
    own.install(monkeypatch)
    pbt_member({"lr": lr, "momentum": 0.9}, setup)
    assert [(r["interval"], r["exploited_from"]) for r in own.reports] == [(5, "")]
    assert own.reports[-1]["history"] == final["history"]


@pytest.mark.slow  # Ray Tune starts a Ray instance: `make test-slow`
def test_pbt_on_ray_gives_a_valid_row():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.tune")
    from agents.evaluation.methods.pbt import PBT

    spec = make_spec("synthetic")
    row = PBT(population=2, checkpoint_interval=1).run(spec)
    check_row(row, spec, "pbt")
    extra = row.extra
    assert extra["population"] == 2
    assert extra["members_finished"] == 2
    assert extra["nominal_compute"] == 2 * BUDGET
    # Members clone only donors at least as far as themselves: never more than nominal.
    assert row.samples <= row.compute_samples <= extra["nominal_compute"]
    assert extra["perturbations"] == len(extra["exploits"])
    low, high = extra["lr_range"]
    assert all(low <= h["lr"] <= high for h in row.trajectory[1:])
    for event in extra["lineage_exploits"]:  # the lr after an exploit is the explored one
        assert row.trajectory[event["interval"] + 1]["lr"] == pytest.approx(event["lr"])
    assert not ray.is_initialized()  # started here, shut down here
