"""The data layer: every on-disk format, the hub path, the cache, splits and text.

Each test writes its own tiny dataset (a few dozen samples) under ``tmp_path`` in
the format under test and loads it through the public `load_task_data`. The
hub is never contacted: `loader.hub_load` is replaced where the hub path is
tested. The real shared samples are used only when present.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import time
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
import torch

from hpenv.tasks.data import (
    DataNotFoundError,
    DatasetInfo,
    RawSplits,
    TaskData,
    TextConfig,
    cache,
    catalog,
    formats,
    load_task_data,
    loader,
    text,
)

# ------------------------------------------------------------------ helpers


@pytest.fixture
def hf_sandbox(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep `datasets` offline and its builder cache out of the home directory."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("hf_cache"))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


def must_not_call(*args: Any, **kwargs: Any) -> Any:
    """Stand-in for a reader or the hub that must not be reached (not an `Exception`)."""
    pytest.fail(f"unexpected call with {args} {kwargs}")


def make_images(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Random uint8 images whose first pixel value is their index (a marker, n <= 256)."""
    x = np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)
    x.reshape(n, -1)[:, 0] = np.arange(n, dtype=np.uint8)
    return x


def markers(x: torch.Tensor) -> list[int]:
    """Indices encoded by `make_images` (pixel (0, 0) of channel 0, also in NCHW)."""
    return [int(v) for v in x.reshape(len(x), -1)[:, 0]]


def to_nchw(x: np.ndarray) -> torch.Tensor:
    """The expected tensor layout of raw (N, H, W) or (N, H, W, C) images."""
    return torch.from_numpy(x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2).copy())


def check_image_split(
    data: TaskData, split: str, images: np.ndarray, labels: np.ndarray
) -> list[int]:
    """The split holds exactly the marked source rows, in NCHW uint8, with their labels."""
    x, y = data.split(split)
    assert x.dtype == torch.uint8
    assert y.dtype == torch.int64
    assert x.ndim == 4
    assert y.shape == (x.shape[0],)
    ids = markers(x)
    assert torch.equal(x, to_nchw(images)[ids])
    assert torch.equal(y, torch.from_numpy(labels.reshape(-1).astype(np.int64))[ids])
    return ids


def check_carved(data: TaskData, images: np.ndarray, labels: np.ndarray, n_val: int) -> None:
    """Train and a carved validation split partition the source training rows."""
    train_ids = check_image_split(data, "train", images, labels)
    val_ids = check_image_split(data, "val", images, labels)
    assert len(val_ids) == n_val
    assert set(train_ids).isdisjoint(val_ids)
    assert sorted(train_ids + val_ids) == list(range(len(images)))


def cache_files(name: str) -> list[Path]:
    return sorted(Path(os.environ["HPENV_CACHE_DIR"]).glob(f"{name}-*.pt"))


def assert_same(a: TaskData, b: TaskData) -> None:
    for split in ("train", "val", "test"):
        for attr in ("x", "y"):
            left, right = getattr(a, f"{split}_{attr}"), getattr(b, f"{split}_{attr}")
            if left is None or right is None:
                assert left is None
                assert right is None
            else:
                assert torch.equal(left, right)
    assert a.vocab_size == b.vocab_size
    assert a.extra == b.extra
    assert a.source == b.source


def write_idx(path: Path, array: np.ndarray) -> None:
    """MNIST's idx format: magic 0x0803 / 0x0801, big-endian dims, uint8 data."""
    header = struct.pack(">I", 0x0800 + array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)


def write_pretokenized(path: Path, splits: dict[str, tuple[list[list[int]], list[int]]]) -> None:
    """The shared IMDB sample's layout: flat int16 tokens, int64 offsets, uint8 labels."""
    arrays: dict[str, np.ndarray] = {}
    for split, (seqs, labels) in splits.items():
        arrays[f"{split}_tokens"] = np.concatenate([np.asarray(s, dtype=np.int16) for s in seqs])
        arrays[f"{split}_offsets"] = np.cumsum([0] + [len(s) for s in seqs]).astype(np.int64)
        arrays[f"{split}_labels"] = np.asarray(labels, dtype=np.uint8)
    np.savez(path, **arrays)


SMALL_TEXT = TextConfig(vocab_size=50, seq_len=8)

# --------------------------------------------------------------------- npz


