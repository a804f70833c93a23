"""Population: each member matches a sequential TrainingRun; PopulationVecEnv meets SB3's API."""

from __future__ import annotations

import math

import pytest
import torch

from hpenv.hyperparams import HParams
from hpenv.population import Member, Population
from hpenv.tasks import SyntheticSpec, get_task
from hpenv.testing import tiny_task_data
from hpenv.training import IntervalStats, TrainingRun

torch.set_num_threads(1)

SHAPE = {"input_dim": 6, "num_classes": 3, "num_samples": 120, "width": 16, "depth": 2}
SPECS = [
    SyntheticSpec(**SHAPE, seed=1),
    SyntheticSpec(**SHAPE, seed=2, noise=0.2, input_scale=3.0),
    SyntheticSpec(**SHAPE, seed=3, conditioning=1.0),
]
ATOL = 1e-5


def hparams(optimizer: str, **changes) -> list[HParams]:
    base = HParams(optimizer=optimizer, batch_size=16)  # type: ignore[arg-type]
    return [
        base.replace(lr=1e-2, momentum=0.9, weight_decay=1e-3, dropout=0.25, **changes),
        base.replace(lr=3e-3, momentum=0.5, **changes),
        base.replace(lr=3e-2, momentum=0.0 if optimizer == "sgd" else 0.8, weight_decay=1e-2),
    ]


def pair(
    hps: list[HParams], seeds=(3, 4, 5), specs=SPECS, **kwargs
) -> tuple[Population, list[TrainingRun]]:
    members = [
        Member(spec.task(), seed=s, hparams=h) for spec, s, h in zip(specs, seeds, hps, strict=True)
    ]
    population = Population(members, device="cpu", val_size=16, **kwargs)
    runs = [
        TrainingRun(spec.task(), hparams=h, seed=s, device="cpu", val_size=16, **kwargs)
        for spec, s, h in zip(specs, seeds, hps, strict=True)
    ]
    return population, runs


def assert_stats_match(got: IntervalStats, expected: IntervalStats) -> None:
    for field in ("loss_mean", "loss_std", "grad_norm", "update_ratio"):
        a, b = getattr(got, field), getattr(expected, field)
        assert a == pytest.approx(b, abs=ATOL, rel=1e-4, nan_ok=True), field
    assert (got.samples, got.steps, got.diverged) == (
        expected.samples,
        expected.steps,
        expected.diverged,
    )
    assert (got.samples_done, got.steps_done) == (expected.samples_done, expected.steps_done)


def assert_weights_match(population: Population, index: int, run: TrainingRun) -> None:
    weights = population.parameters(index)
    for name, value in run.model.state_dict().items():
        torch.testing.assert_close(weights[name], value, atol=ATOL, rtol=0, equal_nan=True)


def step_both(population: Population, runs: list[TrainingRun], samples: int) -> None:
    for got, run in zip(population.train(samples), runs, strict=True):
        assert_stats_match(got, run.train(samples))


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_members_match_training_runs(optimizer: str):
    """Different lrs, decay and momentum per member, dropout on one, lr changed mid-run."""
    population, runs = pair(hparams(optimizer))
    step_both(population, runs, 56)  # 3 full batches and a partial one
    for i, lr in enumerate((5e-2, 1e-3, 1e-2)):
        population.set_hparams(i, lr=lr, momentum=0.7, dropout=0.1 * i)
        runs[i].set_hparams(lr=lr, momentum=0.7, dropout=0.1 * i)
    step_both(population, runs, 150)  # wraps around the 120 samples
    for i, (got, run) in enumerate(zip(population.evaluate(), runs, strict=True)):
        expected = run.evaluate()
        assert got.loss == pytest.approx(expected.loss, abs=ATOL)
        assert (got.accuracy, got.samples) == (expected.accuracy, expected.samples)
        assert_weights_match(population, i, run)


def test_sgd_momentum_switched_on_later_starts_its_buffer_at_the_gradient():
    hps = [h.replace(momentum=0.0) for h in hparams("sgd")]
    population, runs = pair(hps)
    step_both(population, runs, 32)
    population.set_hparams(1, momentum=0.9)
    runs[1].set_hparams(momentum=0.9)
    step_both(population, runs, 48)
    for i, run in enumerate(runs):
        assert_weights_match(population, i, run)


def test_gradient_clipping_per_member():
    hps = hparams("sgd")
    hps = [hps[0].replace(grad_clip=0.05), hps[1], hps[2].replace(grad_clip=1.0)]
    population, runs = pair(hps)
    step_both(population, runs, 40)
    step_both(population, runs, 40)
    for i, run in enumerate(runs):
        assert_weights_match(population, i, run)


