"""The prepared GPU check and the meta-training benchmark, at their tiny CPU sizes."""

from __future__ import annotations

import json

import pytest

from scripts import load_script


def test_gpu_check_dry_run_measures_every_part(tmp_path):
    out = tmp_path / "gpu.json"
    assert load_script("gpu_check").main(["--dry-run", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    meta, cnn, harness = results["meta"], results["cnn"], results["harness"]
    assert meta["subprocess_cpu"]["per_second"] > 0
    assert meta["population_8"]["rollout"] == 256
    assert meta["population_8"]["ratio_to_subprocess"] > 0
    assert cnn["population"] > 0
    assert cnn["sequential"] > 0
    assert harness["auto"]["cells"] == 2 * 4  # 2 seeds x (policy, static, cosine, grid)
    assert harness["sequential"]["cells"] == 4
    engines = harness["auto"], harness["sequential"]
    assert engines[0]["mean_accuracy_shared"] == pytest.approx(engines[1]["mean_accuracy_shared"])
