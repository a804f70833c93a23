"""Meta-features of tasks and the Optuna search warm-started from the most similar ones."""

from __future__ import annotations

import dataclasses
import doctest
import math
from pathlib import Path

import pytest

from agents.evaluation.methods import meta_features, optuna_similar
from agents.evaluation.methods.core import RunSpec
from agents.evaluation.methods.meta_features import TaskFeatures, describe_task, nearest
from hpenv.plan import Fidelity
from hpenv.tasks import get_task
from hpenv.testing import tiny_task_data

BUDGET, DECISIONS = 300, 4  # 5 intervals of 60 samples


def make_spec(task: str, seed: int = 0) -> RunSpec:
    return RunSpec(task, seed, fidelity=Fidelity(budget=BUDGET), decisions=DECISIONS,
                   data=tiny_task_data(get_task(task)))  # fmt: skip


def test_docstring_examples():
    for module in (meta_features, optuna_similar):
        assert doctest.testmod(module).failed == 0


def test_describe_task_reads_data_model_and_a_one_interval_probe():
    spec = make_spec("digits")
    features = describe_task(spec)
    assert features.task == "digits"
    assert (features.samples, features.input_size, features.classes) == (64, 64, 10)
    assert features.modality == "tabular"
    assert features.parameters == 64 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10
    assert len(features.curve) == meta_features.PROBE_POINTS
    assert features.probe_samples == 60  # one interval of the plan, in 4 chunks of 15
    assert all(math.isfinite(c) for c in features.curve)
    assert describe_task(spec) == features  # deterministic in the cell's seed
    text = describe_task(make_spec("imdb_conv"))
    assert (text.modality, text.input_size, text.classes) == ("text", 200, 2)


def test_nearest_prefers_the_same_kind_of_task():
    def features(task: str) -> TaskFeatures:
        return describe_task(make_spec(task))

    target = features("wine")
    priors = [features(t) for t in ("mnist_cnn", "breast_cancer", "imdb_conv", "wine")]
    ranked = nearest(target, priors, k=3)
    assert ranked[0].task == "breast_cancer"  # tabular, small, like wine
    assert "wine" not in [n.task for n in ranked]  # never the target itself
    assert sum(n.weight for n in ranked) == pytest.approx(1.0)
    assert [n.weight for n in ranked] == sorted((n.weight for n in ranked), reverse=True)


def test_optuna_similar_enqueues_from_the_nearest_tasks_weighted():
    pytest.importorskip("optuna")
    from agents.evaluation.methods.optuna_similar import WEIGHTED_MEAN, OptunaSimilar

    spec = make_spec("wine")
    configs = {
        "wine": [{"lr_factor": 0.5}],  # the cell's own task: never used
        "breast_cancer": [{"lr_factor": 2.0, "batch_doublings": 1}, {"lr_factor": 3.0}],
        "diabetes": [{"lr_factor": 4.0}],
        "mnist_cnn": [{"lr_factor": 0.1}],
        "imdb_conv": [{"lr_factor": 0.05}],
    }
    priors = {task: make_spec(task) for task in configs}
    method = OptunaSimilar(trials=6, k=2, tuned=("lr", "batch_size"), warm_configs=configs,
                           prior_specs=priors)  # fmt: skip
    row = method.run(spec)
    extra = row.extra
    similar = [s["task"] for s in extra["similar_tasks"]]
    assert len(similar) == 2
    assert set(similar) <= {"breast_cancer", "diabetes"}  # the tabular priors
    assert extra["enqueued_from"][0] == WEIGHTED_MEAN
    assert set(extra["enqueued_from"][1:]) <= set(similar)
    assert len(extra["enqueued"]) == 3  # trials // 2
    lrs = [c["lr_factor"] for c in extra["enqueued"]]
    assert 2.0 <= lrs[0] <= 4.0  # the weighted mean lies between the neighbours' configs
    first = extra["per_trial"][0]["params"]
    assert first["lr_factor"] == pytest.approx(lrs[0])  # enqueued trials ran first
    assert row.compute_samples == sum(t["samples"] for t in extra["per_trial"]) + 60
    assert extra["probe_samples"] == 60
    assert extra["prior_probe_samples"] == 4 * 60
    assert extra["meta_features"]["task"] == "wine"

    alone = OptunaSimilar(trials=3, warm_configs={"wine": configs["wine"]}).run(spec)
    assert alone.extra["warm_start"] == "none available"


