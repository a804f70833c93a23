"""Find a dataset, read it, process it to tensors, and cache the result.

Sources are tried in this order:

1. the local data directory (``data_dir=`` argument, else ``HPENV_DATA_DIR``):
   ``<name>.npz``, ``<name>/`` as Hugging Face ``save_to_disk`` or parquet, and
   torchvision's layouts;
2. the Hugging Face hub via ``datasets.load_dataset`` (its usual cache applies;
   set ``HPENV_NO_HUB=1`` to skip it);
3. built-in offline sources (scikit-learn, generated data).

Missing data raises `DataNotFoundError` naming every place looked and how to
provide the data. A local file that is there but unreadable (truncated, not
the expected format, holding pickled objects) or whose labels and inputs do
not fit the dataset (labels outside ``[0, classes)``, unequal lengths) raises
`DataFormatError` naming the file and what to do; nothing is checked only
later, mid-training. There is no fallback to fake data.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpenv.errors import InputError
from hpenv.network import hub_offline
from hpenv.tasks.data import cache, formats, text
from hpenv.tasks.data.spec import DatasetInfo, RawSplits, TaskData, TextConfig

#: Seed of the validation carve: fixed, so the split never changes between runs.
VAL_SPLIT_SEED = 20_240_601


class DataNotFoundError(FileNotFoundError):
    """A dataset could not be found in any source.

    ``str()`` is the full message (every place looked, how to provide the data);
    ``summary`` is one line for listings such as meta-training's skipped tasks.
    """

    def __init__(self, message: str, summary: str = "") -> None:
        super().__init__(message)
        self.summary = summary or message.splitlines()[0]


class DataFormatError(InputError):
    """A dataset was found but cannot be used: a damaged file, wrong layout or bad labels."""


@dataclass(frozen=True)
class Source:
    description: str
    fingerprint: str
    read: Callable[[], RawSplits]


def hub_load(hub_id: str) -> Any:
    """``datasets.load_dataset(hub_id)``; replaced in tests, never called at import."""
    import datasets

    return datasets.load_dataset(hub_id)


def hub_disabled() -> bool:
    """``HPENV_NO_HUB`` set to anything but empty, ``0``, ``false`` or ``no``."""
    return os.environ.get("HPENV_NO_HUB", "").strip().lower() not in ("", "0", "false", "no")


def hub_unavailable() -> str | None:
    """Why the hub cannot be used now (`hpenv.network.hub_offline`); None if it can."""
    return hub_offline()


def data_dir_setting(data_dir: str | os.PathLike[str] | None) -> Path | None:
    value = data_dir if data_dir is not None else os.environ.get("HPENV_DATA_DIR")
    return Path(value).expanduser() if value else None


def local_candidates(info: DatasetInfo, root: Path) -> list[tuple[Path, str]]:
    """Every path looked at in ``root``, with the format expected there."""
    found: list[tuple[Path, str]] = []
    for stem in info.local_names:
        found.append((root / f"{stem}.npz", "npz"))
        found.append((root / stem, "Hugging Face save_to_disk or parquet folder"))
    if info.torchvision_layout == "cifar10":
        found.append((root / "cifar-10-batches-py", "torchvision CIFAR-10"))
    elif info.torchvision_layout == "mnist":
        found.append((root / "MNIST" / "raw", "torchvision MNIST idx"))
    elif info.torchvision_layout == "fashion_mnist":
        found.append((root / "FashionMNIST" / "raw", "torchvision Fashion-MNIST idx"))
    return found


def find_local(info: DatasetInfo, root: Path) -> Source | None:
    """The first usable source in ``root``, or None."""
    for path, _ in local_candidates(info, root):
        reader = _local_reader(path, info)
        if reader is not None:
            return Source(str(path), _fingerprint(path), reader)
    return None


def _local_reader(path: Path, info: DatasetInfo) -> Callable[[], RawSplits] | None:
    if path.suffix == ".npz":
        return (lambda: formats.read_npz(path)) if path.is_file() else None
    if not path.is_dir():
        return None
    if path.name == "cifar-10-batches-py":
        return lambda: formats.read_cifar10_batches(path)
    if path.name == "raw" and formats.find_idx(path, "train-images-idx3-ubyte"):
        return lambda: formats.read_mnist_raw(path)
    if formats.is_hf_disk(path):
        return lambda: formats.read_hf_disk(path, info)
    if formats.parquet_files(path):
        return lambda: formats.read_parquet_dir(path, info)
    return None


def _fingerprint(path: Path) -> str:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    stats = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return repr(stats)


def load_task_data(
    info: DatasetInfo,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    text_config: TextConfig | None = None,
    use_cache: bool = True,
) -> TaskData:
    """Load ``info``'s dataset from the first source that has it.

    Args:
        info: The dataset.
        data_dir: Local data directory; defaults to ``HPENV_DATA_DIR``.
        text_config: Vocabulary size and sequence length (text datasets).
        use_cache: Read and write the processed-tensor cache (``HPENV_CACHE_DIR``).

    Raises:
        DataNotFoundError: No source has the dataset.
    """
    if info.kind == "text" and text_config is None:
        text_config = TextConfig()
    looked: list[str] = []
    root = data_dir_setting(data_dir)
    sources: list[Source] = []
    if root is not None:
        local = find_local(info, root)
        if local is not None:
            sources.append(local)
        else:
            setting = "data_dir" if data_dir is not None else "HPENV_DATA_DIR"
            looked += [f"{p} ({fmt}; {setting})" for p, fmt in local_candidates(info, root)]
    else:
        looked.append("no local data directory (data_dir= argument or HPENV_DATA_DIR unset)")
    hub_id = info.hub_id
    unavailable = None if hub_id is None or hub_disabled() else hub_unavailable()
    if hub_id is not None and not hub_disabled() and unavailable is None:
        sources.append(
            Source(
                f"Hugging Face hub {hub_id!r}",
                f"hub:{hub_id}",
                lambda: formats.from_hf_splits(dict(hub_load(hub_id)), info, f"hub:{hub_id}"),
            )
        )
    elif hub_id is not None:
        why = "HPENV_NO_HUB is set" if hub_disabled() else unavailable
        looked.append(f"Hugging Face hub {hub_id!r} (skipped: {why})")
    if info.builtin is not None:
        sources.append(Source(f"built-in {info.name}", f"builtin:{info.name}", info.builtin))

    for source in sources:
        key = {"fingerprint": source.fingerprint, "text": text_config, "val": _val_key(info)}
        path = cache.cache_path(info.name, key)
        entry = cache.load(path) if use_cache else None
        if entry is None:
            try:
                raw = source.read()
            except Exception as exc:
                if source.fingerprint.startswith("hub:"):
                    looked.append(f"{source.description}: {type(exc).__name__}: {exc}")
                    continue
                raise _unreadable(source, info, exc) from None
            try:
                entry = process(raw, info, text_config)
            except ValueError as exc:
                raise DataFormatError(f"{exc}. {_fix_hint(source, info)}") from None
            if use_cache:
                cache.save(entry, path)
        return _task_data(entry, info)
    raise DataNotFoundError(_missing_message(info, looked), _missing_summary(info, looked))


def _fix_hint(source: Source, info: DatasetInfo) -> str:
    if source.fingerprint.startswith(("hub:", "builtin:")):
        return f"This is a bug in hpenv's {info.name!r} source: please report it"
    return (
        f"Replace {source.description} with a good copy, or move it away (then hpenv looks "
        "in the next source: the hub, or built-in data)"
    )


def _unreadable(source: Source, info: DatasetInfo, exc: Exception) -> DataFormatError:
    """A clear error for a local file that exists but cannot be read."""
    text = str(exc)
    if "allow_pickle" in text or "pickle" in type(exc).__name__.lower():
        why = (
            "it holds pickled Python objects, which hpenv never loads (they could run code); "
            "save plain numeric or string arrays"
        )
    elif isinstance(exc, ValueError) and str(source.description) in text:
        why = text  # a reader's own message (wrong layout) already names the file
    else:
        why = f"it is damaged or not in the expected format ({type(exc).__name__}: {text})"
    return DataFormatError(
        f"{source.description} could not be read as dataset {info.name!r}: {why}. "
        f"{_fix_hint(source, info)}."
    )


def _val_key(info: DatasetInfo) -> tuple[float, int, int]:
    return (info.val_fraction, info.val_max, VAL_SPLIT_SEED)


def _missing_summary(info: DatasetInfo, looked: list[str]) -> str:
    """One line: not found, where, and the setting that provides it."""

    def short(place: str) -> str:
        if "(skipped: " in place:  # the hub, and why it was not asked
            head, reason = place.split("(skipped: ", 1)
            return f"{head.strip()} skipped: {reason.split(' (')[0].split(';')[0].rstrip(')')}"
        return place.split(" (")[0]

    where = "; ".join(short(place) for place in looked)
    return (
        f"dataset {info.name!r} not found ({where}); set HPENV_DATA_DIR to a directory "
        f"holding {info.local_names[0]}.npz or {info.local_names[0]}/"
    )


def _missing_message(info: DatasetInfo, looked: list[str]) -> str:
    lines = [f"Dataset {info.name!r} was not found. Looked in:"]
    lines += [f"  - {place}" for place in looked]
    names = ", ".join(f"{n}.npz or {n}/" for n in info.local_names)
    if info.torchvision_layout:
        names += f", or torchvision's {info.torchvision_layout} layout"
    lines.append(
        "To provide it, put one of these in a directory and set HPENV_DATA_DIR=<dir> "
        f"(or pass data_dir=<dir>): {names}."
    )
    if info.hub_id:
        lines.append(
            "Or, with internet access, cache it from the Hugging Face hub once: "
            f"python -c \"import datasets; datasets.load_dataset('{info.hub_id}')\""
        )
    if info.fetch_hint:
        lines.append(info.fetch_hint)
    return "\n".join(lines)


# ------------------------------------------------------------------- processing


def process(raw: RawSplits, info: DatasetInfo, text_config: TextConfig | None) -> dict[str, Any]:
    """Raw splits to a cacheable dict of tensors (validation carved if missing)."""
    inputs = dict(raw.inputs)
    labels = {k: _label_vector(v, f"{raw.source}: {k} labels") for k, v in raw.labels.items()}
    for split, y in labels.items():
        _check_labels(y, len(inputs[split]), info, f"{raw.source}: {split} split")
    if "val" not in inputs:
        train_idx, val_idx = carve_validation(len(labels["train"]), info)
        x = inputs["train"]
        inputs["train"], inputs["val"] = _take(x, train_idx), _take(x, val_idx)
        labels["train"], labels["val"] = labels["train"][train_idx], labels["train"][val_idx]
    entry: dict[str, Any] = {"source": raw.source, "vocab": []}
    if info.kind == "text":
        assert text_config is not None
        if raw.pretokenized:
            sequences, oov = inputs, raw.oov_id
        else:
            vocab = text.build_vocab(inputs["train"], text_config.vocab_size)
            sequences = {s: text.encode(v, vocab) for s, v in inputs.items()}
            oov, entry["vocab"] = text.OOV_ID, vocab
        for split, seqs in sequences.items():
            padded = text.pad_sequences(seqs, text_config.seq_len, text_config.vocab_size, oov)
            entry[f"{split}_x"] = torch.from_numpy(padded)
        entry["vocab_size"] = text_config.vocab_size
    else:
        for split, x in inputs.items():
            entry[f"{split}_x"] = _to_tensor(np.asarray(x), info)
        entry["vocab_size"] = 0
    for split, y in labels.items():
        entry[f"{split}_y"] = torch.from_numpy(y.astype(np.int64))
    return entry


def _label_vector(y: Any, what: str) -> np.ndarray:
    """Labels as a 1-D array; a (N, 1) column (Keras' CIFAR-10 ``y_train``) is flattened."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{what} must be one integer per sample, got shape {y.shape}")
    return y


def _check_labels(y: np.ndarray, n_inputs: int, info: DatasetInfo, what: str) -> None:
    """Labels are integers in ``[0, num_classes)``, one per input."""
    if len(y) != n_inputs:
        raise ValueError(f"{what} has {n_inputs} inputs but {len(y)} labels")
    whole = y.dtype.kind in "iub" or (y.dtype.kind == "f" and np.array_equal(y, np.round(y)))
    if not whole:
        raise ValueError(f"{what}: labels must be integers, got dtype {y.dtype}")
    if len(y) and (y.min() < 0 or y.max() >= info.num_classes):
        raise ValueError(
            f"{what}: labels must be in [0, {info.num_classes}) for {info.name!r}, "
            f"found {y.min()}..{y.max()}"
        )


def carve_validation(n: int, info: DatasetInfo) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-seed train/validation index split of ``n`` training samples."""
    n_val = max(1, min(info.val_max, round(n * info.val_fraction)))
    order = np.random.default_rng(VAL_SPLIT_SEED).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _take(x: Any, index: np.ndarray) -> Any:
    if isinstance(x, np.ndarray):
        return x[index]
    return [x[i] for i in index]


def _to_tensor(x: np.ndarray, info: DatasetInfo) -> torch.Tensor:
    if info.kind == "image":
        if x.dtype != np.uint8:
            raise ValueError(f"{info.name}: images must be uint8, got {x.dtype}")
        if x.ndim == 3:  # (N, H, W) grayscale
            x = x[:, None]
        elif x.ndim == 4 and x.shape[-1] in (1, 3):  # (N, H, W, C)
            x = x.transpose(0, 3, 1, 2)
        return torch.from_numpy(np.ascontiguousarray(x))
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def _task_data(entry: dict[str, Any], info: DatasetInfo) -> TaskData:
    return TaskData(
        train_x=entry["train_x"],
        train_y=entry["train_y"],
        val_x=entry["val_x"],
        val_y=entry["val_y"],
        test_x=entry.get("test_x"),
        test_y=entry.get("test_y"),
        kind=info.kind,
        num_classes=info.num_classes,
        source=entry["source"],
        vocab_size=entry["vocab_size"],
        image_mean=info.image_mean,
        image_std=info.image_std,
        extra={"vocab": entry["vocab"]} if entry["vocab"] else {},
    )
