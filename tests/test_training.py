"""TrainingRun: hyperparameter changes, determinism, state round trips, divergence."""

from __future__ import annotations

import math

import pytest
import torch

from hpenv.hyperparams import HParams
from hpenv.tasks import SyntheticSpec, get_task
from hpenv.tasks.augment import crop_flip
from hpenv.testing import tiny_task_data
from hpenv.training import TrainingRun

SPEC = SyntheticSpec(input_dim=10, num_classes=3, num_samples=300, width=32, depth=1, seed=1)


def make_run(seed: int = 0, **hparams) -> TrainingRun:
    base = HParams(optimizer="adam", lr=1e-2, batch_size=16, dropout=0.1)
    return TrainingRun(SPEC.task(), hparams=base.replace(**hparams), seed=seed, device="cpu")


def weights(run: TrainingRun) -> list[torch.Tensor]:
    return [p.detach().clone() for p in run.model.parameters()]


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_lr_zero_leaves_weights_unchanged(optimizer: str):
    run = make_run(optimizer=optimizer, lr=0.0, weight_decay=0.0)
    before = weights(run)
    run.train(64)
    assert all(torch.equal(a, b) for a, b in zip(before, weights(run), strict=True))
    run.set_hparams(lr=1e-2)
    run.train(64)
    assert not all(torch.equal(a, b) for a, b in zip(before, weights(run), strict=True))


def test_batch_size_sets_step_count_for_same_samples():
    run = make_run(batch_size=16)
    assert run.train(160).steps == 10
    run.set_hparams(batch_size=32)
    stats = run.train(160)
    assert stats.steps == 5
    assert stats.samples == 160
    # A final partial batch completes the interval exactly.
    assert run.train(40).steps == 2
    assert run.samples_done == 360


def test_batches_cross_epochs_without_losing_samples():
    run = make_run(batch_size=64)
    seen = torch.cat([run._next_batch(64) for _ in range(10)])  # 640 draws of 300 samples
    counts = torch.bincount(seen[:600], minlength=300)
    assert torch.equal(counts, torch.full((300,), 2))  # two full epochs, each sample twice
    assert run.epochs_started == 3


def test_hyperparameters_reach_the_optimizer():
    run = make_run(optimizer="sgd", momentum=0.5)
    run.set_hparams(lr=0.05, momentum=0.8, weight_decay=1e-3)
    group = run.optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.05, 0.8, 1e-3)
    adam = make_run(optimizer="adam")
    adam.set_hparams(momentum=0.7)
    assert adam.optimizer.param_groups[0]["betas"] == (0.7, 0.999)


def test_optimizer_state_survives_hyperparameter_change():
    run = make_run(optimizer="adam")
    run.train(64)
    first = next(iter(run.model.parameters()))
    exp_avg = run.optimizer.state[first]["exp_avg"].clone()
    run.set_hparams(lr=1e-4, momentum=0.5, weight_decay=0.01, batch_size=8, dropout=0.3)
    assert torch.equal(run.optimizer.state[first]["exp_avg"], exp_avg)
    assert run.optimizer.state[first]["step"].item() == 4


def test_optimizer_kind_is_fixed():
    with pytest.raises(ValueError, match="optimizer is fixed"):
        make_run().set_hparams(optimizer="sgd")


