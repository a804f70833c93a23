"""Readers for the on-disk formats users already have.

Each reader takes a path and returns `RawSplits`. Formats:

- ``.npz``: ``images``/``labels`` (one unsplit set), ``{split}_images`` /
  ``{split}_labels``, Keras-style ``x_{split}`` / ``y_{split}``, pre-tokenized
  text as ``{split}_tokens`` + ``{split}_offsets`` + ``{split}_labels`` (the
  layout of the shared IMDB sample), or ``{split}_text`` + ``{split}_labels``.
- Hugging Face ``save_to_disk`` folders and parquet folders.
- torchvision's CIFAR-10 (``cifar-10-batches-py``) and MNIST / Fashion-MNIST
  (``<Name>/raw`` idx files, optionally gzipped) layouts.
"""

from __future__ import annotations

import gzip
import io
import itertools
import pickle
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from hpenv.tasks.data.spec import DatasetInfo, RawSplits

_SPLIT_ALIASES = {
    "train": "train",
    "validation": "val",
    "valid": "val",
    "val": "val",
    "dev": "val",
    "test": "test",
}


# --------------------------------------------------------------------------- npz


def read_npz(path: Path) -> RawSplits:
    """Read one of the ``.npz`` layouts listed in the module docstring."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    inputs: dict[str, Any] = {}
    labels: dict[str, np.ndarray] = {}
    pretokenized = False
    if "images" in arrays and "labels" in arrays:
        inputs["train"], labels["train"] = arrays["images"], arrays["labels"]
    for raw_split, split in _SPLIT_ALIASES.items():
        if split in inputs:
            continue
        if f"{raw_split}_tokens" in arrays:
            tokens = arrays[f"{raw_split}_tokens"]
            offsets = arrays[f"{raw_split}_offsets"]
            inputs[split] = [tokens[a:b] for a, b in itertools.pairwise(offsets)]
            labels[split] = arrays[f"{raw_split}_labels"]
            pretokenized = True
            continue
        for x_key, y_key in (
            (f"{raw_split}_images", f"{raw_split}_labels"),
            (f"{raw_split}_text", f"{raw_split}_labels"),
            (f"x_{raw_split}", f"y_{raw_split}"),
        ):
            if x_key in arrays and y_key in arrays:
                x = arrays[x_key]
                inputs[split] = [str(s) for s in x] if x.dtype.kind == "U" else x
                labels[split] = arrays[y_key]
                break
    if "train" not in inputs:
        raise ValueError(
            f"{path}: no training data found; arrays present: {sorted(arrays)}. Expected "
            "'images'+'labels', 'train_images'+'train_labels', 'x_train'+'y_train', "
            "'train_tokens'+'train_offsets'+'train_labels' or 'train_text'+'train_labels'."
        )
    # Keras-style token ids: 0 pad, 1 start, 2 out-of-vocabulary.
    return RawSplits(inputs, labels, source=str(path), pretokenized=pretokenized, oov_id=2)


# ------------------------------------------------------------------ Hugging Face


def is_hf_disk(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def parquet_files(path: Path) -> dict[str, list[str]]:
    """Group ``*.parquet`` files under ``path`` by split, from their names."""
    groups: dict[str, list[str]] = {}
    for file in sorted(path.rglob("*.parquet")):
        match = re.match(r"(train|validation|valid|val|dev|test)", file.name)
        if match is None and file.parent != path:
            match = re.match(r"(train|validation|valid|val|dev|test)$", file.parent.name)
        if match is not None:
            groups.setdefault(match.group(1), []).append(str(file))
    return groups


def read_hf_disk(path: Path, info: DatasetInfo) -> RawSplits:
    """Read a ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` folder."""
    import datasets

    loaded = datasets.load_from_disk(str(path))
    splits = loaded if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
    return from_hf_splits(dict(splits), info, source=f"{path} (Hugging Face save_to_disk)")


def read_parquet_dir(path: Path, info: DatasetInfo) -> RawSplits:
    """Read a folder of parquet files named by split (the hub's own layout)."""
    import datasets

    files = parquet_files(path)
    loaded = datasets.load_dataset("parquet", data_files=files)
    return from_hf_splits(dict(loaded), info, source=f"{path} (parquet)")


def from_hf_splits(splits: dict[str, Any], info: DatasetInfo, source: str) -> RawSplits:
    """Convert Hugging Face ``Dataset`` splits to `RawSplits` (unknown splits are skipped)."""
    inputs: dict[str, Any] = {}
    labels: dict[str, np.ndarray] = {}
    for raw_split, dataset in splits.items():
        split = _SPLIT_ALIASES.get(raw_split)
        if split is None:  # e.g. IMDB's "unsupervised"
            continue
        x_col = _pick_column(dataset.column_names, info.input_columns, source)
        y_col = _pick_column(dataset.column_names, info.label_columns, source)
        column = dataset[x_col]
        if info.kind == "image":
            inputs[split] = np.stack([_image_array(item) for item in column])
        elif info.kind == "text":
            inputs[split] = [str(text) for text in column]
        else:
            inputs[split] = np.asarray(column, dtype=np.float32)
        labels[split] = np.asarray(dataset[y_col], dtype=np.int64)
    if "train" not in inputs:
        raise ValueError(f"{source}: no train split among {sorted(splits)}")
    return RawSplits(inputs, labels, source=source)


def _pick_column(columns: list[str], candidates: tuple[str, ...], source: str) -> str:
    for name in candidates:
        if name in columns:
            return name
    raise ValueError(f"{source}: none of the columns {candidates} found; columns are {columns}")


def _image_array(item: Any) -> np.ndarray:
    if isinstance(item, dict) and item.get("bytes") is not None:
        from PIL import Image

        item = Image.open(io.BytesIO(item["bytes"]))
    return np.asarray(item, dtype=np.uint8)


# ------------------------------------------------------------------- torchvision


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a crafted file cannot run code."""

    ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only arrays and plain values are read"
            )
        return super().find_class(module, name)


def read_cifar10_batches(path: Path) -> RawSplits:
    """Read torchvision's ``cifar-10-batches-py`` folder (python pickles of arrays only)."""

    def batch(name: str) -> tuple[np.ndarray, np.ndarray]:
        with open(path / name, "rb") as fh:
            entry = _ArrayUnpickler(fh, encoding="bytes").load()
        data = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        return data.transpose(0, 2, 3, 1), np.asarray(entry[b"labels"], dtype=np.int64)

    train = [batch(f"data_batch_{i}") for i in range(1, 6) if (path / f"data_batch_{i}").exists()]
    if not train:
        raise ValueError(f"{path}: no data_batch_* files")
    test_x, test_y = batch("test_batch")
    return RawSplits(
        inputs={"train": np.concatenate([x for x, _ in train]), "test": test_x},
        labels={"train": np.concatenate([y for _, y in train]), "test": test_y},
        source=f"{path} (torchvision CIFAR-10)",
    )


def read_idx(path: Path) -> np.ndarray:
    """Read one idx file (MNIST's format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    # Copied: a view of the bytes object would be read-only (and so would its tensor).
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()


def find_idx(raw_dir: Path, stem: str) -> Path | None:
    for candidate in (raw_dir / stem, raw_dir / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def read_mnist_raw(raw_dir: Path) -> RawSplits:
    """Read torchvision's ``MNIST/raw`` (or ``FashionMNIST/raw``) idx files."""
    inputs: dict[str, Any] = {}
    labels: dict[str, np.ndarray] = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = find_idx(raw_dir, f"{prefix}-images-idx3-ubyte")
        targets = find_idx(raw_dir, f"{prefix}-labels-idx1-ubyte")
        if images is None or targets is None:
            continue
        inputs[split], labels[split] = read_idx(images), read_idx(targets).astype(np.int64)
    if "train" not in inputs:
        raise ValueError(f"{raw_dir}: no train-images-idx3-ubyte / train-labels-idx1-ubyte")
    return RawSplits(inputs, labels, source=f"{raw_dir} (torchvision idx)")
