"""Harness cells on the population engine: the same rows as one run at a time.

Every batchable method (the policy, the schedules, the grid) trains its cells
as members of one population per task; the final validation loss and accuracy
of every cell, and the learning rate at every decision, must equal the
sequential harness's to float tolerance.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from policies import make_policy

from agents.evaluation import EvalConfig, evaluate
from agents.evaluation.batched import stream_batched
from agents.evaluation.methods.core import CellRun, NotBatchable, RunSpec, train_runs
from agents.evaluation.methods.policy import PolicyMethod
from agents.evaluation.methods.schedules import Cosine, ProbeCosine, Static
from agents.evaluation.methods.search import GridSearch
from hpenv.plan import Fidelity
from hpenv.population import batching_pays, multiply_adds, supports
from hpenv.tasks import get_task
from hpenv.testing import tiny_task_data
from hpenv.training import build_model

#: digits_cnn (Unflatten + convolutions) at a tenth of its data, one epoch: 4 decisions.
SPEC = RunSpec("digits_cnn", 0, fidelity=Fidelity(subset=0.1, budget_epochs=1.0), decisions=4)


def _close(a: float, b: float, rel: float = 1e-4) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=rel, abs=1e-5)


def _same_rows(batched, sequential) -> None:
    assert len(batched) == len(sequential)
    for b, s in zip(batched, sequential, strict=True):
        rel = 1e-4
        assert (b.method, b.task, b.seed) == (s.method, s.task, s.seed)
        assert _close(b.val_loss, s.val_loss, rel), (b.method, b.val_loss, s.val_loss)
        assert _close(b.val_accuracy, s.val_accuracy, rel)
        assert _close(b.test_accuracy, s.test_accuracy, rel)
        assert b.diverged == s.diverged
        assert b.samples == s.samples
        assert len(b.trajectory) == len(s.trajectory)
        for pb, ps in zip(b.trajectory, s.trajectory, strict=True):
            assert pb["lr"] == pytest.approx(ps["lr"], rel=rel)
            assert _close(pb["val_loss"], ps["val_loss"], rel)
        if "probe" in s.extra:
            for key in ("steps", "kept", "best_lr", "divergence_lr"):
                assert b.extra["probe"][key] == pytest.approx(s.extra["probe"][key])


def test_digits_cnn_batches():
    assert supports(get_task("digits_cnn")) is None  # Unflatten is supported
    data = SPEC.load_data()
    assert batching_pays(get_task("digits_cnn"), data, "cpu") is None  # 0.34 M multiply-adds
    mnist = tiny_task_data(get_task("mnist_cnn"), n_train=4)  # 8x8 stand-ins: a small model
    assert batching_pays(get_task("mnist_cnn"), mnist, "cpu") is None
    mlp = tiny_task_data(get_task("mnist"), n_train=4)  # 28x28 into MLP 512-512: 0.67 M
    assert "0.67 million multiply-adds" in (batching_pays(get_task("mnist"), mlp, "cpu") or "")
    model = build_model(get_task("mnist"), mlp, 0.0)
    assert multiply_adds(model, mlp.train_x.float()) == 784 * 512 + 512 * 512 + 512 * 10


def test_population_runs_equal_sequential_runs_for_every_batchable_method():
    data = SPEC.load_data()
    methods = [PolicyMethod(make_policy(decisions=4)), Static(), Cosine(), GridSearch(points=3)]

    def runs() -> list[CellRun]:  # a run trains once: its adjust keeps the run's state
        made: list[CellRun] = []
        for seed in (0, 1):
            for factor in (1.0, 1000.0):  # 1000x: a rate of 1, static diverges
                spec = RunSpec(
                    SPEC.task, seed, fidelity=SPEC.fidelity, decisions=4,
                    start_lr_factor=factor, data=data,
                )  # fmt: skip
                for method in methods:
                    made += method.runs(spec)
        return made

    batched = train_runs(runs(), engine="population")
    sequential = train_runs(runs())
    _same_rows(batched, sequential)
    assert any(r.diverged for r in batched)
    assert not all(r.diverged for r in batched)
    # the policy moved its rate (a frozen member would also agree with itself)
    policy_lrs = {p["lr"] for p in batched[0].trajectory}
    assert len(policy_lrs) > 2


def test_probing_methods_batch_like_single_runs():
    """The probe in a population (each member's own sweep, pause and rollback) and the base
    after it: a layout-2 policy and probe_cosine, rows equal to one run at a time."""
    fidelity = Fidelity(budget_epochs=6.0)  # diabetes: 111 optimizer steps, a 20-step probe
    methods = [PolicyMethod(make_policy(decisions=4, obs_version=2)), ProbeCosine()]

    def runs() -> list[CellRun]:
        made: list[CellRun] = []
        for seed in (0, 1):
            for factor in (1.0, 1000.0):  # the probe's base makes the start irrelevant
                spec = RunSpec("diabetes", seed, fidelity=fidelity, decisions=4,
                               start_lr_factor=factor)  # fmt: skip
                for method in methods:
                    made += method.runs(spec)
        return made

    batched = train_runs(runs(), engine="population")
    sequential = train_runs(runs())
    _same_rows(batched, sequential)
    assert all(r.extra["probe"]["steps"] == 20 for r in batched)
    by_start = {(r.method, r.seed, r.start_lr_factor): r.val_loss for r in batched}
    assert by_start[("policy", 0, 1.0)] == by_start[("policy", 0, 1000.0)]
    with pytest.raises(NotBatchable, match="share the probe"):
        train_runs(runs()[:1] + Static().runs(RunSpec("diabetes", 0, fidelity, 4)), "population")


def test_a_layout_1_policy_with_a_probe_start_starts_at_the_probes_rate():
    """`FrozenPolicy.with_probe_start`: the run probes (in the budget) and starts at the
    probe's min/30 reading, so a start 1000x too high ends where one started right does;
    the same rows one at a time and in a population. Without it: no probe, the start."""
    fidelity = Fidelity(budget_epochs=6.0)  # diabetes: 111 optimizer steps, a 20-step probe
    plain = make_policy(decisions=4)

    def runs(method: PolicyMethod) -> list[CellRun]:
        made: list[CellRun] = []
        for factor in (1.0, 1000.0):
            spec = RunSpec("diabetes", 0, fidelity=fidelity, decisions=4, start_lr_factor=factor)
            made += method.runs(spec)
        return made

    method = PolicyMethod(plain.with_probe_start(True))
    started = train_runs(runs(method), engine="population")
    _same_rows(started, train_runs(runs(method)))
    plain_rows = train_runs(runs(PolicyMethod(plain)))
    for row in started:
        probe = row.extra["probe"]
        assert probe["steps"] == 20
        assert probe["doubt"] is None
        assert row.trajectory[1]["lr"] == pytest.approx(probe["best_lr"] / 30)
    assert started[0].val_loss == started[1].val_loss  # the start no longer matters
    for row in plain_rows:
        assert "probe" not in row.extra
        assert row.trajectory[1]["lr"] == pytest.approx(row.trajectory[0]["lr"])
    assert plain_rows[0].val_loss != plain_rows[1].val_loss


def test_population_refuses_runs_it_cannot_share():
    spec = RunSpec(SPEC.task, 0, fidelity=SPEC.fidelity, decisions=4)
    other = RunSpec(SPEC.task, 0, fidelity=Fidelity(subset=0.1, budget_epochs=2.0), decisions=4)
    runs = [CellRun(spec, spec.start_hparams()), CellRun(other, other.start_hparams())]
    with pytest.raises(NotBatchable, match="fidelity"):
        train_runs(runs, engine="population")
    batch = CellRun(spec, spec.start_hparams().replace(batch_size=16))
    with pytest.raises(NotBatchable, match="batch size"):
        train_runs([CellRun(spec, spec.start_hparams()), batch], engine="population")
    with pytest.raises(NotBatchable, match="batch_size"):
        PolicyMethod(make_policy(tuned=("lr", "batch_size"))).runs(spec)


def _rows(out: Path) -> dict[tuple[str, str, int], dict[str, str]]:
    with open(out / "results.csv", newline="") as fh:
        return {(r["method"], r["task"], int(r["seed"])): r for r in csv.DictReader(fh)}


def _records(out: Path) -> dict[tuple[str, str, int], dict]:
    records = {}
    for line in (out / "runs.jsonl").read_text().splitlines():
        r = json.loads(line)
        records[(r["method"], r["task"], r["seed"])] = r
    return records


def test_harness_engines_agree_cell_by_cell(tmp_path):
    policy_path = tmp_path / "policy.pt"
    make_policy(decisions=4).save(policy_path)
    common = {
        "policy": str(policy_path),
        "tasks": ("digits_cnn",),
        "seeds": (0, 1),
        "methods": ("policy", "static", "cosine", "grid", "prodigy"),
        "fidelity": ("digits_cnn:0.1:1",),
        "decisions": 4,
        "grid_points": 2,
        "include_training_tasks": True,
    }
    batched_dir, sequential_dir = tmp_path / "batched", tmp_path / "sequential"
    evaluate(EvalConfig(**common, out_dir=str(batched_dir)), progress=False)
    evaluate(EvalConfig(**common, engine="sequential", out_dir=str(sequential_dir)), progress=False)
    batched, sequential = _rows(batched_dir), _rows(sequential_dir)
    assert set(batched) == set(sequential)
    assert len(batched) == 2 * 5
    assert not any(r["error"] for r in batched.values())
    for key, row in batched.items():
        other = sequential[key]
        for column in ("val_loss", "val_accuracy", "test_accuracy"):
            assert _close(float(row[column] or "nan"), float(other[column] or "nan")), (key, column)
    records, seq_records = _records(batched_dir), _records(sequential_dir)
    for key, record in records.items():
        lrs = [p["lr"] for p in record["trajectory"]]
        assert lrs == pytest.approx([p["lr"] for p in seq_records[key]["trajectory"]], rel=1e-4)
        assert (record["extra"].get("engine") == "population") == (key[0] != "prodigy"), key
    config = json.loads((batched_dir / "config.json").read_text())["config"]
    assert config["engine"] == "auto"


class _StubRunner:
    """Records which cells ran one at a time."""

    skipped: dict[str, str] = {}  # noqa: RUF012

    def __init__(self) -> None:
        self.alone: list = []

    def prepare(self, key):
        raise AssertionError("a refused task builds no population")

    def record(self, outcome) -> None:
        raise AssertionError("nothing batched")

    def run(self, key) -> None:
        self.alone.append(key)


def test_a_task_the_population_refuses_runs_one_at_a_time_with_one_line():
    notes: list[str] = []
    runner = _StubRunner()
    todo = [(m, "imdb_conv", s, 1.0) for s in (0, 1) for m in ("policy", "static")]
    data = tiny_task_data(get_task("imdb_conv"))
    done = list(stream_batched(runner, todo, data_for=lambda task: data, note=notes.append))
    assert done == todo
    assert runner.alone == todo
    assert len(notes) == 1
    assert notes[0].startswith("imdb_conv: cells run one at a time")
    assert "does not support" in notes[0]
