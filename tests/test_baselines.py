"""Baseline methods: valid rows on a tiny cell, schedules and rules as documented."""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import math
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest
import torch

from agents.evaluation.methods import METHODS, MethodResult, RunSpec
from agents.evaluation.methods.schedules import (
    Cosine,
    DAC4SGDRule,
    LinearDecay,
    OneCycle,
    Plateau,
    Static,
    cosine_factor,
)
from agents.evaluation.methods.search import RANDOM_RANGES, GridSearch, RandomSearch, best_index
from hpenv.hyperparams import HParams
from hpenv.plan import Fidelity
from hpenv.tasks import get_task
from hpenv.testing import tiny_task_data
from hpenv.training import TrainingRun

BUDGET = 300
DECISIONS = 4
SEARCH_TRIALS = {"grid": 8, "random": 8}


@pytest.fixture(scope="module")
def spec() -> RunSpec:
    data = tiny_task_data(get_task("synthetic"), n_train=128)
    return RunSpec(
        "synthetic", seed=0, fidelity=Fidelity(budget=BUDGET), decisions=DECISIONS, data=data
    )


OPTIONAL = {
    "prodigy": "prodigyopt",
    "schedulefree": "schedulefree",
    "mechanic": "mechanic_pytorch",
    "lrfind_cosine": "torch_lr_finder",
}
#: Search baselines with their own tests (tests/test_search_baselines.py,
#: tests/test_similar_search.py): Optuna and Ray.
ELSEWHERE = {"optuna", "optuna_warm", "optuna_similar", "pbt"}
LOCAL = [name for name in METHODS if name not in ELSEWHERE]


@pytest.fixture(scope="module")
def all_rows(spec: RunSpec) -> dict[str, MethodResult]:
    """Every registered method's row on the tiny cell, run once for the module."""
    torch.set_num_threads(1)
    return {
        name: make().run(spec)
        for name, make in METHODS.items()
        if name in LOCAL
        and (name not in OPTIONAL or importlib.util.find_spec(OPTIONAL[name]) is not None)
    }


class Rows:
    """Rows by name; a method whose optional package is missing is skipped."""

    def __init__(self, rows: dict[str, MethodResult]) -> None:
        self._rows = rows

    def __getitem__(self, name: str) -> MethodResult:
        if name not in self._rows:
            pytest.importorskip(OPTIONAL[name])
        return self._rows[name]


@pytest.fixture
def rows(all_rows: dict[str, MethodResult]) -> Rows:
    return Rows(all_rows)


def _intervals(row: MethodResult) -> list[tuple[float, float | None, dict[str, float]]]:
    """Per interval: progress at its start, the val loss measured there (None for the
    first) and its trajectory point (the hyperparameters it trained with)."""
    traj = row.trajectory
    out: list[tuple[float, float | None, dict[str, float]]] = [(0.0, None, traj[1])]
    for before, used in itertools.pairwise(traj[1:]):
        out.append((before["progress"], before["val_loss"], used))
    return out


def _onecycle_lr(p: float, peak: float = 1e-3) -> float:
    initial, final = peak / 25, peak / 25e4
    if p < 0.3:
        return initial + (peak - initial) * (1 - math.cos(math.pi * p / 0.3)) / 2
    return final + (peak - final) * (1 + math.cos(math.pi * (p - 0.3) / 0.7)) / 2


# ------------------------------------------------------------------ every method


