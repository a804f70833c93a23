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