def test_npz_unsplit_images_labels_carves_validation(tmp_path: Path) -> None:
    images, labels = make_images(40, (28, 28)), np.arange(40, dtype=np.uint8) % 10
    np.savez(tmp_path / "mnist.npz", images=images, labels=labels)

    data = load_task_data(catalog.MNIST, data_dir=tmp_path)

    assert data.kind == "image"
    assert data.num_classes == 10
    assert data.input_shape == (1, 28, 28)
    assert data.test_x is None
    assert data.test_y is None
    assert data.source == str(tmp_path / "mnist.npz")
    assert data.image_mean == catalog.MNIST.image_mean
    assert data.image_std == catalog.MNIST.image_std
    assert data.vocab_size == 0
    check_carved(data, images, labels, n_val=4)
    with pytest.raises(ValueError, match="no test split"):
        data.split("test")
    with pytest.raises(ValueError, match="unknown split"):
        data.split("dev")


def test_npz_keras_layout_with_column_labels(tmp_path: Path) -> None:
    """``x_train``/``y_train``/``x_test``/``y_test``; Keras' CIFAR-10 labels are (N, 1)."""
    train, test = make_images(30, (32, 32, 3)), make_images(10, (32, 32, 3), seed=1)
    y_train = (np.arange(30) % 10).reshape(-1, 1).astype(np.uint8)
    y_test = (np.arange(10) % 10).reshape(-1, 1).astype(np.uint8)
    np.savez(tmp_path / "cifar-10.npz", x_train=train, y_train=y_train, x_test=test, y_test=y_test)

    data = load_task_data(catalog.CIFAR10, data_dir=tmp_path)

    assert data.input_shape == (3, 32, 32)
    check_carved(data, train, y_train, n_val=3)
    test_ids = check_image_split(data, "test", test, y_test)
    assert test_ids == list(range(10))  # order kept


def test_npz_split_images_with_own_validation(tmp_path: Path) -> None:
    """``{split}_images``/``{split}_labels``; a ``validation_`` split is used, not carved."""
    train, val, test = (make_images(n, (28, 28), seed=s) for s, n in enumerate((20, 6, 8)))
    ys = {n: np.arange(n, dtype=np.int64) % 10 for n in (20, 6, 8)}
    np.savez(
        tmp_path / "mnist10k.npz",
        train_images=train,
        train_labels=ys[20],
        validation_images=val,
        validation_labels=ys[6],
        test_images=test,
        test_labels=ys[8],
    )

    data = load_task_data(catalog.MNIST, data_dir=tmp_path)

    assert check_image_split(data, "train", train, ys[20]) == list(range(20))
    assert check_image_split(data, "val", val, ys[6]) == list(range(6))
    assert check_image_split(data, "test", test, ys[8]) == list(range(8))