def test_registry_is_lazy() -> None:
    code = (
        "import sys, agents.evaluation.methods as b; "
        "assert {'static','cosine','linear','onecycle','plateau','dac4sgd','grid','random',"
        "'prodigy','schedulefree','mechanic','lrfind_cosine'} <= set(b.METHODS); "
        "loaded = {'prodigyopt','schedulefree','mechanic_pytorch','torch_lr_finder',"
        "'agents.evaluation.methods.hyperfree','agents.evaluation.methods.lrfind'} "
        "& set(sys.modules); "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", LOCAL)
def test_every_method_gives_a_valid_row(rows: Rows, name: str) -> None:
    row = rows[name]
    assert row.method == name == METHODS[name]().name
    assert (row.task, row.seed, row.start_lr_factor) == ("synthetic", 0, 1.0)
    assert not row.diverged
    for value in (row.val_loss, row.val_accuracy, row.test_accuracy, row.best_val_accuracy):
        assert math.isfinite(value)
    assert row.best_val_accuracy >= row.val_accuracy
    assert len(row.trajectory) == DECISIONS + 2
    assert row.samples == BUDGET
    assert row.compute_samples == SEARCH_TRIALS.get(name, 1) * BUDGET
    assert row.wall_time > 0
    assert all(math.isfinite(p["lr"]) and p["lr"] > 0 for p in row.trajectory)
    saved = json.loads(json.dumps(row.to_dict()))  # what runs.jsonl stores
    assert saved["val_accuracy"] == row.val_accuracy
    assert len(saved["trajectory"]) == len(row.trajectory)


# --------------------------------------------------------------------- schedules


@pytest.mark.parametrize(
    ("name", "formula"),
    [
        ("static", lambda p: 1e-3),
        ("cosine", lambda p: 1e-3 * 0.5 * (1 + math.cos(math.pi * p))),
        ("linear", lambda p: 1e-3 * (1 - p)),
        ("onecycle", _onecycle_lr),
        ("prodigy", lambda p: 0.5 * (1 + math.cos(math.pi * p))),
        ("schedulefree", lambda p: 0.0025),
        ("mechanic", lambda p: 1e-3),
        # The tiny cell is too short for a range test: cosine from the default rate.
        ("lrfind_cosine", lambda p: 1e-3 * 0.5 * (1 + math.cos(math.pi * p))),
    ],
)
def test_schedule_lr_at_every_boundary(
    rows: Rows, name: str, formula: Callable[[float], float]
) -> None:
    intervals = _intervals(rows[name])
    assert [p for p, _, _ in intervals] == pytest.approx([k / (DECISIONS + 1) for k in range(5)])
    for progress, _, used in intervals:
        assert used["lr"] == pytest.approx(formula(progress), rel=1e-9)


def test_onecycle_endpoints_and_momentum(rows: Rows) -> None:
    cycle = OneCycle()
    assert cycle.values(1e-3, 0.0) == pytest.approx({"lr": 4e-5, "momentum": 0.95})
    assert cycle.values(1e-3, 0.3) == pytest.approx({"lr": 1e-3, "momentum": 0.85})
    assert cycle.values(1e-3, 1.0) == pytest.approx({"lr": 4e-9, "momentum": 0.95})
    assert "momentum" not in OneCycle(cycle_momentum=False).values(1e-3, 0.5)
    assert OneCycle(max_factor=10).values(1e-3, 0.3)["lr"] == pytest.approx(1e-2)
    for progress, _, used in _intervals(rows["onecycle"]):
        assert used["momentum"] == pytest.approx(cycle.values(1e-3, progress)["momentum"])


def test_schedules_scale_the_starting_lr(spec: RunSpec) -> None:
    low = dataclasses.replace(spec, start_lr_factor=0.1, decisions=1)
    assert [p["lr"] for p in Static().run(low).trajectory] == pytest.approx([1e-4] * 3)
    controller = Cosine().controller(HParams(lr=0.5))
    assert controller(0.5, 1.0)["lr"] == pytest.approx(0.25)
    assert LinearDecay(end_factor=0.1).controller(HParams(lr=1.0))(1.0, None)[
        "lr"
    ] == pytest.approx(0.1)
    assert cosine_factor(1.0, 0.2) == pytest.approx(0.2)


def test_plateau_cuts_after_patience_non_improving_boundaries() -> None:
    control = Plateau().controller(HParams(lr=1.0))
    assert control(0.0, None) == {"lr": 1.0}
    lrs = [control(0.1 * i, loss)["lr"] for i, loss in enumerate([1.0, 0.9, 1.2, 0.95, 0.9], 1)]
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5]  # third boundary in a row without a new best
    assert control(0.6, 0.5)["lr"] == 0.5  # improvement: kept
    rises = [control(0.7, loss)["lr"] for loss in (0.6, 0.6, 0.6)]
    assert rises == [0.5, 0.5, 0.25]


def test_plateau_row_replays(rows: Rows) -> None:
    control = Plateau().controller(HParams(lr=1e-3))
    for progress, loss, used in _intervals(rows["plateau"]):
        assert control(progress, loss)["lr"] == pytest.approx(used["lr"])


def test_dac4sgd_rule_cuts_on_every_rise() -> None:
    control = DAC4SGDRule().controller(HParams(lr=1.0))
    assert control(0.0, None) == {"lr": 1.0}
    assert control(0.2, 1.0)["lr"] == pytest.approx(0.8)  # first loss: nothing to compare
    assert control(0.4, 0.9)["lr"] == pytest.approx(0.6)
    assert control(0.6, 0.95)["lr"] == pytest.approx(0.4 * 0.05)  # a rise: cut x 0.05
    assert control(0.8, 0.94)["lr"] == pytest.approx(0.2 * 0.05)  # cut stays
    assert control(0.9, 1.5)["lr"] == pytest.approx(0.1 * 0.05**2)


