"""On-disk cache of processed dataset tensors, written atomically."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from hpenv.io import UnsafeFileError, atomic_torch_save, safe_torch_load

CACHE_FORMAT = 1


def cache_dir() -> Path:
    """``HPENV_CACHE_DIR`` if set, else ``~/.cache/hpenv``."""
    return Path(os.environ.get("HPENV_CACHE_DIR") or Path.home() / ".cache" / "hpenv")


def cache_path(name: str, key: dict[str, Any], root: Path | None = None) -> Path:
    """Path of the cache entry for dataset ``name`` processed as described by ``key``."""
    blob = json.dumps({"format": CACHE_FORMAT, **key}, sort_keys=True, default=str)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:20]
    return (root or cache_dir()) / f"{name}-{digest}.pt"


def load(path: Path) -> dict[str, Any] | None:
    """The cached entry, or None if missing or unreadable (it is then rebuilt)."""
    try:
        entry: dict[str, Any] = safe_torch_load(path, "dataset cache entry")
        return entry
    except (FileNotFoundError, UnsafeFileError):
        return None


def save(entry: dict[str, Any], path: Path) -> None:
    atomic_torch_save(entry, path)
