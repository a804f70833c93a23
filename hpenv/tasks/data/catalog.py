"""Every dataset the tasks train on, and where each can be found."""

from __future__ import annotations

import functools

import numpy as np

from hpenv.tasks.data.spec import DatasetInfo, RawSplits


def _sklearn_digits() -> RawSplits:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixel values are 0..16; scale to [0, 1] so features match the other tasks' range.
    features = (bunch.data / 16.0).astype(np.float32)
    return RawSplits(
        inputs={"train": features},
        labels={"train": bunch.target.astype(np.int64)},
        source="scikit-learn load_digits (bundled)",
    )


def _sklearn_tabular(loader_name: str) -> RawSplits:
    """A bundled scikit-learn table, each feature standardised over the whole table.

    The bundled tables are tiny, so one fixed standardisation (not per split) keeps
    the splits comparable; it is part of the task's definition.
    """
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader_name)()
    x = bunch.data.astype(np.float64)
    x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    return RawSplits(
        inputs={"train": x.astype(np.float32)},
        labels={"train": bunch.target.astype(np.int64)},
        source=f"scikit-learn {loader_name} (bundled)",
    )


def _sklearn_diabetes_binary() -> RawSplits:
    """scikit-learn's diabetes table; the label: disease progression above the median."""
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes()
    x = bunch.data.astype(np.float64)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    labels = (bunch.target > np.median(bunch.target)).astype(np.int64)
    return RawSplits(
        inputs={"train": x.astype(np.float32)},
        labels={"train": labels},
        source="scikit-learn load_diabetes (bundled), target above its median",
    )


CIFAR10 = DatasetInfo(
    name="cifar10",
    kind="image",
    num_classes=10,
    local_names=("cifar10", "cifar-10"),
    torchvision_layout="cifar10",
    hub_id="uoft-cs/cifar10",
    image_mean=(0.4914, 0.4822, 0.4465),
    image_std=(0.2470, 0.2435, 0.2616),
    fetch_hint=(
        "Or download torchvision's copy: python -c \"import torchvision; "
        "torchvision.datasets.CIFAR10('<dir>', download=True)\""
    ),
)

MNIST = DatasetInfo(
    name="mnist",
    kind="image",
    num_classes=10,
    local_names=("mnist", "mnist10k"),
    torchvision_layout="mnist",
    hub_id="ylecun/mnist",
    image_mean=(0.1307,),
    image_std=(0.3081,),
    fetch_hint=(
        "Or download torchvision's copy: python -c \"import torchvision; "
        "torchvision.datasets.MNIST('<dir>', download=True)\""
    ),
)

FASHION_MNIST = DatasetInfo(
    name="fashion_mnist",
    kind="image",
    num_classes=10,
    local_names=("fashion_mnist", "fashion-mnist"),
    torchvision_layout="fashion_mnist",
    hub_id="zalando-datasets/fashion_mnist",
    image_mean=(0.2860,),
    image_std=(0.3530,),
    fetch_hint=(
        "Or download torchvision's copy: python -c \"import torchvision; "
        "torchvision.datasets.FashionMNIST('<dir>', download=True)\""
    ),
)

IMDB = DatasetInfo(
    name="imdb",
    kind="text",
    num_classes=2,
    local_names=("imdb", "imdb6k"),
    hub_id="stanfordnlp/imdb",
)

AG_NEWS = DatasetInfo(
    name="ag_news",
    kind="text",
    num_classes=4,
    local_names=("ag_news", "ag-news"),
    hub_id="fancyzhx/ag_news",
)

TREC = DatasetInfo(
    name="trec",
    kind="text",
    num_classes=6,
    local_names=("trec",),
    hub_id="CogComp/trec",
    label_columns=("coarse_label", "label-coarse", "label"),
)

DIGITS = DatasetInfo(
    name="digits",
    kind="tabular",
    num_classes=10,
    local_names=("digits",),
    builtin=_sklearn_digits,
    val_fraction=0.2,
)

BREAST_CANCER = DatasetInfo(
    name="breast_cancer",
    kind="tabular",
    num_classes=2,
    local_names=("breast_cancer",),
    builtin=functools.partial(_sklearn_tabular, "load_breast_cancer"),
    val_fraction=0.2,
)

WINE = DatasetInfo(
    name="wine",
    kind="tabular",
    num_classes=3,
    local_names=("wine",),
    builtin=functools.partial(_sklearn_tabular, "load_wine"),
    val_fraction=0.25,
)

DIABETES = DatasetInfo(
    name="diabetes",
    kind="tabular",
    num_classes=2,
    local_names=("diabetes",),
    builtin=_sklearn_diabetes_binary,
    val_fraction=0.25,
)

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        CIFAR10,
        MNIST,
        FASHION_MNIST,
        IMDB,
        AG_NEWS,
        TREC,
        DIGITS,
        BREAST_CANCER,
        WINE,
        DIABETES,
    )
}
