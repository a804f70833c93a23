"""scripts/time_to_target.py: the fraction of the budget spent before reaching static's final."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.evaluation.runs import _Run
from scripts import load_script


def _script():
    return load_script("time_to_target")


def _run(method: str, task: str, seed: int, *points: tuple[int, float]) -> _Run:
    row = {
        "method": method,
        "task": task,
        "seed": seed,
        "start_lr_factor": 1.0,
        "val_accuracy": points[-1][1],
        "diverged": False,
    }
    return _Run(row, [{"samples": s, "val_accuracy": a} for s, a in points], {})


def test_fraction_is_first_evaluation_at_statics_final_and_misses_count_as_whole_budget():
    runs = [
        _run("static", "t", 0, (0, 0.1), (50, 0.5), (100, 0.6)),
        _run("static", "t", 1, (0, 0.1), (50, 0.7), (100, 0.8)),  # target: mean 0.7
        _run("policy", "t", 0, (0, 0.1), (25, 0.72), (100, 0.9)),
        _run("policy", "t", 1, (0, 0.1), (50, 0.5), (100, 0.6)),  # never reaches it
        _run("policy", "other", 0, (0, 0.1), (100, 0.9)),  # no static there: left out
    ]
    out = _script().fractions(runs)
    assert out["policy"] == [0.25, 1.0]
    assert out["static"] == [1.0, 0.5]


def test_refuses_a_folder_without_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_:
        _script().main(["--out-dir", str(tmp_path)])
    assert exit_.value.code == 2
    assert "no runs.jsonl" in capsys.readouterr().err