def test_diverging_member_is_frozen_and_the_others_still_match():
    hps = hparams("sgd")
    hps[1] = hps[1].replace(lr=1.0, momentum=0.99)  # explodes on inputs of scale 1e4
    huge = SyntheticSpec(**SHAPE, seed=2, input_scale=1e4)
    population, runs = pair(hps, specs=[SPECS[0], huge, SPECS[2]])
    step_both(population, runs, 64)
    assert population.diverged == [False, True, False]
    frozen = population.parameters(1)
    step_both(population, runs, 64)  # the diverged member reports TrainingRun's NaN stats
    stats = population.train(32)
    assert stats[1].steps == 0
    assert math.isnan(stats[1].loss_mean)
    assert stats[1].diverged
    for name, value in population.parameters(1).items():
        torch.testing.assert_close(value, frozen[name], equal_nan=True, atol=0, rtol=0)
    runs[0].train(32), runs[2].train(32)
    for i in (0, 2):
        assert_weights_match(population, i, runs[i])
        assert all(torch.isfinite(v).all() for v in population.parameters(i).values())


def test_reinit_starts_a_member_afresh_in_place():
    hps = hparams("adam")
    population, runs = pair(hps)
    step_both(population, runs, 48)
    new_spec = SyntheticSpec(**SHAPE, seed=9, noise=0.1)
    new_hp = hps[2].replace(lr=2e-3, dropout=0.3)
    population.reinit(2, Member(new_spec.task(), seed=11, hparams=new_hp))
    runs[2] = TrainingRun(new_spec.task(), hparams=new_hp, seed=11, device="cpu", val_size=16)
    step_both(population, runs, 48)
    for i, run in enumerate(runs):
        assert_weights_match(population, i, run)
    assert population.samples_done == [96, 96, 48]


def test_training_a_subset_leaves_the_others_alone():
    population, runs = pair(hparams("adamw"))
    untouched = population.parameters(0)
    stats = population.train(40, members=[2, 1])
    assert_stats_match(stats[0], runs[2].train(40))
    assert_stats_match(stats[1], runs[1].train(40))
    assert population.samples_done == [0, 40, 40]
    for name, value in population.parameters(0).items():
        assert torch.equal(value, untouched[name])
    step_both(population, runs, 24)  # runs[0] had not trained either
    evaluation = population.evaluate(members=[1])
    assert evaluation[0].loss == pytest.approx(runs[1].evaluate().loss, abs=ATOL)


def test_cnn_with_augmentation_and_dropout_matches():
    task = get_task("cifar10")
    datas = [tiny_task_data(task, n_train=24, n_eval=8, seed=s) for s in (0, 1)]
    hps = [
        task.defaults.replace(batch_size=8, dropout=0.3),
        task.defaults.replace(batch_size=8, lr=3e-4),
    ]
    population = Population(
        [
            Member(task, seed=s, hparams=h, data=d)
            for s, h, d in zip((1, 2), hps, datas, strict=True)
        ],
        device="cpu",
    )
    runs = [
        TrainingRun(task, hparams=h, seed=s, data=d, device="cpu")
        for s, h, d in zip((1, 2), hps, datas, strict=True)
    ]
    step_both(population, runs, 20)
    step_both(population, runs, 20)
    for i, run in enumerate(runs):
        assert_weights_match(population, i, run)


def test_invalid_populations_are_refused():
    task = SPECS[0].task()
    with pytest.raises(ValueError, match="at least one member"):
        Population([], device="cpu")
    wide = SyntheticSpec(**{**SHAPE, "width": 32}).task()
    with pytest.raises(ValueError, match="another architecture"):
        Population([Member(task), Member(wide)], device="cpu")
    with pytest.raises(ValueError, match="one batch size"):
        Population(
            [Member(task), Member(task, hparams=task.defaults.replace(batch_size=8))], device="cpu"
        )
    with pytest.raises(ValueError, match="optimizer is fixed"):
        Population(
            [Member(task), Member(task, hparams=task.defaults.replace(optimizer="sgd"))],
            device="cpu",
        )
    imdb = get_task("imdb")
    with pytest.raises(ValueError, match=r"does not support .*LSTM"):
        Population([Member(imdb, data=tiny_task_data(imdb))], device="cpu")
    population = Population([Member(task)], device="cpu")
    with pytest.raises(ValueError, match="share one batch size"):
        population.set_hparams(0, batch_size=8)
    with pytest.raises(ValueError, match="distinct indices"):
        population.train(8, members=[0, 0])


def test_population_does_not_depend_on_the_global_rng():
    """All randomness comes from the members' seeds: the global generator's state is irrelevant."""
    results = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        population, _ = pair(hparams("adam"))
        results.append([s.loss_mean for s in population.train(40)])
    assert results[0] == results[1]
