"""The evaluation harness: statistics on fixed numbers, a tiny end-to-end grid, resume,
the training-task refusal, skipped and failing methods, the optuna warm-start order."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from policies import make_policy

from agents.evaluation import (
    COLUMNS,
    EvalConfig,
    TrainingTaskError,
    check_training_tasks,
    construct_warm,
    evaluate,
    lr_log10_distance,
    mean_log10_lr,
    mean_std,
    paired_comparison,
    parse_fidelity,
    plan_cells,
    samples_to_target,
    win_tie_loss,
)
from agents.evaluation.methods.core import IntervalReport, MethodResult, RunSpec, run_intervals
from agents.policy import FrozenPolicy
from hpenv.plan import Fidelity
from scripts import load_script

TINY = ("digits:0.1:2",)  # 144 training samples x 2 epochs = 288 samples per run

# ------------------------------------------------------------------ statistics


def test_mean_std_hand_computed():
    spread = mean_std([0.8, 0.9, 1.0, math.nan])
    assert spread.n == 3
    assert spread.mean == pytest.approx(0.9)
    assert spread.std == pytest.approx(0.1)  # sample std: sqrt((0.01 + 0 + 0.01) / 2)
    assert mean_std([0.5]).n == 1
    assert math.isnan(mean_std([0.5]).std)
    assert mean_std([]).n == 0
    assert mean_std([]).format() == "n/a"


def test_paired_t_test_hand_computed():
    # d = (0.05, -0.02, 0.05): mean 0.08/3, sd of the mean sqrt(32.67e-4 / 2 / 3) = 0.07/3
    result = paired_comparison([0.90, 0.80, 0.85], [0.85, 0.82, 0.80])
    assert result.n == 3
    assert result.mean_difference == pytest.approx(0.08 / 3)
    assert result.t_statistic == pytest.approx(8 / 7)
    # Student t with 2 degrees of freedom: two-sided p = 1 - |t| / sqrt(2 + t^2)
    t = 8 / 7
    assert result.t_pvalue == pytest.approx(1 - t / math.sqrt(2 + t * t))
    # ranks of |d|: 0.02 -> 1, the two 0.05 -> 2.5 each; W = min(5, 1)
    assert result.wilcoxon_statistic == pytest.approx(1.0)
    assert (result.wins, result.ties, result.losses) == (2, 0, 1)


def test_wilcoxon_and_t_test_hand_computed_five_pairs():
    # d = (0.05, -0.02, 0.03, 0.10, 0.04): |d| ranks 4, 1, 2, 5, 3; negative rank sum 1
    policy = [0.55, 0.48, 0.53, 0.60, 0.54]
    result = paired_comparison(policy, [0.50] * 5)
    assert result.wilcoxon_statistic == pytest.approx(1.0)
    # exact null: rank sums <= 1 are {} and {1}, 2 of 2^5 sign patterns; two-sided x2
    assert result.wilcoxon_pvalue == pytest.approx(4 / 32)
    # mean 0.04, sample variance 74e-4 / 4, t = 0.04 / sqrt(18.5e-4 / 5)
    t = 0.04 / math.sqrt(18.5e-4 / 5)
    assert result.t_statistic == pytest.approx(t)
    # Student t with 4 degrees of freedom in closed form
    x = t * t / 4
    cdf = 0.5 + 3 / 8 * t / math.sqrt(1 + x) * (1 - t * t / (12 * (1 + x)))
    assert result.t_pvalue == pytest.approx(2 * (1 - cdf))
    assert (result.wins, result.ties, result.losses) == (4, 0, 1)


def test_paired_comparison_all_zero_and_single_pair():
    same = paired_comparison([0.5, 0.6, 0.7], [0.5, 0.6, 0.7])
    assert (same.t_statistic, same.t_pvalue) == (0.0, 1.0)
    assert (same.wilcoxon_statistic, same.wilcoxon_pvalue) == (0.0, 1.0)
    assert (same.wins, same.ties, same.losses) == (0, 3, 0)
    one = paired_comparison([0.7], [0.6])
    assert one.n == 1
    assert math.isnan(one.t_pvalue)
    assert one.wins == 1
    assert paired_comparison([], []).n == 0


def test_seed_bootstrap_interval_includes_the_draw_of_meta_training_seeds():
    from agents.evaluation.stats import seed_bootstrap_interval

    rng = np.random.default_rng(0)
    reference = np.tile(rng.uniform(0.5, 0.9, size=20), (5, 1))  # 5 seeds that agree
    low, high = seed_bootstrap_interval(reference + 0.01, reference)
    assert low == pytest.approx(0.01)  # only a shift: exact
    assert high == pytest.approx(0.01)
    # one seed of five collapses on every cell: each cell's mean over seeds is 0.06 lower,
    # so a test over cells averaged over seeds is certain; over the seeds' draw it is not
    mine = reference.copy()
    mine[0] -= 0.3
    mean_cells = mine.mean(axis=0)
    assert paired_comparison(mean_cells, reference[0]).wilcoxon_pvalue < 1e-4
    low, high = seed_bootstrap_interval(mine, reference)
    assert low < -0.1
    assert high == pytest.approx(0.0, abs=1e-12)  # the draws without seed 0 differ by 0
    mine[1, :3] = np.nan  # a seed that lacks cells counts where it ran
    assert np.isfinite(seed_bootstrap_interval(mine, reference)).all()
    with pytest.raises(ValueError, match="same cells"):
        seed_bootstrap_interval(mine[:, :5], reference)


def test_win_tie_loss_tolerance():
    # d = 0.1, 5e-5, 0, -0.1, -5e-5, 2e-4: ties are |d| < 1e-4
    policy = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    baseline = [0.4, 0.49995, 0.5, 0.6, 0.50005, 0.4998]
    assert win_tie_loss(policy, baseline) == (2, 3, 1)
    assert win_tie_loss(policy, baseline, tolerance=0.2) == (0, 6, 0)


def _traj(samples: list[int], accuracies: list[float], lrs: list[float] | None = None):
    lrs = lrs or [1e-3] * len(samples)
    total = samples[-1]
    return [
        {"progress": s / total, "samples": s, "lr": lr, "val_loss": 1.0, "val_accuracy": a}
        for s, a, lr in zip(samples, accuracies, lrs, strict=True)
    ]


def test_samples_to_target_hand_computed():
    trajectory = _traj([0, 50, 100, 150], [0.1, math.nan, 0.8, 0.9])
    assert samples_to_target(trajectory, 0.76) == 100
    assert samples_to_target(trajectory, 0.8) == 100  # >= target
    assert samples_to_target(trajectory, 0.05) == 0
    assert math.isnan(samples_to_target(trajectory, 0.95))
    assert math.isnan(samples_to_target(trajectory, math.nan))


def test_lr_distance_hand_computed():
    # intervals trained at 1e-3 (100 samples), 1e-2 (100), 1e-4 (200): (-3 - 2 - 8) / 4
    trajectory = _traj([0, 100, 200, 400], [0.1] * 4, [1e-3, 1e-3, 1e-2, 1e-4])
    assert mean_log10_lr(trajectory) == pytest.approx(-3.25)
    assert lr_log10_distance(trajectory, 1e-3) == pytest.approx(0.25)
    assert lr_log10_distance(trajectory, 1e-5) == pytest.approx(1.75)
    assert math.isnan(lr_log10_distance(trajectory, math.nan))


def test_plan_puts_optuna_warm_last():
    cells = plan_cells(["optuna_warm", "static", "optuna"], ["a", "b"], [1.0], [0, 1])
    methods = [c[0] for c in cells]
    assert methods.count("optuna_warm") == 4
    assert set(methods[-4:]) == {"optuna_warm"}
    assert cells[0] == ("static", "a", 0, 1.0)


def test_config_validation():
    assert parse_fidelity("digits:0.1:2") == ("digits", Fidelity(subset=0.1, budget_epochs=2.0))
    assert parse_fidelity("digits::3") == ("digits", Fidelity(budget_epochs=3.0))
    with pytest.raises(ValueError, match="TASK:SUBSET:EPOCHS"):
        EvalConfig(policy="p.pt", fidelity=("digits:0.1",))
    EvalConfig(tasks=("digits",))  # no --policy: the shipped policy is the default
    with pytest.raises(ValueError, match="resume needs out_dir"):
        EvalConfig(policy="p.pt", resume=True)
    with pytest.raises(ValueError, match="unknown task"):
        EvalConfig(policy="p.pt", tasks=("no_such_task",))
    EvalConfig(tasks=("digits",), methods=("static",))  # no policy needed without it


# ------------------------------------------------------------------ tiny methods


@dataclass
class Counting:
    """A real interval run (static, or linear decay) that counts its calls."""

    name: str
    calls: Counter[str]
    decay: bool = False

    def run(self, spec: RunSpec) -> MethodResult:
        self.calls[self.name] += 1
        start = spec.start_hparams().lr

        def linear(report: IntervalReport) -> dict[str, Any]:
            return {"lr": start * max(1.0 - report.progress, 0.05)}

        result = run_intervals(spec, linear if self.decay else None, method=self.name)
        result.extra = {"chosen_lr": start}  # read as grid's choice when named "grid"
        return result


@dataclass
class Fake:
    """No training: a fixed trajectory per seed (hand-checkable derived columns)."""

    name: str
    calls: Counter[str]
    accuracies: dict[int, list[float]]
    multiple: int = 1
    extra: Callable[[RunSpec], dict[str, Any]] = lambda spec: {}
    log: list[tuple[str, str]] = field(default_factory=list)

    def run(self, spec: RunSpec) -> MethodResult:
        self.calls[self.name] += 1
        self.log.append((self.name, spec.task))
        accuracies = self.accuracies[spec.seed]
        trajectory = _traj([0, 50, 100], accuracies)
        final = accuracies[-1]
        return MethodResult(
            self.name, spec.task, spec.seed, spec.start_lr_factor, 1.0, final, math.nan,
            max(accuracies), 100, 100 * self.multiple, 0.01, False, trajectory, self.extra(spec),
        )  # fmt: skip


@dataclass
class Raising:
    name: str
    error: type[Exception]

    def run(self, spec: RunSpec) -> MethodResult:
        raise self.error("No module named 'not_installed'")


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny untrained policy (decisions=3), and a copy that claims digits as a training task."""
    folder = tmp_path_factory.mktemp("policies")
    policy = make_policy(decisions=3)
    meta = dataclasses.replace(policy.metadata, tasks=("synthetic", "digits"))
    trained = FrozenPolicy(
        policy.policy, policy.obs_mean, policy.obs_var, policy.clip_obs, policy.epsilon, meta
    )
    return {
        "heldout": policy.save(folder / "policy.pt"),
        "trained": trained.save(folder / "trained.pt"),
    }


