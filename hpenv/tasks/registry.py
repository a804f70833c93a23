"""Every task, by name: `get_task` and `list_tasks`."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterable, Iterator

from hpenv.errors import InputError
from hpenv.hyperparams import HParams
from hpenv.tasks import variants
from hpenv.tasks.data import catalog
from hpenv.tasks.data.spec import TextConfig
from hpenv.tasks.models import mlp, resnet18, small_cnn, text_lstm, text_transformer
from hpenv.tasks.spec import Task
from hpenv.tasks.synthetic import SyntheticSpec

_ADAM = HParams(optimizer="adam", lr=1e-3, batch_size=128)
_MNIST_MODELS = {"mlp": mlp, "cnn": small_cnn}

TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            name="cifar10",
            description="CIFAR-10 images, small CNN (or ResNet-18), crop+flip augmentation",
            models={"cnn": small_cnn, "resnet18": resnet18},
            model="cnn",
            defaults=_ADAM,
            budget_epochs=20,
            augment="crop_flip",
            dataset=catalog.CIFAR10,
        ),
        Task(
            name="mnist",
            description="MNIST digits, MLP 512-512 with dropout 0.2 (or a small CNN)",
            models=_MNIST_MODELS,
            model="mlp",
            defaults=_ADAM.replace(dropout=0.2),
            budget_epochs=10,
            dataset=catalog.MNIST,
        ),
        Task(
            name="fashion_mnist",
            description="Fashion-MNIST, MLP 512-512 with dropout 0.2 (or a small CNN)",
            models=_MNIST_MODELS,
            model="mlp",
            defaults=_ADAM.replace(dropout=0.2),
            budget_epochs=15,
            dataset=catalog.FASHION_MNIST,
        ),
        Task(
            name="imdb",
            description="IMDB review sentiment, embedding 128 + LSTM 128 + FC 128, binary",
            models={"lstm": text_lstm, "transformer": text_transformer},
            model="lstm",
            defaults=_ADAM.replace(batch_size=64, dropout=0.2, grad_clip=5.0),
            budget_epochs=5,
            loss="binary",
            dataset=catalog.IMDB,
            text=TextConfig(vocab_size=10_000, seq_len=200),
        ),
        Task(
            name="ag_news",
            description="AG News topic (4 classes), embedding + LSTM (or a small Transformer)",
            models={"lstm": text_lstm, "transformer": text_transformer},
            model="lstm",
            defaults=_ADAM.replace(dropout=0.1, grad_clip=5.0),
            budget_epochs=4,
            dataset=catalog.AG_NEWS,
            text=TextConfig(vocab_size=20_000, seq_len=64),
        ),
        Task(
            name="trec",
            description="TREC question type (6 coarse classes), embedding + LSTM",
            models={"lstm": text_lstm, "transformer": text_transformer},
            model="lstm",
            defaults=_ADAM.replace(batch_size=64, dropout=0.2, grad_clip=5.0),
            budget_epochs=20,
            dataset=catalog.TREC,
            text=TextConfig(vocab_size=5_000, seq_len=24),
        ),
        Task(
            name="digits",
            description="scikit-learn's bundled 8x8 digits, MLP 128-128 (offline)",
            models={"mlp": functools.partial(mlp, hidden=(128, 128))},
            model="mlp",
            defaults=_ADAM.replace(batch_size=32),
            budget_epochs=30,
            dataset=catalog.DIGITS,
            val_size=1_000,
        ),
        Task(
            name="breast_cancer",
            description="scikit-learn's bundled breast cancer table (binary), MLP 64-64 (offline)",
            models={"mlp": functools.partial(mlp, hidden=(64, 64))},
            model="mlp",
            defaults=_ADAM.replace(batch_size=32),
            budget_epochs=60,
            dataset=catalog.BREAST_CANCER,
            val_size=1_000,
        ),
        Task(
            name="wine",
            description="scikit-learn's bundled wine table (3 classes), MLP 64-64 (offline)",
            models={"mlp": functools.partial(mlp, hidden=(64, 64))},
            model="mlp",
            defaults=_ADAM.replace(batch_size=16),
            budget_epochs=60,
            dataset=catalog.WINE,
            val_size=1_000,
        ),
        SyntheticSpec().task(),
        # ---- held-out variants (hpenv.tasks.variants): never in meta-training's suite
        Task(
            name="mnist_cnn",
            description="MNIST digits, small CNN",
            models=_MNIST_MODELS,
            model="cnn",
            defaults=_ADAM,
            budget_epochs=3,
            dataset=catalog.MNIST,
        ),
        Task(
            name="mnist_rotated",
            description="MNIST rotated by up to 45 degrees, MLP 512-512 with dropout 0.2",
            models=_MNIST_MODELS,
            model="mlp",
            defaults=_ADAM.replace(dropout=0.2),
            budget_epochs=10,
            dataset=catalog.MNIST,
            transform=variants.rotate,
        ),
        Task(
            name="mnist_noisy",
            description="MNIST with 40% of the training labels random, MLP 512-512",
            models=_MNIST_MODELS,
            model="mlp",
            defaults=_ADAM,
            budget_epochs=10,
            dataset=catalog.MNIST,
            transform=variants.noisy_labels,
        ),
        Task(
            name="imdb_conv",
            description="IMDB review sentiment, embedding 64 + 1-D convolution + max pool",
            models={"conv": variants.text_conv},
            model="conv",
            defaults=_ADAM.replace(batch_size=64, dropout=0.2),
            budget_epochs=3,
            loss="binary",
            dataset=catalog.IMDB,
            text=TextConfig(vocab_size=10_000, seq_len=200),
            val_size=1_000,
        ),
        Task(
            name="digits_cnn",
            description="scikit-learn's 8x8 digits through a small CNN (offline)",
            models={"cnn": variants.square_cnn},
            model="cnn",
            defaults=_ADAM.replace(batch_size=32),
            budget_epochs=15,
            dataset=catalog.DIGITS,
            val_size=1_000,
        ),
        Task(
            name="diabetes",
            description="scikit-learn's diabetes table, progression above the median, MLP 64-64",
            models={"mlp": functools.partial(mlp, hidden=(64, 64))},
            model="mlp",
            defaults=_ADAM.replace(batch_size=16),
            budget_epochs=60,
            dataset=catalog.DIABETES,
            val_size=1_000,
        ),
        dataclasses.replace(
            SyntheticSpec(
                input_dim=24,
                num_classes=6,
                noise=0.1,
                num_samples=3_000,
                width=256,
                depth=6,
                input_scale=5.0,
                conditioning=0.8,
                batch_size=64,
                seed=20_261_201,
                steps=900,
            ).task(),
            name="synthetic_deep",
            description="a generated task through a deeper network (6 x 256) than the family draws",
        ),
    )
}

#: Transformations of the training tasks (hpenv.tasks.variants), for meta-training's
#: distribution: the digits rotated and with noisy labels, the tables with noisy labels. Their
#: data is a training task's, so none of them is ever in the held-out suite.
TRAINING_VARIANTS: tuple[str, ...] = (
    "digits_rotated",
    "digits_noisy",
    "breast_cancer_noisy",
    "wine_noisy",
)
for _name, _base, _what, _transform in (
    ("digits_rotated", "digits", "rotated by up to 45 degrees", variants.rotate),
    ("digits_noisy", "digits", "with 40% of the training labels random", variants.noisy_labels),
    ("breast_cancer_noisy", "breast_cancer", "with 40% of the training labels random",
     variants.noisy_labels),
    ("wine_noisy", "wine", "with 40% of the training labels random", variants.noisy_labels),
):  # fmt: skip
    TASKS[_name] = dataclasses.replace(
        TASKS[_base],
        name=_name,
        description=f"{TASKS[_base].description}, {_what} (a training-side variant)",
        transform=_transform,
    )

#: The held-out evaluation suite: tasks of several kinds that no meta-training
#: suite contains and on which the baselines differ (see docs/results.md).
HELDOUT_TASKS: tuple[str, ...] = (
    "mnist_cnn",
    "mnist_rotated",
    "mnist_noisy",
    "imdb_conv",
    "digits_cnn",
    "diabetes",
    "synthetic_deep",
)


class UnknownTaskError(InputError):
    """A task name that is not registered."""


@contextlib.contextmanager
def registered(tasks: Iterable[Task]) -> Iterator[None]:
    """Register ``tasks`` (generated ones: synthetic draws) for the duration of a block, so
    that code that finds tasks by name (`get_task`, the harness's ``RunSpec``) runs them.

    Raises:
        ValueError: A task's name is already registered.
    """
    added = list(tasks)
    taken = [t.name for t in added if t.name in TASKS]
    if taken or len({t.name for t in added}) < len(added):
        raise ValueError(f"task names already registered or repeated: {taken or 'repeated'}")
    TASKS.update({t.name: t for t in added})
    try:
        yield
    finally:
        for task in added:
            TASKS.pop(task.name, None)


def list_tasks() -> list[str]:
    """Names of every registered task."""
    return sorted(TASKS)


def get_task(name: str, *, model: str | None = None) -> Task:
    """The registered task ``name``, optionally with another model variant.

    >>> get_task("mnist", model="cnn").model
    'cnn'

    Raises:
        UnknownTaskError: ``name`` is not registered (the message lists the known ones).
    """
    try:
        task = TASKS[name]
    except KeyError:
        raise UnknownTaskError(
            f"unknown task {name!r}; known tasks: {', '.join(list_tasks())}"
        ) from None
    return task if model is None else task.with_model(model)
