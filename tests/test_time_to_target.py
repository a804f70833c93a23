"""scripts/time_to_target.py: the fraction of the budget spent before reaching static's final."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from scripts import load_script


def _script():
    return load_script("time_to_target")


def _run(*points: tuple[int, float]) -> dict:
    return {"trajectory": [{"samples": s, "val_accuracy": a} for s, a in points]}


def test_fraction_is_first_evaluation_at_statics_final_and_misses_count_as_whole_budget():
    store = SimpleNamespace(
        records={
            ("static", "t", 0, 1.0): _run((0, 0.1), (50, 0.5), (100, 0.6)),
            ("static", "t", 1, 1.0): _run((0, 0.1), (50, 0.7), (100, 0.8)),  # target: mean 0.7
            ("policy", "t", 0, 1.0): _run((0, 0.1), (25, 0.72), (100, 0.9)),
            ("policy", "t", 1, 1.0): _run((0, 0.1), (50, 0.5), (100, 0.6)),  # never reaches it
            ("policy", "other", 0, 1.0): _run((0, 0.1), (100, 0.9)),  # no static there: left out
        }
    )
    out = _script().fractions(store)
    assert out["policy"] == [0.25, 1.0]
    assert out["static"] == [1.0, 0.5]


def test_refuses_a_folder_without_runs(tmp_path: Path):
    with pytest.raises(SystemExit, match=r"no runs\.jsonl"):
        _script().main(["--out-dir", str(tmp_path)])