# ------------------------------------------------------------------ end to end


def test_end_to_end_tiny_grid(artifacts: dict[str, Path], tmp_path: Path):
    calls: Counter[str] = Counter()
    methods = {
        "static": lambda: Counting("static", calls),
        "linear": lambda: Counting("linear", calls, decay=True),
        "grid": lambda: Counting("grid", calls),
    }
    out = tmp_path / "report"
    config = EvalConfig(
        policy=str(artifacts["heldout"]), tasks=("digits",), seeds=(0, 1),
        methods=("policy", "static", "linear", "grid"), fidelity=TINY, out_dir=str(out),
    )  # fmt: skip
    report = evaluate(config, methods, argv=["evaluate", "--tasks", "digits"], progress=False)
    assert report.out_dir == out
    assert (report.runs, report.errors, report.skipped) == (8, 0, {})

    rows = _rows(out)
    assert list(rows[0]) == list(COLUMNS)
    assert len(rows) == 8
    assert {(r["method"], r["seed"]) for r in rows} == {
        (m, s) for m in ("policy", "static", "linear", "grid") for s in ("0", "1")
    }
    for row in rows:
        assert row["error"] == ""
        assert row["samples"] == row["compute_samples"] == "288"
        assert float(row["compute_multiple"]) == 1.0
        if row["diverged"] == "False":
            assert 0.0 <= float(row["val_accuracy"]) <= 1.0
            assert math.isfinite(float(row["val_loss"]))
        assert float(row["wall_time"]) > 0
    static = [r for r in rows if r["method"] == "static"]
    # target = 0.95 x static's mean: the better static seed always reaches it
    assert any(math.isfinite(float(r["samples_to_target"])) for r in static)
    policy_rows = [r for r in rows if r["method"] == "policy"]
    assert all(float(r["lr_log10_distance_to_grid"]) >= 0 for r in policy_rows)
    assert all(r["lr_log10_distance_to_grid"] == "nan" for r in static)

    records = _records(out)
    assert len(records) == 8
    assert all(len(r["trajectory"]) == 3 + 2 for r in records)  # initial + 4 intervals
    assert {"method", "task", "seed", "start_lr_factor", "extra"} <= set(records[0])

    summary = (out / "summary.md").read_text()
    assert "`evaluate --tasks digits`" in summary
    assert "torch" in summary
    assert "Wilcoxon" in summary
    assert "## Aggregate over tasks (rliable)" in summary
    assert "| digits | 1 |" in summary
    for name in ("curves_digits.png", "lr_digits.png"):
        assert (out / name).stat().st_size > 1000
    for method in ("policy", "static", "linear", "grid"):
        assert list((out / "tb" / method).glob("events.out.tfevents.*"))

    # resume with one more seed: only the new cells run
    calls.clear()
    more = dataclasses.replace(config, seeds=(0, 1, 2), resume=True)
    report = evaluate(more, methods, progress=False)
    assert calls == Counter({"static": 1, "linear": 1, "grid": 1})
    assert report.runs == 12
    assert len(_rows(out)) == 12
    assert len(_records(out)) == 12