def test_invalid_hyperparameters_are_rejected():
    with pytest.raises(ValueError, match="momentum"):
        HParams(momentum=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        HParams(batch_size=0)
    with pytest.raises(ValueError, match="unknown hyperparameters"):
        HParams().replace(learning_rate=1.0)
    with pytest.raises(ValueError, match="num_samples"):
        make_run().train(0)


def test_gradient_clipping_reports_preclip_norm_and_limits_update():
    free = make_run(optimizer="sgd", lr=0.1, momentum=0.0, dropout=0.0)
    clipped = make_run(optimizer="sgd", lr=0.1, momentum=0.0, dropout=0.0, grad_clip=1e-3)
    a, b = free.train(16), clipped.train(16)
    assert a.grad_norm == pytest.approx(b.grad_norm, rel=1e-5)  # same first step, pre-clip
    assert b.update_ratio < a.update_ratio / 10


def test_same_seed_same_losses_different_seed_differs():
    def losses(seed: int) -> list[float]:
        run = make_run(seed=seed)
        return [run.train(48).loss_mean for _ in range(3)] + [run.evaluate().loss]

    assert losses(7) == losses(7)
    assert losses(7) != losses(8)


def test_state_dict_round_trip_continues_identically():
    reference = make_run(seed=3)
    reference.train(80)
    state = reference.state_dict()
    expected = [reference.train(48).loss_mean for _ in range(3)]

    resumed = make_run(seed=99)  # different seed: everything must come from the state
    resumed.load_state_dict(state)
    assert [resumed.train(48).loss_mean for _ in range(3)] == expected
    assert resumed.samples_done == reference.samples_done


def test_state_dict_rolls_back():
    run = make_run(seed=5)
    run.train(32)
    snapshot = run.state_dict()
    after = run.train(64).loss_mean
    run.set_hparams(lr=1.0)
    run.train(64)
    run.load_state_dict(snapshot)
    assert run.hparams.lr == pytest.approx(1e-2)
    assert run.train(64).loss_mean == after


def test_state_of_another_task_is_refused():
    digits = TrainingRun(get_task("digits"), data=tiny_task_data(get_task("digits")), device="cpu")
    with pytest.raises(ValueError, match="task"):
        make_run().load_state_dict(digits.state_dict())


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_divergence_is_reported_not_raised(optimizer: str):
    run = make_run(optimizer=optimizer, lr=1e6)
    stats = run.train(160)
    assert stats.diverged
    assert run.diverged
    later = run.train(16)  # no further training, no exception
    assert later.diverged
    assert later.steps == 0
    assert math.isnan(run.evaluate().loss) or run.evaluate().loss > 10


def test_nan_weights_count_as_divergence():
    run = make_run()
    with torch.no_grad():
        next(iter(run.model.parameters())).fill_(float("nan"))
    assert run.train(16).diverged


def test_evaluate_uses_fixed_validation_subset():
    run = TrainingRun(SPEC.task(), device="cpu", val_size=25)
    first = run.evaluate()
    assert first.samples == 25
    assert run.evaluate().loss == first.loss
    assert TrainingRun(SPEC.task(), device="cpu", val_size=0).evaluate().samples == 60
    assert run.evaluate("test").samples == 60


def test_crop_flip_is_a_seeded_shift_or_mirror():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.int64).view(2, 3, 8, 8).to(torch.uint8)
    a = crop_flip(images, torch.Generator().manual_seed(0), pad=2)
    b = crop_flip(images, torch.Generator().manual_seed(0), pad=2)
    assert torch.equal(a, b)
    assert a.shape == images.shape
    assert a.dtype == torch.uint8
    # Every output pixel is an input pixel of the same image and channel, or padding.
    for i in range(2):
        for c in range(3):
            allowed = set(images[i, c].flatten().tolist()) | {0}
            assert set(a[i, c].flatten().tolist()) <= allowed
    zero_pad = crop_flip(images, torch.Generator().manual_seed(0), pad=0)
    for i in range(2):
        assert torch.equal(zero_pad[i], images[i]) or torch.equal(zero_pad[i], images[i].flip(-1))


def test_dropout_masks_come_from_the_run_generator():
    def train_loss(seed: int) -> float:
        run = make_run(seed=seed, dropout=0.5)
        own_generator = run.generator.get_state()
        run.load_state_dict(
            {**make_run(seed=0, dropout=0.5).state_dict(), "generator": own_generator}
        )
        return run.train(16).loss_mean

    # Same weights and order, different generator states: dropout masks differ.
    assert train_loss(1) != train_loss(2)
    assert train_loss(1) == train_loss(1)


def test_interval_statistics_are_sane():
    run = make_run()
    stats = run.train(96)
    assert stats.steps == 6
    assert stats.loss_std >= 0
    assert stats.grad_norm > 0
    assert 0 < stats.update_ratio < 1
    assert stats.wall_time > 0
    assert stats.samples_done == 96
    assert stats.steps_done == 6


def test_building_a_run_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    TrainingRun(SyntheticSpec(input_dim=6, width=8, depth=2, num_samples=50).task(), device="cpu")
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_lr_scale_trains_at_a_hidden_multiple_of_the_rate(optimizer: str):
    """A run with ``lr_scale=4`` at rate r trains exactly as one at 4r, but reports r."""
    start = HParams(optimizer=optimizer, lr=1e-3, batch_size=16, dropout=0.1)
    scaled = TrainingRun(SPEC.task(), hparams=start, seed=3, device="cpu", lr_scale=4.0)
    plain = TrainingRun(SPEC.task(), hparams=start.replace(lr=4e-3), seed=3, device="cpu")
    assert scaled.optimizer.param_groups[0]["lr"] == pytest.approx(4e-3)
    assert scaled.hparams.lr == 1e-3
    for run in (scaled, plain):
        run.train(64)
    scaled.set_hparams(lr=5e-4)
    plain.set_hparams(lr=2e-3)
    assert scaled.optimizer.param_groups[0]["lr"] == pytest.approx(2e-3)
    losses = [run.train(64).loss_mean for run in (scaled, plain)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    pairs = zip(weights(scaled), weights(plain), strict=True)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in pairs)
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="lr_scale"):
            TrainingRun(SPEC.task(), seed=0, device="cpu", lr_scale=bad)