def test_harness_runs_optuna_similar_last_with_priors_from_other_reports(tmp_path: Path):
    pytest.importorskip("optuna")
    from agents.evaluation import EvalConfig, evaluate
    from agents.evaluation.records import RunStore

    fidelity = ("digits:0.1:1", "wine::10", "breast_cancer::5")
    first = EvalConfig(tasks=("breast_cancer",), seeds=(0,), methods=("optuna",),
                       fidelity=fidelity, out_dir=str(tmp_path / "priors"))  # fmt: skip
    evaluate(first, progress=False)
    config = EvalConfig(
        tasks=("digits", "wine"), seeds=(0,), methods=("optuna_similar", "optuna"),
        fidelity=fidelity, out_dir=str(tmp_path / "run"),
        prior_results=(str(tmp_path / "priors"),),
    )  # fmt: skip
    evaluate(config, progress=False)
    store = RunStore(tmp_path / "run")
    keys = list(store.records)
    assert [k[0] for k in keys] == ["optuna", "optuna", "optuna_similar", "optuna_similar"]
    wine = store.records[("optuna_similar", "wine", 0, 1.0)]["extra"]
    assert {s["task"] for s in wine["similar_tasks"]} == {"digits", "breast_cancer"}
    assert not store.rows[("optuna_similar", "wine", 0, 1.0)]["error"]
    missing = dataclasses.replace(config, prior_results=(str(tmp_path / "nothing"),))
    with pytest.raises(FileNotFoundError, match=r"no runs\.jsonl"):
        evaluate(dataclasses.replace(missing, out_dir=str(tmp_path / "other")), progress=False)


def features(task: str, parameters: int = 1_000, modality: str = "tabular", curve=(0.0,) * 4):
    """Hand-made meta-features: 1,000 samples of 10 values, 2 classes, unless changed."""
    return TaskFeatures(task, 1_000, 10, 2, parameters, modality, tuple(curve), 10)


def test_nearest_on_a_constructed_example():
    """Distances: one decade of parameters counts 1, another modality sqrt(2), a loss curve
    2 higher at every point (divided by sqrt(4 points)) counts 2."""
    target = features("wine")
    priors = [
        features("mnist_cnn", parameters=1_000_000),  # 3 decades: distance 3
        features("diabetes", curve=(2.0,) * 4),  # distance 2
        features("digits", modality="image"),  # distance sqrt(2)
        features("breast_cancer", parameters=10_000),  # distance 1
        features("wine", parameters=10**9),  # the target's own task: never chosen
    ]
    ranked = nearest(target, priors, k=3)
    assert [n.task for n in ranked] == ["breast_cancer", "digits", "diabetes"]
    assert [n.distance for n in ranked] == pytest.approx([1.0, math.sqrt(2), 2.0])
    similarity = [math.exp(-d) for d in (1.0, math.sqrt(2), 2.0)]
    assert [n.weight for n in ranked] == pytest.approx([s / sum(similarity) for s in similarity])
    wide = nearest(target, priors, k=3, bandwidth=10.0)  # a wider kernel: flatter weights
    assert wide[0].weight - wide[2].weight < ranked[0].weight - ranked[2].weight
    assert [n.task for n in nearest(target, priors, k=10)][-1] == "mnist_cnn"
    with pytest.raises(ValueError, match="k must be"):
        nearest(target, priors, k=0)


def constructed_search(k: int, trials: int = 8):
    """An `OptunaSimilar` whose meta-features are given (no probe runs), and its cell."""
    from agents.evaluation.methods.optuna_similar import OptunaSimilar

    configs = {
        "wine": [{"lr_factor": 0.01}],  # the cell's own task
        "breast_cancer": [{"lr_factor": 2.0}, {"lr_factor": 3.0}],
        "digits": [{"lr_factor": 0.5}],
        "diabetes": [{"lr_factor": 8.0}],
        "mnist_cnn": [{"lr_factor": 20.0}],
    }
    method = OptunaSimilar(trials=trials, k=k, warm_configs=configs)
    given = {
        "wine": features("wine"),
        "breast_cancer": features("breast_cancer", parameters=10_000),
        "digits": features("digits", modality="image"),
        "diabetes": features("diabetes", curve=(2.0,) * 4),
        "mnist_cnn": features("mnist_cnn", parameters=1_000_000),
    }
    method._features.update({(task, 0): f for task, f in given.items()})
    return method, RunSpec("wine", 0)