def test_derived_columns_resume_and_torn_lines(tmp_path: Path):
    calls: Counter[str] = Counter()
    methods = {
        "static": lambda: Fake("static", calls, {0: [0.1, 0.5, 0.8], 1: [0.1, 0.5, 0.6]}),
        "fast": lambda: Fake("fast", calls, {0: [0.1, 0.7, 0.9], 1: [0.1, 0.2, 0.3]}, 3),
    }
    out = tmp_path / "report"
    config = EvalConfig(
        tasks=("digits",), seeds=(0, 1), methods=("static", "fast"), out_dir=str(out),
        fidelity=TINY, target_fraction=0.95,
    )  # fmt: skip
    evaluate(config, methods, progress=False)
    assert calls == Counter({"static": 2, "fast": 2})
    rows = {(r["method"], r["seed"]): r for r in _rows(out)}
    # static's mean final accuracy 0.7 -> target 0.665
    assert float(rows[("static", "0")]["samples_to_target"]) == 100
    assert rows[("static", "1")]["samples_to_target"] == "nan"
    assert float(rows[("fast", "0")]["samples_to_target"]) == 50
    assert rows[("fast", "1")]["samples_to_target"] == "nan"
    assert float(rows[("fast", "0")]["compute_multiple"]) == 3.0
    summary = (out / "summary.md").read_text()
    assert "0.7000 ± 0.1414" in summary  # static: mean and sample std of (0.8, 0.6)

    # an interrupted append: a torn last line in both files; the cell runs again
    with open(out / "results.csv", "a") as fh:
        fh.write("fast,digits,0,1.0,0.5,0.")
    with open(out / "runs.jsonl", "a") as fh:
        fh.write('{"method": "fast", "task": "dig')
    calls.clear()
    evaluate(dataclasses.replace(config, resume=True), methods, progress=False)
    assert calls == Counter()  # every cell was finished
    rows_after = _rows(out)
    assert len(rows_after) == 4
    assert len(_records(out)) == 4

    with pytest.raises(FileExistsError):  # no silent mixing without resume
        evaluate(config, methods, progress=False)


