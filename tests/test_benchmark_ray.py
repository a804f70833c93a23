"""`scripts/benchmark_ray.py` runs end to end at a tiny setting (its timings are not checked)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from agents.metatrain import MetaTrainConfig
from scripts import load_script

pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # a Ray instance and four meta-training runs: `make test-slow`


def test_benchmark_ray_measures_both_sections(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "ray.json"
    argv = [
        "--train-tasks", "synthetic", "--n-envs", "2", "--workers", "1,2", "--total-steps", "8",
        "--n-steps", "4", "--batch-size", "4", "--repeats", "1", "--out", str(out),
    ]  # fmt: skip
    results = load_script("benchmark_ray").main(argv)
    printed = capsys.readouterr().out
    rates = results["overhead"]["rates"]
    assert set(rates) == {"subprocess", "subprocess-nice15", "ray"}
    assert all(len(values) == 1 and min(values) > 0 for values in rates.values())
    assert set(results["overhead"]["ratios"]) == {"subprocess", "subprocess-nice15"}
    assert "ray / subprocess:" in printed
    curve = results["scaling"]["rates"]
    assert set(curve) == {"1", "2"}
    assert all(len(values) == 1 and min(values) > 0 for values in curve.values())
    assert "2 workers:" in printed
    assert json.loads(out.read_text())["scaling"]["rates"] == curve


def test_the_overhead_repeats_interleave(monkeypatch: pytest.MonkeyPatch):
    bench = load_script("benchmark_ray")
    runs: list[tuple[str, bool, int]] = []

    def measure(config: MetaTrainConfig, tasks: list[str], nice: bool = False) -> float:
        runs.append((config.vec_env, nice, config.seed))
        return 1.0 + len(runs)

    monkeypatch.setattr(bench, "agent_steps_per_second", measure)
    monkeypatch.setattr(bench, "vec_env_runtime", lambda config: contextlib.nullcontext())
    base = MetaTrainConfig(train_tasks=("synthetic",), eval_every=0)
    result = bench.overhead(bench.RayBenchmarkConfig(repeats=3), base, ["synthetic"])
    plain, nice, ray = ("subprocess", False), ("subprocess", True), ("ray", False)
    order = [plain, nice, ray, nice, ray, plain, ray, plain, nice]  # the order rotates
    assert runs == [(*run, k // 3) for k, run in enumerate(order)]  # seeded by the repeat
    assert result["ratios"]["subprocess"] == [4 / 2, 6 / 7, 8 / 9]  # paired within a repeat