def test_warm_start_enqueues_the_nearest_tasks_configs_by_weight():
    from agents.evaluation.methods.optuna_similar import WEIGHTED_MEAN

    method, spec = constructed_search(k=3)
    enqueued, extra = method.warm_start(spec)
    weights = [s["weight"] for s in extra["similar_tasks"]]
    assert [s["task"] for s in extra["similar_tasks"]] == ["breast_cancer", "digits", "diabetes"]
    # 4 slots (trials // 2): the weighted mean, then 3 shared by weight (0.49, 0.33, 0.18:
    # largest remainders give one each).
    assert extra["enqueued_from"] == [WEIGHTED_MEAN, "breast_cancer", "digits", "diabetes"]
    assert [c["lr_factor"] for c in enqueued[1:]] == [2.0, 0.5, 8.0]
    logs = [math.log(6.0) / 2, math.log(0.5), math.log(8.0)]  # each task's mean, in log space
    mean = math.exp(sum(w * v for w, v in zip(weights, logs, strict=True)))
    assert enqueued[0]["lr_factor"] == pytest.approx(mean)
    assert extra["probe_samples"] == 10
    assert extra["prior_probe_samples"] == 4 * 10  # every prior but the cell's own task


def test_warm_start_from_one_task_fills_what_it_has():
    method, spec = constructed_search(k=1)
    enqueued, extra = method.warm_start(spec)
    assert [s["weight"] for s in extra["similar_tasks"]] == [1.0]
    assert [c["lr_factor"] for c in enqueued] == pytest.approx([math.sqrt(6.0), 2.0, 3.0])
    assert "3 configs from the 1 most similar tasks (breast_cancer)" in extra["warm_start"]


def test_warm_configs_come_from_this_report_and_earlier_ones(tmp_path: Path):
    from agents.evaluation.cells import warm_configs_for
    from agents.evaluation.methods.core import MethodResult
    from agents.evaluation.records import RunStore, result_row

    def store(folder: str, *runs: tuple[str, str, int, float]) -> RunStore:
        result = RunStore(tmp_path / folder)
        for method, task, seed, lr_factor in runs:
            row = MethodResult(method, task, seed, 1.0, 0.5, 0.5, math.nan, 0.5, 10, 10, 1.0,
                               False)  # fmt: skip
            record = {"method": method, "task": task, "seed": seed, "start_lr_factor": 1.0,
                      "extra": {"best_params": {"lr_factor": lr_factor}}}  # fmt: skip
            result.append(result_row(row), record)
        return result

    prior = store(
        "prior",
        ("optuna", "digits", 0, 0.5),  # this report has digits seed 0 itself: its own wins
        ("optuna", "digits", 1, 0.7),
        ("optuna", "diabetes", 0, 4.0),
        ("optuna", "wine", 0, 9.0),  # the cell's own task: never a prior
        ("random", "breast_cancer", 0, 3.0),  # not optuna
    )
    own = store("own", ("optuna", "digits", 0, 0.6), ("optuna", "wine", 1, 9.0))
    configs = warm_configs_for("wine", own, [prior])
    assert configs == {
        "diabetes": [{"lr_factor": 4.0}],
        "digits": [{"lr_factor": 0.7}, {"lr_factor": 0.6}],
    }
    assert warm_configs_for("wine", own) == {"digits": [{"lr_factor": 0.6}]}


def test_prior_results_must_be_reports_with_optuna_runs(tmp_path: Path):
    from agents.evaluation import EvalConfig, evaluate

    fidelity = ("digits:0.1:1",)
    first = EvalConfig(tasks=("digits",), seeds=(0,), methods=("static",), fidelity=fidelity,
                       out_dir=str(tmp_path / "static"))  # fmt: skip
    evaluate(first, progress=False)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "progress.csv").write_text("a,b\n")  # a meta-training run, say
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "runs.jsonl").write_text("")
    (tmp_path / "old" / "results.csv").write_text("method,task,score\n")  # another version's
    config = EvalConfig(tasks=("digits",), seeds=(0,), methods=("optuna_similar",),
                        fidelity=fidelity, out_dir=str(tmp_path / "run"))  # fmt: skip
    cases = [
        ("meta", FileNotFoundError, r"--prior-results: .*\(no runs\.jsonl\): .*meta$"),
        ("static", ValueError, r"no finished optuna runs \(it holds \['static'\]\)"),
        ("old", ValueError, r"old: .* has columns \['method', 'task', 'score'\]"),
    ]
    for folder, error, message in cases:
        bad = dataclasses.replace(config, prior_results=(str(tmp_path / folder),))
        with pytest.raises(error, match=message):
            evaluate(bad, progress=False)
        assert not (tmp_path / "run").exists()  # refused before anything was written