def test_training_tasks_refused_unless_included(artifacts: dict[str, Path], tmp_path: Path):
    check_training_tasks(["digits"], ["synthetic"], False)  # the family is not "digits"
    with pytest.raises(TrainingTaskError, match="synthetic"):
        check_training_tasks(["synthetic"], ["synthetic"], False)
    calls: Counter[str] = Counter()
    methods = {"static": lambda: Fake("static", calls, {0: [0.1, 0.5, 0.8]})}
    config = EvalConfig(
        policy=str(artifacts["trained"]), tasks=("digits",), seeds=(0,), methods=("static",),
        fidelity=TINY, out_dir=str(tmp_path / "refused"),
    )  # fmt: skip
    with pytest.raises(TrainingTaskError, match=r"\['digits'\].*include-training-tasks"):
        evaluate(config, methods, progress=False)
    assert not (tmp_path / "refused").exists()
    assert calls == Counter()
    allowed = dataclasses.replace(config, include_training_tasks=True)
    assert evaluate(allowed, methods, progress=False).runs == 1


def test_cli_refuses_training_tasks(artifacts: dict[str, Path], tmp_path: Path, capsys):
    cli = load_script("evaluate")
    argv = ["--policy", str(artifacts["trained"]), "--tasks", "digits", "--out-dir",
            str(tmp_path / "cli")]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "include-training-tasks" in capsys.readouterr().err