def test_dac4sgd_row_replays(rows: Rows) -> None:
    control = DAC4SGDRule().controller(HParams(lr=1e-3))
    for progress, loss, used in _intervals(rows["dac4sgd"]):
        assert control(progress, loss)["lr"] == pytest.approx(used["lr"])


# ------------------------------------------------------------------------ search


def _row(acc: float, loss: float, diverged: bool = False) -> MethodResult:
    return MethodResult("m", "t", 0, 1.0, loss, acc, math.nan, acc, 1, 1, 0.0, diverged)


def test_best_index_prefers_accuracy_then_loss_and_never_diverged() -> None:
    assert best_index([_row(0.5, 1.0), _row(0.7, 2.0), _row(0.7, 1.5)]) == 2
    assert best_index([_row(0.9, 0.1, diverged=True), _row(0.1, 3.0)]) == 1
    assert best_index([_row(math.nan, math.nan), _row(0.1, 3.0)]) == 1
    assert best_index([_row(0.5, 1.0), _row(0.5, 1.0)]) == 0


def test_grid_chooses_the_best_point(rows: Rows) -> None:
    row, extra = rows["grid"], rows["grid"].extra
    lrs = extra["grid_lrs"]
    assert lrs == pytest.approx(GridSearch().lrs(1e-3))
    assert lrs[0] == pytest.approx(1e-5)
    assert lrs[-1] == pytest.approx(10**-1.5)
    assert lrs[4] == pytest.approx(1e-3)  # the default is on the grid
    chosen = extra["chosen_index"]
    assert extra["chosen_lr"] == lrs[chosen] == row.trajectory[0]["lr"]
    keys = list(zip(extra["grid_val_accuracy"], [-v for v in extra["grid_val_loss"]], strict=True))
    assert keys[chosen] == max(keys)
    assert (row.val_accuracy, row.val_loss) == (
        extra["grid_val_accuracy"][chosen],
        extra["grid_val_loss"][chosen],
    )
    assert row.compute_samples == sum(extra["grid_samples"])


def test_random_search_is_seeded_in_range_and_chooses_the_best(
    rows: Rows,
) -> None:
    search = RandomSearch()
    defaults = get_task("synthetic").defaults
    configs = search.sample(defaults, 0)
    assert configs == search.sample(defaults, 0)
    assert configs != search.sample(defaults, 1)
    assert len({c.lr for c in configs}) == search.trials
    for hp in configs:
        lo, hi = RANDOM_RANGES["lr"]
        assert lo * defaults.lr <= hp.lr <= hi * defaults.lr
        assert RANDOM_RANGES["momentum"][0] <= hp.momentum <= RANDOM_RANGES["momentum"][1]
        assert 1e-6 <= hp.weight_decay <= 1e-2
        assert hp.batch_size in {defaults.batch_size * 2**k for k in range(-2, 3)}
        assert 0.0 <= hp.dropout <= 0.5
    extra = rows["random"].extra
    trials = extra["trials"]
    assert [t["lr"] for t in trials] == [c.lr for c in configs]
    keys = [(t["val_accuracy"], -t["val_loss"]) for t in trials]
    assert keys[extra["chosen_index"]] == max(keys)
    assert extra["chosen_lr"] == configs[extra["chosen_index"]].lr
    assert rows["random"].compute_samples == sum(t["samples"] for t in trials)
    with pytest.raises(ValueError, match="cannot tune"):
        RandomSearch(tuned=("lr", "grad_clip"))


# -------------------------------------------------------------------- hyperfree


def test_prodigy_records_its_step_size(rows: Rows) -> None:
    extra = rows["prodigy"].extra
    assert len(extra["d"]) == DECISIONS
    assert all(d > 0 and math.isfinite(d) for d in extra["d"])
    assert extra["d"] == sorted(extra["d"])  # Prodigy's d never decreases


def test_schedulefree_scores_the_averaged_weights_under_inference_mode() -> None:
    schedulefree = pytest.importorskip("schedulefree")
    task = get_task("digits")

    def factory(params: list[torch.nn.Parameter], hp: HParams) -> torch.optim.Optimizer:
        return schedulefree.AdamWScheduleFree(params, lr=hp.lr, warmup_steps=2)

    run = TrainingRun(
        task,
        hparams=task.defaults.replace(optimizer="adamw", lr=0.0025),
        data=tiny_task_data(task),
        device="cpu",
        optimizer_factory=factory,
    )
    run.train(128)
    y = [p.detach().clone() for p in run.model.parameters()]
    first = run.evaluate()
    x = [p.detach().clone() for p in run.model.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(x, y, strict=True))  # eval() moved to x
    again = run.evaluate()  # eval() is idempotent
    assert (again.loss, again.accuracy) == pytest.approx((first.loss, first.accuracy), abs=1e-5)
    run.optimizer.train()  # type: ignore[attr-defined]
    back = [p.detach() for p in run.model.parameters()]
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(back, y, strict=True))
    assert not any(p.is_inference() for p in run.model.parameters())
    assert not run.train(64).diverged