def test_npz_pretokenized_like_shared_imdb(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train = [list(rng.integers(3, 40, size=rng.integers(1, 14))) for _ in range(30)]
    train[0] = [1, 5, 99, 6, 120]  # ids past the vocabulary become OOV (2)
    train[1] = list(range(1, 13))  # longer than seq_len: the start is kept
    test = [[1, 7, 8], [1, 200, 9, 10]]
    write_pretokenized(
        tmp_path / "imdb6k.npz",
        {"train": (train, [i % 2 for i in range(30)]), "test": (test, [0, 1])},
    )

    data = load_task_data(catalog.IMDB, data_dir=tmp_path, text_config=SMALL_TEXT)

    assert data.kind == "text"
    assert data.vocab_size == 50
    assert data.extra == {}  # no vocabulary: the ids are the source's
    assert data.test_x is not None
    assert data.test_y is not None
    for x, y in (data.split(s) for s in ("train", "val", "test")):
        assert x.dtype == torch.int32
        assert x.shape[1] == 8
        assert y.dtype == torch.int64
    assert data.train_x.shape[0] + data.val_x.shape[0] == 30
    assert data.val_x.shape[0] == 3
    assert data.test_x.tolist() == [[0, 0, 0, 0, 0, 1, 7, 8], [0, 0, 0, 0, 1, 2, 9, 10]]
    assert data.test_y.tolist() == [0, 1]
    rows = torch.cat([data.train_x, data.val_x]).tolist()
    assert [0, 0, 0, 1, 5, 2, 6, 2] in rows
    assert [1, 2, 3, 4, 5, 6, 7, 8] in rows
    assert max(max(r) for r in rows) < 50


def test_npz_raw_text_strings(tmp_path: Path) -> None:
    """``{split}_text`` string arrays: a vocabulary is built from the training split only."""
    train_text = [f"good film word{i} <br />the END" for i in range(20)]
    np.savez(
        tmp_path / "trec.npz",
        train_text=np.array(train_text),
        train_labels=np.arange(20) % 6,
        test_text=np.array(["good zebra film", "the the the the the the the the the end"]),
        test_labels=np.array([1, 2]),
    )

    data = load_task_data(catalog.TREC, data_dir=tmp_path, text_config=SMALL_TEXT)

    vocab = data.extra["vocab"]
    train_idx, val_idx = loader.carve_validation(20, catalog.TREC)
    assert vocab == text.build_vocab([train_text[i] for i in train_idx], 50)
    assert vocab[:2] == ["<pad>", "<unk>"]
    # Words of validation-only rows are out of the vocabulary, like test-only ones.
    for i in val_idx:
        assert f"word{i}" not in vocab
    assert all(f"word{i}" in vocab for i in train_idx)
    assert "zebra" not in vocab
    ids = {w: vocab.index(w) for w in ("good", "film", "the", "end")}
    assert data.test_x is not None
    assert data.test_x.dtype == torch.int32
    # Left-padded with 0, unknown words 1, long texts truncated to their start.
    assert data.test_x[0].tolist() == [0, 0, 0, 0, 0, ids["good"], text.OOV_ID, ids["film"]]
    assert data.test_x[1].tolist() == [ids["the"]] * 8
    for i, row in zip(train_idx, data.train_x.tolist(), strict=True):
        expected = ["good", "film", f"word{i}", "the", "end"]
        assert row == [0, 0, 0] + [vocab.index(w) for w in expected]
    assert data.val_x.tolist()[0][:3] == [0, 0, 0]
    assert text.OOV_ID in data.val_x[0].tolist()


def test_npz_without_training_data_is_an_error(tmp_path: Path) -> None:
    np.savez(tmp_path / "mnist.npz", pixels=np.zeros((3, 2, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="no training data"):
        load_task_data(catalog.MNIST, data_dir=tmp_path)


def test_labels_must_be_one_per_sample(tmp_path: Path) -> None:
    np.savez(tmp_path / "mnist.npz", images=make_images(10, (4, 4)), labels=np.zeros((10, 2)))
    with pytest.raises(ValueError, match="one integer per sample"):
        load_task_data(catalog.MNIST, data_dir=tmp_path)


def test_non_uint8_images_are_rejected(tmp_path: Path) -> None:
    np.savez(tmp_path / "mnist.npz", images=np.zeros((10, 4, 4)), labels=np.zeros(10))
    with pytest.raises(ValueError, match="uint8"):
        load_task_data(catalog.MNIST, data_dir=tmp_path)


# ------------------------------------------------------------ Hugging Face


def test_hf_save_to_disk_dataset_dict_images(tmp_path: Path) -> None:
    train, test = make_images(20, (28, 28)), make_images(6, (28, 28), seed=1)
    y_train, y_test = np.arange(20) % 10, np.arange(6) % 10
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=10)}
    )
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"image": list(train), "label": y_train.tolist()}, features=features
            ),
            "test": datasets.Dataset.from_dict(
                {"image": list(test), "label": y_test.tolist()}, features=features
            ),
        }
    ).save_to_disk(str(tmp_path / "mnist"))

    data = load_task_data(catalog.MNIST, data_dir=tmp_path)

    assert "save_to_disk" in data.source
    check_carved(data, train, y_train, n_val=2)
    assert check_image_split(data, "test", test, y_test) == list(range(6))


def test_hf_save_to_disk_single_dataset_rgb_images(tmp_path: Path) -> None:
    """A lone ``Dataset`` is the training split; ``img`` is the hub CIFAR-10 column name."""
    images, labels = make_images(20, (32, 32, 3)), np.arange(20) % 10
    features = datasets.Features(
        {"img": datasets.Image(), "label": datasets.ClassLabel(num_classes=10)}
    )
    datasets.Dataset.from_dict(
        {"img": list(images), "label": labels.tolist()}, features=features
    ).save_to_disk(str(tmp_path / "cifar10"))

    data = load_task_data(catalog.CIFAR10, data_dir=tmp_path)

    assert data.test_x is None
    check_carved(data, images, labels, n_val=2)


