"""Test-wide settings: one torch thread, a private data cache, no hub access."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test gets its own cache dir, no HPENV_DATA_DIR, and no hub access."""
    monkeypatch.setenv("HPENV_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("HPENV_NO_HUB", "1")
    monkeypatch.delenv("HPENV_DATA_DIR", raising=False)


SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture
def shared_datasets() -> Path:
    """The real offline samples (MNIST 10k, IMDB 6k), when this checkout has them."""
    path = Path(os.environ.get("HPENV_SHARED_DATASETS", SHARED_DATASETS))
    if not (path / "mnist10k.npz").is_file():
        pytest.skip(f"shared datasets not found at {path}")
    return path