def test_a_cell_can_train_with_another_optimizer():
    spec = RunSpec("digits", 0, optimizer="sgd", start_lr_factor=0.1)
    start = spec.start_hparams()
    assert start.optimizer == "sgd"
    assert start.lr == pytest.approx(0.005)  # SGD's usual 0.05, x0.1
    assert start.momentum == 0.9
    assert RunSpec("digits", 0).start_hparams().optimizer == "adam"


def test_synthetic_family_can_draw_optimizers():
    import numpy as np

    from hpenv.tasks import SyntheticFamily

    rng = np.random.default_rng(0)
    default = SyntheticFamily().sample(np.random.default_rng(0))
    mixed = [SyntheticFamily(optimizers=("sgd", "adam")).sample(rng) for _ in range(20)]
    assert {s.optimizer for s in mixed} == {"sgd", "adam"}
    assert dataclasses.replace(mixed[0], optimizer="adam") == default  # same other draws
    sgd = next(s for s in mixed if s.optimizer == "sgd").task()
    assert (sgd.defaults.optimizer, sgd.defaults.lr) == ("sgd", 0.05)


def test_mechanic_wraps_the_cells_optimizer_and_records_its_scale(rows: Rows) -> None:
    extra = rows["mechanic"].extra
    assert (extra["optimizer"], extra["lr"]) == ("adam", 1e-3)
    assert len(extra["scale"]) == DECISIONS
    assert all(s > 0 and math.isfinite(s) for s in extra["scale"])
    assert extra["effective_lr"] == pytest.approx([s * 1e-3 for s in extra["scale"]])


def test_mechanic_starts_from_the_cells_rate_with_its_optimizer(spec: RunSpec) -> None:
    pytest.importorskip("mechanic_pytorch")
    from agents.evaluation.methods.hyperfree import Mechanic

    sgd = dataclasses.replace(spec, optimizer="sgd", start_lr_factor=0.1, decisions=1)
    row = Mechanic().run(sgd)
    assert (row.extra["optimizer"], row.extra["lr"]) == ("sgd", pytest.approx(0.005))
    assert [p["lr"] for p in row.trajectory] == pytest.approx([0.005] * 3)
    assert row.extra["scale"][0] > 0  # only a mechanized optimizer has a scale


# ------------------------------------------------------- range test, then cosine

LRFIND_BUDGET = 6_400  # 100 Adam steps at batch 64: the probe's 20-step range test fits


@pytest.fixture(scope="module")
def lrfind_spec(spec: RunSpec) -> RunSpec:
    return dataclasses.replace(spec, fidelity=Fidelity(budget=LRFIND_BUDGET))


@pytest.fixture(scope="module")
def lrfind_row(lrfind_spec: RunSpec) -> MethodResult:
    pytest.importorskip("torch_lr_finder")
    torch.set_num_threads(1)
    return METHODS["lrfind_cosine"]().run(lrfind_spec)


def test_a_prepare_step_spends_its_samples_then_the_intervals_train_the_rest(
    spec: RunSpec,
) -> None:
    from agents.evaluation.methods.core import CellRun, NotBatchable, run_intervals, train_runs

    def spend(run: TrainingRun) -> dict[str, float]:
        run.spend(70)
        return {"lr": 0.01}

    row = run_intervals(spec, prepare=spend)
    assert [p["samples"] for p in row.trajectory] == [0, 130, 190, 250, 300]
    assert [p["lr"] for p in row.trajectory] == [1e-3, 0.01, 0.01, 0.01, 0.01]
    assert row.samples == row.compute_samples == BUDGET
    with pytest.raises(NotBatchable, match="before the first interval"):
        train_runs([CellRun(spec, spec.start_hparams(), prepare=spend)], engine="population")
    with pytest.raises(ValueError, match="nothing is left to train"):
        run_intervals(spec, prepare=lambda run: run.spend(BUDGET) or {})