def test_hf_save_to_disk_text_splits(tmp_path: Path) -> None:
    """Text columns; ``validation`` is used as is and ``unsupervised`` is skipped."""

    def split(texts: list[str], labels: list[int]) -> datasets.Dataset:
        return datasets.Dataset.from_dict({"text": texts, "label": labels})

    datasets.DatasetDict(
        {
            "train": split([f"a fine movie {i}" for i in range(12)], [i % 2 for i in range(12)]),
            "validation": split(["fine movie", "bad"], [1, 0]),
            "test": split(["a bad movie", "fine", "awful"], [0, 1, 0]),
            "unsupervised": split(["unlabelled"] * 4, [-1] * 4),
        }
    ).save_to_disk(str(tmp_path / "imdb"))

    data = load_task_data(catalog.IMDB, data_dir=tmp_path, text_config=SMALL_TEXT)

    assert data.train_x.shape == (12, 8)
    assert data.val_x.shape == (2, 8)
    assert data.test_x is not None
    assert data.test_y is not None
    assert data.test_x.shape == (3, 8)
    assert data.val_y.tolist() == [1, 0]
    assert data.test_y.tolist() == [0, 1, 0]
    vocab = data.extra["vocab"]
    assert "unlabelled" not in vocab
    assert "bad" not in vocab  # only in validation and test
    assert data.test_x[2].tolist() == [0] * 7 + [text.OOV_ID]


def test_hf_single_text_dataset_prefers_listed_label_column(tmp_path: Path) -> None:
    """TREC's labels are ``coarse_label``; ``fine_label`` is not a label column."""
    datasets.Dataset.from_dict(
        {
            "text": [f"what is {i}" for i in range(10)],
            "fine_label": [40 + i for i in range(10)],
            "coarse_label": [i % 6 for i in range(10)],
        }
    ).save_to_disk(str(tmp_path / "trec"))

    data = load_task_data(catalog.TREC, data_dir=tmp_path, text_config=SMALL_TEXT)

    labels = torch.cat([data.train_y, data.val_y]).tolist()
    assert sorted(labels) == sorted(i % 6 for i in range(10))
    assert data.val_x.shape == (1, 8)


def test_hf_missing_column_names_columns(tmp_path: Path) -> None:
    datasets.Dataset.from_dict({"pixels": [[1, 2]], "label": [0]}).save_to_disk(
        str(tmp_path / "mnist")
    )
    with pytest.raises(ValueError, match="pixels"):
        load_task_data(catalog.MNIST, data_dir=tmp_path)


# ------------------------------------------------------------------ parquet


@pytest.mark.usefixtures("hf_sandbox")
def test_parquet_hub_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train, test = make_images(20, (28, 28)), make_images(5, (28, 28), seed=1)
    y_train, y_test = np.arange(20) % 10, np.arange(5) % 10
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=10)}
    )
    folder = tmp_path / "mnist" / "data"
    for name, x, y in (("train", train, y_train), ("test", test, y_test)):
        datasets.Dataset.from_dict(
            {"image": list(x), "label": y.tolist()}, features=features
        ).to_parquet(str(folder / f"{name}-00000-of-00001.parquet"))

    data = load_task_data(catalog.MNIST, data_dir=tmp_path)

    assert "parquet" in data.source
    check_carved(data, train, y_train, n_val=2)
    assert check_image_split(data, "test", test, y_test) == list(range(5))
    # Reading did not write into the folder: the cache entry is still valid.
    monkeypatch.setattr(formats, "read_parquet_dir", must_not_call)
    assert_same(load_task_data(catalog.MNIST, data_dir=tmp_path), data)


@pytest.mark.usefixtures("hf_sandbox")
def test_parquet_folder_per_split(tmp_path: Path) -> None:
    """Split taken from the parent folder's name when the file's own name has none."""
    for split, n in (("train", 10), ("test", 4)):
        datasets.Dataset.from_dict(
            {"text": [f"{split} words {i}" for i in range(n)], "label": [i % 2 for i in range(n)]}
        ).to_parquet(str(tmp_path / "imdb" / split / "0000.parquet"))

    data = load_task_data(catalog.IMDB, data_dir=tmp_path, text_config=SMALL_TEXT)

    assert data.train_x.shape == (9, 8)
    assert data.val_x.shape == (1, 8)
    assert data.test_x is not None
    assert data.test_x.shape == (4, 8)
    assert "test" not in data.extra["vocab"]


# -------------------------------------------------------------- torchvision