def test_import_error_skips_method_and_errors_are_recorded(tmp_path: Path):
    calls: Counter[str] = Counter()
    methods = {
        "static": lambda: Fake("static", calls, {0: [0.1, 0.5, 0.8], 1: [0.1, 0.5, 0.6]}),
        "needs_pkg": lambda: Raising("needs_pkg", ImportError),
        "broken": lambda: Raising("broken", RuntimeError),
    }
    out = tmp_path / "report"
    config = EvalConfig(
        tasks=("digits",), seeds=(0, 1), methods=("static", "needs_pkg", "broken"),
        fidelity=TINY, out_dir=str(out),
    )  # fmt: skip
    report = evaluate(config, methods, progress=False)
    assert list(report.skipped) == ["needs_pkg"]
    assert "not_installed" in report.skipped["needs_pkg"]
    assert report.errors == 2
    rows = _rows(out)
    assert {r["method"] for r in rows} == {"static", "broken"}
    broken = [r for r in rows if r["method"] == "broken"]
    assert all(r["error"].startswith("RuntimeError") for r in broken)
    assert all(r["val_accuracy"] == "nan" for r in broken)
    assert calls["static"] == 2
    summary = (out / "summary.md").read_text()
    assert "## Skipped methods" in summary
    assert summary.count("`needs_pkg`") == 1
    assert "## Failed runs" in summary
    records = _records(out)
    assert "Traceback" in next(r for r in records if r["method"] == "broken")["error"]


def test_optuna_warm_runs_last_with_other_tasks_params(tmp_path: Path):
    calls: Counter[str] = Counter()
    log: list[tuple[str, str]] = []
    seen: dict[str, dict[str, Any]] = {}

    def best(spec: RunSpec) -> dict[str, Any]:
        return {"best_params": {"lr_factor": spec.seed + 1.0, "from": spec.task}}

    def warm(warm_configs: dict[str, Any]) -> Fake:
        method = Fake("optuna_warm", calls, {0: [0.1, 0.5, 0.8]}, log=log)
        original = method.run

        def run(spec: RunSpec) -> MethodResult:
            seen[spec.task] = warm_configs
            return original(spec)

        method.run = run  # type: ignore[method-assign]
        return method

    methods = {
        "optuna": lambda: Fake("optuna", calls, {0: [0.1, 0.5, 0.8]}, 4, best, log),
        "optuna_warm": warm,
        "static": lambda: Fake("static", calls, {0: [0.1, 0.5, 0.8]}, log=log),
    }
    config = EvalConfig(
        tasks=("digits", "synthetic"), seeds=(0,), methods=("optuna_warm", "static", "optuna"),
        fidelity=(*TINY, "synthetic:0.05:1"), out_dir=str(tmp_path / "warm"),
    )  # fmt: skip
    evaluate(config, methods, progress=False)
    order = [name for name, _ in log]
    assert order[-2:] == ["optuna_warm", "optuna_warm"]
    assert seen["digits"] == {"synthetic": [{"lr_factor": 1.0, "from": "synthetic"}]}
    assert seen["synthetic"] == {"digits": [{"lr_factor": 1.0, "from": "digits"}]}


def test_construct_warm_with_a_lazy_factory():
    @dataclass
    class Warm:
        warm_configs: dict[str, Any] = field(default_factory=dict)
        name: str = "optuna_warm"

        def run(self, spec: RunSpec) -> MethodResult:
            raise NotImplementedError

    configs = {"mnist": [{"lr_factor": 2.0}]}
    assert construct_warm(lambda: Warm(), configs).warm_configs == configs  # type: ignore[attr-defined]
    assert construct_warm(Warm, configs).warm_configs == configs  # type: ignore[attr-defined]


