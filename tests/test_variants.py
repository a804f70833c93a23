"""Held-out task variants: deterministic transforms, models that build and train."""

from __future__ import annotations

import math

import pytest
import torch

from agents.metatrain.suite import DEFAULT_TRAIN_TASKS
from hpenv.tasks import get_task
from hpenv.tasks.registry import HELDOUT_TASKS, TRAINING_VARIANTS
from hpenv.tasks.variants import noisy_labels, rotate
from hpenv.testing import tiny_task_data
from hpenv.training import TrainingRun


def test_rotation_is_deterministic_and_keeps_the_images_format():
    data = tiny_task_data(get_task("mnist"), n_train=32, n_eval=8)
    once, again = rotate(data), rotate(data)
    assert once.train_x.dtype == torch.uint8
    assert once.train_x.shape == data.train_x.shape
    assert torch.equal(once.train_x, again.train_x)
    assert not torch.equal(once.train_x, data.train_x)
    assert torch.equal(once.train_y, data.train_y)
    unturned = rotate(data, max_degrees=0.0)
    assert (unturned.val_x.int() - data.val_x.int()).abs().max() <= 1  # resampling only


def test_noisy_labels_touch_the_training_split_only():
    data = tiny_task_data(get_task("mnist"), n_train=2_000, n_eval=8)
    noisy = noisy_labels(data, fraction=0.4)
    changed = (noisy.train_y != data.train_y).float().mean().item()
    assert changed == pytest.approx(0.4 * 0.9, abs=0.05)  # a tenth of the draws keep the label
    assert torch.equal(noisy.val_y, data.val_y)
    assert torch.equal(noisy_labels(data).train_y, noisy_labels(data).train_y)


@pytest.mark.parametrize("name", HELDOUT_TASKS)
def test_every_heldout_task_trains(name: str):
    task = get_task(name)
    data = task.load_data() if task.generate is not None else tiny_task_data(task)
    if task.transform is not None and task.generate is None:
        data = task.transform(data)
    run = TrainingRun(task, data=data, device="cpu", val_size=16)
    stats = run.train(64)
    assert math.isfinite(stats.loss_mean)
    assert 0.0 <= run.evaluate().accuracy <= 1.0


def test_heldout_tasks_are_not_in_the_training_suite():
    assert not set(HELDOUT_TASKS) & set(DEFAULT_TRAIN_TASKS)
    assert len({get_task(t).dataset.name if get_task(t).dataset else t for t in HELDOUT_TASKS}) >= 4


def test_rotate_turns_flat_square_rows_and_keeps_them_flat():
    """The 8x8 digits (flat float rows) rotate like images and stay flat floats."""
    from hpenv.tasks.variants import rotate

    data = get_task("digits").load_data()
    turned = rotate(data)
    assert (turned.train_x.shape, turned.train_x.dtype) == (data.train_x.shape, torch.float32)
    assert not torch.equal(turned.train_x, data.train_x)
    assert torch.equal(turned.train_y, data.train_y)
    assert torch.equal(rotate(data).val_x, turned.val_x)  # a fixed seed: the same every time
    with pytest.raises(ValueError, match="square"):
        rotate(get_task("wine").load_data())  # 13 features are no image


@pytest.mark.parametrize("name", TRAINING_VARIANTS)
def test_training_variants_transform_a_training_task(name: str):
    task = get_task(name)
    base = get_task(name.rsplit("_", 1)[0])
    assert name not in HELDOUT_TASKS
    assert task.dataset == base.dataset  # a training task's data
    data, clean = task.load_data(), base.load_data()
    changed = [not torch.equal(getattr(data, k), getattr(clean, k)) for k in ("train_x", "train_y")]
    assert any(changed)
    run = TrainingRun(task, data=data, device="cpu", val_size=16)
    assert math.isfinite(run.train(64).loss_mean)