@pytest.mark.parametrize("n_batches", [5, 1])
def test_torchvision_cifar10_batches(tmp_path: Path, n_batches: int) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    hwc = make_images(4 * n_batches + 6, (32, 32, 3))
    chw = hwc.transpose(0, 3, 1, 2).reshape(len(hwc), 3072)  # the pickles' row layout
    labels = np.arange(len(hwc)) % 10

    def dump(name: str, rows: slice) -> None:
        entry = {b"data": chw[rows], b"labels": labels[rows].tolist(), b"batch_label": b"x"}
        with open(folder / name, "wb") as fh:
            pickle.dump(entry, fh)

    for i in range(n_batches):
        dump(f"data_batch_{i + 1}", slice(4 * i, 4 * i + 4))
    n_train = 4 * n_batches
    dump("test_batch", slice(n_train, None))

    data = load_task_data(catalog.CIFAR10, data_dir=tmp_path)

    assert "CIFAR-10" in data.source
    check_carved(data, hwc[:n_train], labels[:n_train], n_val=max(1, round(n_train * 0.1)))
    assert check_image_split(data, "test", hwc, labels) == list(range(n_train, n_train + 6))


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize(
    ("info", "folder"),
    [(catalog.MNIST, "MNIST"), (catalog.FASHION_MNIST, "FashionMNIST")],
    ids=["mnist", "fashion"],
)
def test_torchvision_idx_files(tmp_path: Path, gz: bool, info: DatasetInfo, folder: str) -> None:
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    suffix = ".gz" if gz else ""
    train, test = make_images(30, (28, 28)), make_images(7, (28, 28), seed=1)
    y_train, y_test = np.arange(30, dtype=np.uint8) % 10, np.arange(7, dtype=np.uint8) % 10
    write_idx(raw / f"train-images-idx3-ubyte{suffix}", train)
    write_idx(raw / f"train-labels-idx1-ubyte{suffix}", y_train)
    write_idx(raw / f"t10k-images-idx3-ubyte{suffix}", test)
    write_idx(raw / f"t10k-labels-idx1-ubyte{suffix}", y_test)

    data = load_task_data(info, data_dir=tmp_path)

    assert "idx" in data.source
    check_carved(data, train, y_train, n_val=3)
    assert check_image_split(data, "test", test, y_test) == list(range(7))


def test_idx_header_is_checked_and_arrays_are_writable(tmp_path: Path) -> None:
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(struct.pack(">I", 0x0D03) + struct.pack(">3I", 1, 2, 2) + bytes(4))
    with pytest.raises(ValueError, match="idx"):
        formats.read_idx(path)
    write_idx(path, np.arange(12, dtype=np.uint8).reshape(3, 2, 2))
    array = formats.read_idx(path)
    assert array.tolist() == np.arange(12).reshape(3, 2, 2).tolist()
    # Not a view of the file's bytes: torch.from_numpy would warn and share read-only memory.
    assert array.flags.writeable


# --------------------------------------------------------------------- hub


def fake_mnist_hub(n: int = 20) -> datasets.DatasetDict:
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=10)}
    )
    return datasets.DatasetDict(
        {
            split: datasets.Dataset.from_dict(
                {"image": list(make_images(n, (28, 28))), "label": [i % 10 for i in range(n)]},
                features=features,
            )
            for split in ("train", "test")
        }
    )


def test_hub_used_when_no_local_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HPENV_NO_HUB")
    monkeypatch.setattr(loader, "hub_unavailable", lambda: None)  # as if online
    calls: list[str] = []

    def hub(hub_id: str) -> datasets.DatasetDict:
        calls.append(hub_id)
        return fake_mnist_hub()

    monkeypatch.setattr(loader, "hub_load", hub)

    data = load_task_data(catalog.MNIST, data_dir=tmp_path)  # empty directory

    assert calls == ["ylecun/mnist"]
    assert data.source == "hub:ylecun/mnist"
    images = make_images(20, (28, 28))
    check_carved(data, images, np.arange(20) % 10, n_val=2)
    assert check_image_split(data, "test", images, np.arange(20) % 10) == list(range(20))
    # Cached: the hub is not asked twice.
    assert_same(load_task_data(catalog.MNIST), data)
    assert calls == ["ylecun/mnist"]


def test_hub_not_used_when_local_data_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HPENV_NO_HUB")
    monkeypatch.setattr(loader, "hub_load", must_not_call)
    np.savez(tmp_path / "mnist.npz", images=make_images(10, (28, 28)), labels=np.zeros(10))
    monkeypatch.setenv("HPENV_DATA_DIR", str(tmp_path))

    data = load_task_data(catalog.MNIST)

    assert data.source == str(tmp_path / "mnist.npz")