def test_lrfind_spends_the_probes_steps_and_anneals_from_the_suggestion(
    lrfind_row: MethodResult,
) -> None:
    from hpenv.probe import ProbeConfig

    row, extra = lrfind_row, lrfind_row.extra
    steps = ProbeConfig().steps_for(LRFIND_BUDGET // 64)
    assert extra["range_test_steps"] == extra["range_test_trained"] == steps == 20
    assert extra["range_test_samples"] == steps * 64
    assert row.samples == row.compute_samples == LRFIND_BUDGET
    assert extra["fallback"] is None
    lrs = extra["range_test_lrs"]
    assert lrs[0] == pytest.approx(1e-6)
    assert lrs[-1] == pytest.approx(1.0, rel=1e-3)
    suggestion = extra["suggested_lr"]
    assert 1e-6 < suggestion < 1
    assert extra["lr"] == suggestion
    start = steps * 64 / LRFIND_BUDGET
    traj = row.trajectory
    assert traj[0]["lr"] == 1e-3  # the untrained model: the cell's default
    assert traj[1]["samples"] == steps * 64 + LRFIND_BUDGET // (DECISIONS + 1)
    for before, used in itertools.pairwise(traj[1:]):
        expected = suggestion * cosine_factor((before["progress"] - start) / (1 - start))
        assert used["lr"] == pytest.approx(expected, rel=1e-9)
    assert traj[1]["lr"] == pytest.approx(suggestion, rel=1e-12)  # the cosine's start


def test_steepest_suggestion_is_torch_lr_finders() -> None:
    torch_lr_finder = pytest.importorskip("torch_lr_finder")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agents.evaluation.methods.lrfind import steepest_suggestion

    lrs = list(np.geomspace(1e-6, 1.0, 30))
    losses = [2.0 - math.tanh(4 * (k / 30 - 0.5)) + 0.01 * math.sin(7 * k) for k in range(30)]
    model = torch.nn.Linear(2, 2)
    finder = torch_lr_finder.LRFinder(model, torch.optim.SGD(model.parameters()), None)
    finder.history = {"lr": lrs, "loss": losses}
    figure, axes = plt.subplots()
    _, expected = finder.plot(ax=axes, suggest_lr=True)
    plt.close(figure)
    assert steepest_suggestion(lrs, losses) == (expected, None)
    lr, why = steepest_suggestion(lrs[:16], losses[:16])
    assert math.isnan(lr)
    assert "needs 17" in (why or "")
    lr, why = steepest_suggestion(lrs, [*losses[:12], math.nan, *losses[13:]])
    assert math.isnan(lr)
    assert "non-finite" in (why or "")


@pytest.mark.parametrize(
    ("task", "amp"), [("synthetic", False), ("digits_cnn", False), ("synthetic", True)]
)
def test_the_range_test_restores_the_run_and_uses_up_its_batches(task: str, amp: bool) -> None:
    pytest.importorskip("torch_lr_finder")
    from agents.evaluation.methods.lrfind import LRFindCosine

    torch.set_num_threads(1)
    data = tiny_task_data(get_task(task), n_train=128)
    run, twin = (TrainingRun(task, seed=0, device="cpu", data=data, amp=amp) for _ in range(2))
    start = run.weights_state()
    test = LRFindCosine().range_test(run, steps=6)
    batch = run.hparams.batch_size
    assert (test.steps, test.samples, run.samples_done) == (6, 6 * batch, 6 * batch)
    assert len(test.lrs) == len(test.losses) == 6
    assert test.losses[0] != test.losses[-1]
    for name, value in start["model"].items():
        assert torch.equal(run.model.state_dict()[name], value), name
    assert run.optimizer.state_dict() == start["optimizer"]
    assert [g["lr"] for g in run.optimizer.param_groups] == [run.hparams.lr]
    for _ in range(6):  # the twin draws the same batches without training on them
        twin.next_batch(batch)
    twin.spend(6 * batch)
    run.train(2 * batch)
    twin.train(2 * batch)
    for a, b in zip(run.model.parameters(), twin.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_lrfind_falls_back_to_the_default_rate_when_nothing_is_suggested(
    lrfind_spec: RunSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch_lr_finder")
    from agents.evaluation.methods import lrfind

    monkeypatch.setattr(lrfind, "steepest_suggestion", lambda *args: (math.nan, None))
    short = dataclasses.replace(lrfind_spec, decisions=1)
    row = lrfind.LRFindCosine().run(short)
    extra = row.extra
    assert math.isnan(extra["suggested_lr"])
    assert extra["lr"] == 1e-3
    assert "suggested no finite rate" in extra["fallback"]
    assert row.samples == LRFIND_BUDGET
    assert extra["range_test_samples"] == 20 * 64
    assert row.trajectory[1]["lr"] == 1e-3
    assert not hasattr(lrfind.LRFindCosine(), "runs")  # the batched engine runs it alone