def test_statistics_arrays_accepted():
    result = paired_comparison(np.array([0.6, 0.7]), np.array([0.5, 0.5]))
    assert result.wins == 2


def test_default_policy_is_the_shipped_one_and_refuses_its_training_tasks(tmp_path: Path):
    from agents.evaluation import TrainingTaskError, evaluate

    with pytest.raises(TrainingTaskError, match="digits"):
        evaluate(EvalConfig(tasks=("digits",), out_dir=str(tmp_path / "x")))


def test_rliable_aggregate_on_fixed_scores():
    from agents.evaluation.aggregate import rliable_section, score_matrices

    scores = {}
    for seed in range(4):
        for task, base in (("a", 0.5), ("b", 0.9)):
            scores[("static", task, 1.0, seed)] = base
            scores[("policy", task, 1.0, seed)] = base + 0.01 * (seed + 1)
    scores[("policy", "a", 1.0, 9)] = 0.1  # a seed static lacks: left out
    matrices, cells, seeds = score_matrices(scores, ["policy", "static"])
    assert cells == [("a", 1.0), ("b", 1.0)]
    assert seeds == [0, 1, 2, 3]
    assert matrices["policy"].shape == (4, 2)
    text = "\n".join(rliable_section(scores, ["policy", "static"]))
    assert "| static | 0.7000 [0.7000, 0.7000] | 0.7000 [0.7000, 0.7000] | 0 (reference)" in text
    assert "| policy | " in text
    assert "2.50 [" in text  # mean gain: (1 + 2 + 3 + 4) / 4 points
    assert "τ=0.8" in text


def test_grid_points_set_the_grid_and_its_compute(tmp_path: Path):
    out = tmp_path / "grid"
    config = EvalConfig(tasks=("digits",), seeds=(0,), methods=("grid",), fidelity=TINY,
                        grid_points=3, out_dir=str(out))  # fmt: skip
    evaluate(config, progress=False)
    row = next(csv.DictReader((out / "results.csv").open()))
    assert float(row["compute_multiple"]) == 3.0
    record = json.loads((out / "runs.jsonl").read_text().splitlines()[0])
    assert len(record["extra"]["grid_lrs"]) == 3
    with pytest.raises(ValueError, match="grid_points=3, not 8"):
        evaluate(dataclasses.replace(config, grid_points=8, resume=True), progress=False)


def test_test_from_val_scores_tasks_without_a_test_split_on_rows_no_run_read(tmp_path: Path):
    """--test-from-val: the digits (no test split) lend half of their validation split to one;
    every run reads the other half; the setting is recorded and a resume must keep it."""
    from hpenv.tasks import get_task

    whole = get_task("digits").load_data()
    carved = get_task("digits").load_data(test_from_val=True)
    assert whole.test_x is None
    assert carved.val_x.shape[0] + carved.test_x.shape[0] == whole.val_x.shape[0]
    assert torch.equal(carved.train_x, whole.train_x)
    assert carved.test_from_val() is carved  # a test split of its own: unchanged
    plain, held = tmp_path / "plain", tmp_path / "held"
    config = EvalConfig(tasks=("digits",), seeds=(0,), methods=("static",), fidelity=TINY,
                        out_dir=str(plain))  # fmt: skip
    evaluate(config, progress=False)
    evaluate(dataclasses.replace(config, test_from_val=True, out_dir=str(held)), progress=False)
    (before,), (after,) = _rows(plain), _rows(held)
    assert math.isnan(float(before["test_accuracy"]))
    assert 0.0 <= float(after["test_accuracy"]) <= 1.0
    assert before["val_accuracy"] != after["val_accuracy"]  # scored on the kept half
    assert json.loads((held / "config.json").read_text())["config"]["test_from_val"] is True
    with pytest.raises(ValueError, match="test_from_val=True, not False"):
        evaluate(dataclasses.replace(config, out_dir=str(held), resume=True), progress=False)