def test_hub_failure_falls_through_to_not_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HPENV_NO_HUB")
    monkeypatch.setattr(loader, "hub_unavailable", lambda: None)  # the probe passed

    def hub(hub_id: str) -> Any:
        raise ConnectionError(f"cannot reach {hub_id}")

    monkeypatch.setattr(loader, "hub_load", hub)

    with pytest.raises(DataNotFoundError) as err:
        load_task_data(catalog.MNIST, data_dir=tmp_path)

    message = str(err.value)
    assert "ConnectionError: cannot reach ylecun/mnist" in message
    assert str(tmp_path / "mnist.npz") in message
    assert cache_files("mnist") == []


def test_unreachable_hub_is_skipped_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import hpenv.network

    monkeypatch.delenv("HPENV_NO_HUB")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    hpenv.network._probe.cache_clear()
    monkeypatch.setattr(loader, "hub_load", must_not_call)
    start = time.perf_counter()
    with pytest.raises(DataNotFoundError) as err:
        load_task_data(catalog.MNIST, data_dir=tmp_path)
    assert time.perf_counter() - start < 5
    assert "127.0.0.1 unreachable" in err.value.summary
    assert "\n" not in err.value.summary  # one line for listings
    hpenv.network._probe.cache_clear()


def test_no_hub_setting_skips_the_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "hub_load", must_not_call)  # HPENV_NO_HUB=1 from conftest
    with pytest.raises(DataNotFoundError, match="skipped: HPENV_NO_HUB is set"):
        load_task_data(catalog.IMDB, data_dir=tmp_path)


# ------------------------------------------------------------ missing data


def test_missing_data_message_names_everything(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError) as err:
        load_task_data(catalog.MNIST, data_dir=tmp_path / "nowhere")

    assert isinstance(err.value, FileNotFoundError)
    message = str(err.value)
    assert "'mnist'" in message
    root = tmp_path / "nowhere"
    for path in (
        root / "mnist.npz",
        root / "mnist",
        root / "mnist10k.npz",
        root / "mnist10k",
        root / "MNIST" / "raw",
    ):
        assert f"{path} (" in message
    assert "data_dir" in message
    assert "HPENV_DATA_DIR" in message
    assert "datasets.load_dataset('ylecun/mnist')" in message
    assert "HPENV_NO_HUB" in message
    assert "torchvision.datasets.MNIST" in message  # the fetch hint


def test_missing_data_names_the_environment_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPENV_DATA_DIR", str(tmp_path))
    with pytest.raises(DataNotFoundError) as err:
        load_task_data(catalog.CIFAR10)
    message = str(err.value)
    assert "'cifar10'" in message
    assert f"{tmp_path / 'cifar-10-batches-py'} (torchvision CIFAR-10; HPENV_DATA_DIR)" in message
    assert "datasets.load_dataset('uoft-cs/cifar10')" in message


def test_missing_data_without_any_directory() -> None:
    with pytest.raises(DataNotFoundError) as err:
        load_task_data(catalog.TREC)
    message = str(err.value)
    assert "'trec'" in message
    assert "no local data directory" in message
    assert "HPENV_DATA_DIR" in message
    assert "datasets.load_dataset('CogComp/trec')" in message


def test_data_dir_argument_wins_over_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    np.savez(tmp_path / "a" / "mnist.npz", images=make_images(10, (4, 4)), labels=np.zeros(10))
    np.savez(tmp_path / "b" / "mnist.npz", images=make_images(12, (4, 4)), labels=np.zeros(12))
    monkeypatch.setenv("HPENV_DATA_DIR", str(tmp_path / "a"))
    assert load_task_data(catalog.MNIST).source == str(tmp_path / "a" / "mnist.npz")
    data = load_task_data(catalog.MNIST, data_dir=tmp_path / "b")
    assert data.source == str(tmp_path / "b" / "mnist.npz")


def test_builtin_source_used_last() -> None:
    data = load_task_data(catalog.DIGITS)
    assert data.kind == "tabular"
    assert data.source.startswith("scikit-learn")
    assert data.train_x.dtype == torch.float32
    assert data.input_shape == (64,)
    assert data.val_x.shape[0] == round(1797 * 0.2)
    assert data.train_x.shape[0] + data.val_x.shape[0] == 1797
    assert data.test_x is None
    assert 0.0 <= float(data.train_x.min()) <= float(data.train_x.max()) <= 1.0


# -------------------------------------------------------------------- cache


def write_mnist_npz(path: Path, n: int = 30, seed: int = 0) -> None:
    np.savez(path, images=make_images(n, (28, 28), seed=seed), labels=np.arange(n) % 10)


