"""Descriptions of datasets and of their contents at each stage of loading.

`DatasetInfo` says what a dataset is and where it can be found; `RawSplits` is
what a source returned (numpy arrays, strings); `TaskData` is the processed
result: torch tensors ready to live on the training device.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

DataKind = Literal["image", "text", "tabular"]
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class TextConfig:
    """How raw text becomes token ids.

    Attributes:
        vocab_size: Ids kept, padding (0) and out-of-vocabulary included; the
            most frequent training-split words fill the rest.
        seq_len: Every sequence is truncated (keeping its start) or left-padded
            with 0 to this length.
    """

    vocab_size: int = 10_000
    seq_len: int = 200

    def __post_init__(self) -> None:
        if self.vocab_size < 3 or self.seq_len < 1:
            raise ValueError(f"need vocab_size >= 3 and seq_len >= 1, got {self}")


@dataclass
class RawSplits:
    """A dataset as read from a source, before processing.

    Attributes:
        inputs: Split name (``train``, ``val``, ``test``) to inputs: uint8 image
            arrays (N, H, W) or (N, H, W, C); float feature arrays (N, D); a list
            of strings; or a list of int token-id arrays when ``pretokenized``.
        labels: Split name to integer label arrays.
        source: Human-readable description of where the data came from.
        pretokenized: Text inputs are already token ids.
        oov_id: Out-of-vocabulary id of pre-tokenized text (ids past the
            vocabulary are mapped to it).
    """

    inputs: dict[str, Any]
    labels: dict[str, np.ndarray]
    source: str
    pretokenized: bool = False
    oov_id: int = 1


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset and every place it may be found.

    Attributes:
        name: Short name used in messages and cache files.
        kind: ``image``, ``text`` or ``tabular``.
        num_classes: Number of label values.
        local_names: Names looked for in a data directory: ``<name>.npz`` files
            and ``<name>/`` folders (Hugging Face ``save_to_disk`` or parquet).
        torchvision_layout: ``cifar10``, ``mnist`` or ``fashion_mnist`` if the
            torchvision on-disk layout is accepted.
        hub_id: Hugging Face hub id for ``datasets.load_dataset``, or None.
        input_columns / label_columns: Column names tried, in order, in
            Hugging Face data.
        builtin: Offline loader (scikit-learn, generated), tried last.
        val_fraction / val_max: Size of the validation split carved from train
            when the source has none.
        image_mean / image_std: Per-channel statistics of the [0, 1] images,
            used to normalise them on the device.
        fetch_hint: Extra line for the missing-data error: how to get the files.
    """

    name: str
    kind: DataKind
    num_classes: int
    local_names: tuple[str, ...] = ()
    torchvision_layout: str | None = None
    hub_id: str | None = None
    input_columns: tuple[str, ...] = ("image", "img", "text", "sentence")
    label_columns: tuple[str, ...] = ("label", "coarse_label", "labels")
    builtin: Callable[[], RawSplits] | None = None
    val_fraction: float = 0.1
    val_max: int = 5_000
    image_mean: tuple[float, ...] = ()
    image_std: tuple[float, ...] = ()
    fetch_hint: str = ""


@dataclass
class TaskData:
    """Processed tensors of one dataset.

    Images are uint8 (N, C, H, W), text int32 (N, L) token ids, tabular float32
    (N, D). Labels are int64. The test split is None when the source has none.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor | None
    test_y: torch.Tensor | None
    kind: DataKind
    num_classes: int
    source: str = ""
    vocab_size: int = 0
    image_mean: tuple[float, ...] = ()
    image_std: tuple[float, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and labels of ``train``, ``val`` or ``test``."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        x, y = getattr(self, f"{name}_x"), getattr(self, f"{name}_y")
        if x is None:
            raise ValueError(f"this dataset ({self.source}) has no {name} split")
        return x, y

    def to(self, device: torch.device | str) -> TaskData:
        """Copy every tensor to ``device`` (no-op for tensors already there)."""
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return dataclasses.replace(self, **moved)

    def subset(self, fraction: float | None, seed: int = 0) -> TaskData:
        """Keep a seeded ``fraction`` of the training split (validation and test unchanged)."""
        if fraction is None or fraction == 1.0:
            return self
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"subset must be a fraction in (0, 1], got {fraction!r}")
        n = self.train_x.shape[0]
        keep = max(1, round(n * fraction))
        gen = torch.Generator().manual_seed(seed)
        index = torch.randperm(n, generator=gen)[:keep].sort().values.to(self.train_x.device)
        return dataclasses.replace(self, train_x=self.train_x[index], train_y=self.train_y[index])

    def test_from_val(self, seed: int = 0) -> TaskData:
        """Half of the validation split as the test split, where the data has none.

        A seeded half of the validation rows (``numpy.random.default_rng(seed)``'s
        permutation: its second half) becomes the test split and the other half stays
        the validation split, which is all a run reads (its decisions, a grid's choice,
        a rollback's best state), so the test accuracy is scored on rows that no method
        chose on. Data with a test split of its own is returned unchanged.

        >>> data = TaskData(torch.zeros(10, 2), torch.arange(10), torch.ones(6, 2),
        ...                 torch.arange(6), None, None, kind="tabular", num_classes=10)
        >>> carved = data.test_from_val()
        >>> carved.val_x.shape[0], carved.test_x.shape[0]
        (3, 3)
        >>> sorted(carved.val_y.tolist() + carved.test_y.tolist())
        [0, 1, 2, 3, 4, 5]
        """
        if self.test_x is not None:
            return self
        n = self.val_x.shape[0]
        if n < 2:
            raise ValueError(f"a validation split of {n} rows cannot lend half to a test split")
        order = np.random.default_rng(seed).permutation(n)
        keep = torch.from_numpy(np.sort(order[: n // 2])).to(self.val_x.device)
        test = torch.from_numpy(np.sort(order[n // 2 :])).to(self.val_x.device)
        return dataclasses.replace(
            self,
            val_x=self.val_x[keep],
            val_y=self.val_y[keep],
            test_x=self.val_x[test],
            test_y=self.val_y[test],
            source=f"{self.source}, test: half of the validation split held back",
        )

    def hold_out(self, fraction: float, seed: int = 0) -> TaskData:
        """A validation split held back from the training split; the test split is dropped.

        A seeded ``fraction`` of the training rows becomes the validation split and
        the rest stays for training, so runs on the result never see the task's own
        validation and test splits (what an evaluation scores on).

        >>> data = TaskData(torch.zeros(10, 2), torch.arange(10), torch.ones(3, 2),
        ...                 torch.zeros(3), None, None, kind="tabular", num_classes=10)
        >>> held = data.hold_out(0.2)
        >>> held.train_x.shape[0], held.val_x.shape[0], held.test_x
        (8, 2, None)
        >>> sorted(held.train_y.tolist() + held.val_y.tolist()) == list(range(10))
        True
        """
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"hold-out fraction must be in (0, 1), got {fraction!r}")
        n = self.train_x.shape[0]
        held = max(1, round(n * fraction))
        if held >= n:
            raise ValueError(f"holding out {fraction:g} of {n} training rows leaves none to train")
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(n, generator=gen).to(self.train_x.device)
        val, train = order[:held].sort().values, order[held:].sort().values
        return dataclasses.replace(
            self,
            train_x=self.train_x[train],
            train_y=self.train_y[train],
            val_x=self.train_x[val],
            val_y=self.train_y[val],
            test_x=None,
            test_y=None,
            source=f"{self.source}, validation: {fraction:.0%} of the training split held back",
        )