def test_ablation_table_over_meta_seeds(tmp_path: Path):
    from agents.evaluation.ablation import ablation_markdown
    from agents.evaluation.records import RAW_COLUMNS

    def write(directory: Path, policy_acc: float) -> Path:
        directory.mkdir()
        with open(directory / "results.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=RAW_COLUMNS)
            writer.writeheader()
            for task, base in (("a", 0.5), ("b", 0.8)):
                for seed in range(3):
                    for method, acc in (("static", base), ("policy", base + policy_acc)):
                        row = dict.fromkeys(RAW_COLUMNS, "")
                        row.update(method=method, task=task, seed=seed, start_lr_factor=1.0,
                                   val_accuracy=acc + 0.001 * seed, diverged=False)  # fmt: skip
                        writer.writerow(row)
        return directory

    recipes = {"r": [write(tmp_path / "s0", 0.01), write(tmp_path / "s1", 0.03)]}
    text = ablation_markdown(recipes, baselines=("static",))
    assert "| r | 2 | 67.10 ± 1.41 | 0.10 | 66.10, 68.10 |" in text
    assert "| static (baseline) | - | 65.10 | - | - |" in text
    assert "| a | 52.10 | 50.10 |" in text
    spread = text.split("Spread across meta-training seeds per task")[1]
    assert "| a | 1.41 |" in spread  # seeds 51.10 and 53.10 on task a
    assert "## Aggregate over tasks (rliable)" in text
    assert "Incomplete" not in text
    # The same figures as data (what --json-out writes), and a test against a reference.
    from agents.evaluation.ablation import ablation_summary, summary_json

    recipes["up"] = [write(tmp_path / "u0", 0.05)]
    summary = json.loads(summary_json(ablation_summary(recipes, reference_recipe="r")))
    row = summary["recipes"]["r"]
    assert row["run_means"] == pytest.approx([66.1, 68.1])
    assert row["std"] == pytest.approx(1.4142, abs=1e-3)
    assert row["per_task"] == pytest.approx({"a": 52.1, "b": 82.1})
    assert summary["recipes"]["up"]["std"] is None  # one meta-seed: no spread (NaN -> null)
    test = summary["against_reference"]["up"]
    assert test["mean_difference"] == pytest.approx(3.0)
    assert (test["cells"], test["wins"], test["losses"]) == (6, 6, 0)
    assert (summary["cells"], summary["reference"]) == (6, "r")
    text = ablation_markdown(recipes, baselines=("static",), reference_recipe="r")
    assert f"| up | 6 | {test['mean_difference']:+.2f} |" in text

    # A folder still being evaluated (task b not yet run) is marked, not averaged as whole.
    partial = tmp_path / "s2"
    partial.mkdir()
    rows = (tmp_path / "s0" / "results.csv").read_text().splitlines()
    (partial / "results.csv").write_text("\n".join(r for r in rows if ",b," not in r) + "\n")
    text = ablation_markdown({"r": [*recipes["r"], partial]}, baselines=("static",))
    assert f"**Incomplete:** {partial} holds 3 of the 6 policy cells" in text
    assert "66.10, 68.10, 51.10* |" in text


def test_compare_recipes_dirs_takes_the_baselines_from_their_own_folder(tmp_path: Path, capsys):
    """--dirs tabulates existing folders; --baselines-from names where the baselines ran."""
    from agents.evaluation.records import RAW_COLUMNS
    from scripts import load_script

    def write(directory: Path, method: str, acc: float, test: float | str = "nan") -> Path:
        directory.mkdir()
        with open(directory / "results.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=RAW_COLUMNS)
            writer.writeheader()
            for seed in range(2):
                row = dict.fromkeys(RAW_COLUMNS, "")
                row.update(method=method, task="a", seed=seed, start_lr_factor=1.0,
                           val_accuracy=acc, test_accuracy=test, diverged=False)  # fmt: skip
                writer.writerow(row)
        return directory

    policy = write(tmp_path / "policy", "policy", 0.7)
    baselines = write(tmp_path / "baselines", "static", 0.5)
    script = load_script("compare_recipes")
    argv = ["--dirs", f"r={policy}", "--baselines", "static"]
    assert script.main([*argv, "--baselines-from", str(baselines)]) == 0
    assert "| static (baseline) | - | 50.00 | - | - |" in capsys.readouterr().out
    written = tmp_path / "new" / "t.json"  # its folder is made
    assert script.main([*argv, "--json-out", str(written)]) == 0  # no baselines folder:
    assert "static (baseline)" not in capsys.readouterr().out  # none beside the recipe
    figures = json.loads(written.read_text())
    assert figures["recipes"]["r"]["run_means"] == pytest.approx([70.0])
    # --test-from-val scores test accuracy, and refuses folders without it
    carved = write(tmp_path / "carved", "policy", 0.7, test=0.6)
    assert script.main(["--dirs", f"r={carved}", "--baselines", "", "--test-from-val"]) == 0
    out = capsys.readouterr().out
    assert "| r | 1 | 60.00 ± nan |" in out
    assert "mean test acc" in out
    with pytest.raises(SystemExit):  # a one-line error, no traceback
        script.main([*argv, "--test-from-val"])
    assert "no test accuracy for a" in capsys.readouterr().err


def test_probe_start_setting_reaches_the_policy_and_is_kept_on_resume(tmp_path: Path):
    """``probe_start`` 'on': a layout-1 policy's runs probe and start at the probe's min/30
    reading, not 30x too high; recorded in config.json, kept on resume, checked."""
    from hpenv.errors import InputError

    path = make_policy(decisions=4).save(tmp_path / "p.pt")
    settings = {"policy": str(path), "tasks": ("diabetes",), "seeds": (0,),
                "methods": ("policy",), "fidelity": ("diabetes:1:6",),  # a 20-step probe
                "start_lr_factors": (30.0,)}  # fmt: skip
    out = tmp_path / "on"
    evaluate(EvalConfig(**settings, probe_start="on", out_dir=str(out)), progress=False)
    assert json.loads((out / "config.json").read_text())["config"]["probe_start"] == "on"
    (record,) = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    probe = record["extra"]["probe"]
    assert record["trajectory"][1]["lr"] == pytest.approx(probe["best_lr"] / 30)
    assert probe["kept"] > 0  # rolled back to the sweep's best state (the default)
    start = tmp_path / "start"
    evaluate(EvalConfig(**settings, probe_start="on", probe_rollback="start", out_dir=str(start)),
             progress=False)  # fmt: skip
    (record,) = [json.loads(line) for line in (start / "runs.jsonl").read_text().splitlines()]
    assert record["extra"]["probe"]["kept"] == 0  # rolled back to the state before it
    with pytest.raises(ValueError, match="probe_start=on, not off"):
        evaluate(EvalConfig(**settings, probe_start="off", out_dir=str(out), resume=True),
                 progress=False)  # fmt: skip
    with pytest.raises(InputError, match="min/7"):
        evaluate(EvalConfig(**settings, probe_start="min/7", out_dir=str(tmp_path / "bad")),
                 progress=False)  # fmt: skip
    assert not (tmp_path / "bad").exists()


def test_rise_guard_setting_reaches_the_policy_and_is_kept_on_resume(tmp_path: Path):
    """``rise_guard`` 'on' holds a rising policy's rises (started 30x high, its loss stops
    improving); 'policy' follows the artifact (trained without it); a resume keeps it."""
    path = make_policy(decisions=4, action_bias=2.0).save(tmp_path / "riser.pt")

    def lrs(guard: str) -> list[list[float]]:
        out = tmp_path / guard
        config = EvalConfig(policy=str(path), tasks=("digits",), seeds=(0, 1), methods=("policy",),
                            fidelity=TINY, start_lr_factors=(30.0,), rise_guard=guard,
                            out_dir=str(out))  # fmt: skip
        evaluate(config, progress=False)
        assert json.loads((out / "config.json").read_text())["config"]["rise_guard"] == guard
        records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
        return [[point["lr"] for point in r["trajectory"]] for r in records]

    free, guarded = lrs("policy"), lrs("on")
    assert free == lrs("off")
    for run_free, run_guarded in zip(free, guarded, strict=True):
        assert max(run_guarded) <= max(run_free)
    assert any(max(g) < max(f) for f, g in zip(free, guarded, strict=True))
    config = EvalConfig(policy=str(path), tasks=("digits",), seeds=(0, 1), methods=("policy",),
                        fidelity=TINY, start_lr_factors=(30.0,), rise_guard="off",
                        out_dir=str(tmp_path / "on"), resume=True)  # fmt: skip
    with pytest.raises(ValueError, match="rise_guard=on, not off"):
        evaluate(config, progress=False)