def test_cache_hit_skips_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_mnist_npz(tmp_path / "mnist.npz")
    calls: list[Path] = []
    real_read = formats.read_npz

    def counting_read(path: Path) -> RawSplits:
        calls.append(path)
        return real_read(path)

    monkeypatch.setattr(formats, "read_npz", counting_read)

    first = load_task_data(catalog.MNIST, data_dir=tmp_path)
    (entry,) = cache_files("mnist")
    assert entry.parent == Path(os.environ["HPENV_CACHE_DIR"])
    second = load_task_data(catalog.MNIST, data_dir=tmp_path)

    assert len(calls) == 1
    assert_same(first, second)
    assert cache_files("mnist") == [entry]


def test_cache_disabled_reads_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_mnist_npz(tmp_path / "mnist.npz")
    first = load_task_data(catalog.MNIST, data_dir=tmp_path, use_cache=False)
    assert cache_files("mnist") == []
    load_task_data(catalog.MNIST, data_dir=tmp_path)
    monkeypatch.setattr(formats, "read_npz", must_not_call)
    with pytest.raises(pytest.fail.Exception, match="unexpected call"):
        load_task_data(catalog.MNIST, data_dir=tmp_path, use_cache=False)
    assert_same(load_task_data(catalog.MNIST, data_dir=tmp_path), first)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_cache_is_rebuilt(tmp_path: Path, damage: str) -> None:
    write_mnist_npz(tmp_path / "mnist.npz")
    first = load_task_data(catalog.MNIST, data_dir=tmp_path)
    (entry,) = cache_files("mnist")
    blob = entry.read_bytes()
    entry.write_bytes(
        {"garbage": b"not a torch file", "truncated": blob[: len(blob) // 2], "empty": b""}[damage]
    )
    assert cache.load(entry) is None

    second = load_task_data(catalog.MNIST, data_dir=tmp_path)

    assert_same(first, second)
    assert cache_files("mnist") == [entry]
    assert cache.load(entry) is not None  # rewritten


def test_changed_source_invalidates_cache(tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    write_mnist_npz(path, seed=0)
    first = load_task_data(catalog.MNIST, data_dir=tmp_path)
    stat = path.stat()

    write_mnist_npz(path, seed=1)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = load_task_data(catalog.MNIST, data_dir=tmp_path)

    assert not torch.equal(first.train_x, second.train_x)
    expected = make_images(30, (28, 28), seed=1)
    check_carved(second, expected, np.arange(30) % 10, n_val=3)
    assert len(cache_files("mnist")) == 2


def test_text_config_is_part_of_the_cache_key(tmp_path: Path) -> None:
    np.savez(
        tmp_path / "trec.npz",
        train_text=np.array([f"some words here {i}" for i in range(10)]),
        train_labels=np.arange(10) % 6,
    )
    short = load_task_data(catalog.TREC, data_dir=tmp_path, text_config=TextConfig(3, 2))
    long = load_task_data(catalog.TREC, data_dir=tmp_path, text_config=TextConfig(20, 6))
    assert short.train_x.shape[1] == 2
    assert short.vocab_size == 3
    assert long.train_x.shape[1] == 6
    assert long.vocab_size == 20
    assert len(cache_files("trec")) == 2


# ------------------------------------------------------------------- splits


def test_validation_carve_is_stable_and_capped(tmp_path: Path) -> None:
    images, labels = make_images(50, (4, 4)), np.arange(50) % 10
    np.savez(tmp_path / "mnist.npz", images=images, labels=labels)
    a = load_task_data(catalog.MNIST, data_dir=tmp_path, use_cache=False)
    b = load_task_data(catalog.MNIST, data_dir=tmp_path, use_cache=False)
    assert torch.equal(a.val_x, b.val_x)
    assert torch.equal(a.train_x, b.train_x)
    check_carved(a, images, labels, n_val=5)

    capped = DatasetInfo(
        name="capped",
        kind="image",
        num_classes=10,
        local_names=("mnist",),
        val_fraction=0.5,
        val_max=7,
    )
    check_carved(load_task_data(capped, data_dir=tmp_path), images, labels, n_val=7)

    train_idx, val_idx = loader.carve_validation(50, catalog.MNIST)
    assert markers(a.val_x) == val_idx.tolist()
    assert markers(a.train_x) == train_idx.tolist()


def small_task_data(n: int = 40) -> TaskData:
    x = torch.arange(n * 2, dtype=torch.float32).reshape(n, 2)
    return TaskData(
        train_x=x,
        train_y=torch.arange(n) % 3,
        val_x=torch.zeros(5, 2),
        val_y=torch.zeros(5, dtype=torch.int64),
        test_x=torch.ones(6, 2),
        test_y=torch.ones(6, dtype=torch.int64),
        kind="tabular",
        num_classes=3,
    )


def test_subset_is_seeded_and_keeps_evaluation_splits() -> None:
    data = small_task_data()
    a, b, c = data.subset(0.25, seed=1), data.subset(0.25, seed=1), data.subset(0.25, seed=2)
    assert a.train_x.shape == (10, 2)
    assert torch.equal(a.train_x, b.train_x)
    assert not torch.equal(a.train_x, c.train_x)
    rows = a.train_x[:, 0].long() // 2
    assert torch.equal(a.train_y, data.train_y[rows])  # inputs and labels stay paired
    assert rows.tolist() == sorted(set(rows.tolist()))  # sorted, no repeats
    for part in (a, c):
        assert part.val_x is data.val_x
        assert part.val_y is data.val_y
        assert part.test_x is data.test_x
        assert part.test_y is data.test_y
    assert data.subset(None) is data
    assert data.subset(1.0) is data
    assert data.subset(0.001).train_x.shape == (1, 2)


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5, float("nan")])
def test_subset_rejects_bad_fractions(fraction: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        small_task_data().subset(fraction)


def test_subset_of_loaded_data(tmp_path: Path) -> None:
    write_mnist_npz(tmp_path / "mnist.npz", n=40)
    data = load_task_data(catalog.MNIST, data_dir=tmp_path)
    half = data.subset(0.5, seed=3)
    assert half.train_x.shape == (18, 1, 28, 28)
    assert set(markers(half.train_x)) <= set(markers(data.train_x))
    assert torch.equal(half.val_x, data.val_x)
    assert half.source == data.source


def test_text_config_validation() -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        TextConfig(vocab_size=2)
    with pytest.raises(ValueError, match="seq_len"):
        TextConfig(seq_len=0)


def test_pad_sequences_maps_out_of_vocabulary_ids() -> None:
    out = text.pad_sequences([np.array([], dtype=np.int64), np.array([4, 9, 3])], 4, 5, oov_id=2)
    assert out.dtype == np.int32
    assert out.tolist() == [[0, 0, 0, 0], [0, 4, 2, 3]]


# ------------------------------------------------------ real shared samples


def test_shared_mnist10k(shared_datasets: Path) -> None:
    data = load_task_data(catalog.MNIST, data_dir=shared_datasets)
    assert data.source == str(shared_datasets / "mnist10k.npz")
    assert data.train_x.shape == (9000, 1, 28, 28)
    assert data.val_x.shape == (1000, 1, 28, 28)
    assert data.train_x.dtype == torch.uint8
    assert data.train_y.dtype == torch.int64
    assert data.test_x is None
    assert set(data.train_y.unique().tolist()) == set(range(10))
    assert int(data.train_x.max()) == 255


def test_shared_imdb6k(shared_datasets: Path) -> None:
    config = TextConfig(vocab_size=400, seq_len=64)
    data = load_task_data(catalog.IMDB, data_dir=shared_datasets, text_config=config)
    assert data.source == str(shared_datasets / "imdb6k.npz")
    assert data.test_x is not None
    assert data.test_y is not None
    assert data.test_x.shape == (1000, 64)
    assert data.train_x.shape == (4500, 64)
    assert data.val_x.shape == (500, 64)
    assert data.train_x.dtype == torch.int32
    assert data.test_y.dtype == torch.int64
    assert set(data.test_y.unique().tolist()) == {0, 1}
    assert int(data.train_x.max()) < 400
    assert bool((data.train_x == 2).any())  # ids 400..499 became OOV


@pytest.mark.parametrize(
    ("value", "disabled"), [("1", True), ("yes", True), ("0", False), ("", False)]
)
def test_no_hub_setting_values(monkeypatch: pytest.MonkeyPatch, value: str, disabled: bool):
    monkeypatch.setenv("HPENV_NO_HUB", value)
    assert loader.hub_disabled() is disabled


def test_atomic_writes_use_normal_permissions(tmp_path: Path):
    from hpenv.io import atomic_write_json

    target = tmp_path / "x.json"
    previous = os.umask(0o022)
    try:
        atomic_write_json({"a": 1}, target)
    finally:
        os.umask(previous)
    assert target.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
