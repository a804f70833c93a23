"""Tiny random stand-ins for task data, for tests and smoke runs only.

Nothing in the library falls back to these: they are passed explicitly
(``TrainingRun(..., data=tiny_task_data(task))``).
"""

from __future__ import annotations

import torch

from hpenv.tasks import Task, TaskData

_IMAGE_SHAPES = {"cifar10": (3, 32, 32), "mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28)}
_FEATURES = {"digits": 64, "breast_cancer": 30, "wine": 13}


def tiny_task_data(task: Task, n_train: int = 64, n_eval: int = 32, seed: int = 0) -> TaskData:
    """Random data shaped like ``task``'s real data (labels are random too).

    Args:
        task: The task to imitate.
        n_train: Training samples.
        n_eval: Validation and test samples each.
        seed: Seed of the draw.
    """
    if task.generate is not None:  # generated data is real enough: keep n_train of it
        data = task.generate()
        return data.subset(min(1.0, n_train / data.train_x.shape[0]), seed)
    assert task.dataset is not None
    info = task.dataset
    gen = torch.Generator().manual_seed(seed)
    n = n_train + 2 * n_eval
    vocab_size = 0
    if info.kind == "image":
        shape = _IMAGE_SHAPES.get(task.name, (1, 8, 8))
        x = torch.randint(0, 256, (n, *shape), generator=gen, dtype=torch.uint8)
    elif info.kind == "text":
        assert task.text is not None
        vocab_size = task.text.vocab_size
        x = torch.randint(1, 50, (n, task.text.seq_len), generator=gen, dtype=torch.int32)
        x[: n // 2, : task.text.seq_len // 2] = 0  # some left padding, like real data
    else:
        x = torch.rand((n, _FEATURES.get(task.name, 16)), generator=gen)
    y = torch.randint(0, info.num_classes, (n,), generator=gen)
    a, b = n_train, n_train + n_eval
    return TaskData(
        train_x=x[:a],
        train_y=y[:a],
        val_x=x[a:b],
        val_y=y[a:b],
        test_x=x[b:],
        test_y=y[b:],
        kind=info.kind,
        num_classes=info.num_classes,
        source=f"tiny random stand-in for {task.name}",
        vocab_size=vocab_size,
        image_mean=info.image_mean,
        image_std=info.image_std,
    )
