"""Ensembles of frozen policies: the mean action, the file, refusals, the loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from policies import make_policy
from test_controller import evaluator, plain_setup, train_plain

from agents.deploy.controller import HyperController
from agents.policy import FrozenPolicy, IncompatiblePolicyError, PolicyLoadError, load_policy
from agents.policy.artifact import ARTIFACT_FORMAT, ENSEMBLE_FORMAT
from agents.policy.export import ExportedPolicy
from hpenv.errors import InputError
from hpenv.io import safe_torch_load
from hpenv.observation import OBS_HIGH, OBS_LOW
from scripts import load_script


def members(n: int = 3, **kwargs) -> list[FrozenPolicy]:
    return [make_policy(seed=seed, **kwargs) for seed in range(n)]


def observations(count: int = 16) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(OBS_LOW, OBS_HIGH, size=(count, OBS_LOW.shape[0])).astype(np.float32)


def test_the_ensemble_acts_by_the_mean_of_its_members():
    parts = members(3)
    ensemble = FrozenPolicy.ensemble(parts)
    obs = observations()
    each = np.stack([p.predict(obs)[0] for p in parts])
    assert not np.allclose(each[0], each[1])  # the members differ, so the mean is a test
    np.testing.assert_allclose(ensemble.predict(obs)[0], each.mean(axis=0), rtol=1e-6)
    assert ensemble.size == 3
    assert parts[0].size == 1
    assert ensemble.metadata.ensemble["size"] == 3
    assert ensemble.metadata.agent_steps == sum(p.metadata.agent_steps for p in parts)
    assert ensemble.fingerprint() != parts[0].fingerprint()
    assert FrozenPolicy.ensemble(parts[::-1]).fingerprint() != ensemble.fingerprint()


def test_a_median_ensemble_acts_by_the_median_and_keeps_it_through_its_file(tmp_path: Path):
    parts = members(3)
    obs = observations()
    each = np.stack([p.predict(obs)[0] for p in parts])
    median = FrozenPolicy.ensemble(parts, reduce="median")
    assert median.reduce == "median"
    assert FrozenPolicy.ensemble(parts).reduce == "mean"
    assert not np.allclose(np.median(each, axis=0), each.mean(axis=0))  # so the test can fail
    np.testing.assert_allclose(median.predict(obs)[0], np.median(each, axis=0), rtol=1e-6)
    assert median.fingerprint() != FrozenPolicy.ensemble(parts).fingerprint()
    sources = [str(tmp_path / f"s{i}.pt") for i in range(3)]
    for policy, source in zip(parts, sources, strict=True):
        policy.save(source)
    out = tmp_path / "median.pt"
    script = load_script("ensemble_policy")
    argv = ["--policies", ",".join(sources), "--out", str(out), "--reduce", "median"]
    assert script.main(argv) == 0
    loaded = load_policy(out)
    assert loaded.metadata.ensemble["reduce"] == "median"
    assert loaded.fingerprint() == median.fingerprint()
    np.testing.assert_array_equal(loaded.predict(obs)[0], median.predict(obs)[0])
    with pytest.raises(InputError, match="reduce must be one of"):
        FrozenPolicy.ensemble(parts, reduce="max")  # type: ignore[arg-type]
    blob = safe_torch_load(out, "test")
    blob["metadata"]["ensemble"]["reduce"] = "trimmed"  # a newer hpenv's combination
    torch.save(blob, tmp_path / "newer.pt")
    with pytest.raises(IncompatiblePolicyError, match="'trimmed'; this hpenv knows mean, median"):
        load_policy(tmp_path / "newer.pt")


def test_an_ensemble_file_round_trips_as_format_2(tmp_path: Path):
    sources = [str(tmp_path / f"s{i}.pt") for i in range(3)]
    for policy, source in zip(members(3), sources, strict=True):
        policy.save(source)
    script = load_script("ensemble_policy")
    out = tmp_path / "ensemble.pt"
    assert script.main(["--policies", ",".join(sources), "--out", str(out)]) == 0
    loaded = load_policy(out)
    originals = [load_policy(s) for s in sources]
    assert safe_torch_load(out, "test")["format"] == ENSEMBLE_FORMAT
    assert safe_torch_load(sources[0], "test")["format"] == ARTIFACT_FORMAT
    assert [m["source"] for m in loaded.metadata.ensemble["members"]] == sources
    assert loaded.fingerprint() == FrozenPolicy.ensemble(originals).fingerprint()
    obs = observations()
    np.testing.assert_array_equal(
        loaded.predict(obs)[0], FrozenPolicy.ensemble(originals).predict(obs)[0]
    )


def test_damaged_ensemble_files_are_refused(tmp_path: Path):
    path = FrozenPolicy.ensemble(members(2)).save(tmp_path / "e.pt")
    blob = safe_torch_load(path, "test")
    blob["members"] = []
    torch.save(blob, tmp_path / "short.pt")
    with pytest.raises(PolicyLoadError, match="further members"):
        load_policy(tmp_path / "short.pt")
    blob = safe_torch_load(path, "test")
    blob["format"] = ARTIFACT_FORMAT  # an ensemble's metadata in a single policy's format
    torch.save(blob, tmp_path / "format.pt")
    with pytest.raises(PolicyLoadError, match="damaged"):
        load_policy(tmp_path / "format.pt")
    blob = safe_torch_load(path, "test")
    blob["format"] = 3
    torch.save(blob, tmp_path / "future.pt")
    with pytest.raises(IncompatiblePolicyError, match="reads formats 1, 2"):
        load_policy(tmp_path / "future.pt")


def test_members_of_different_recipes_are_refused(tmp_path: Path):
    with pytest.raises(InputError, match="at least two"):
        FrozenPolicy.ensemble(members(1))
    with pytest.raises(InputError, match="differs from member 0 in tuned"):
        FrozenPolicy.ensemble([make_policy(("lr",)), make_policy(("lr", "momentum"))])
    with pytest.raises(InputError, match="in decisions"):
        FrozenPolicy.ensemble([make_policy(decisions=4), make_policy(decisions=5)])
    with pytest.raises(InputError, match="in rise_guard"):
        FrozenPolicy.ensemble([make_policy(rise_guard=True), make_policy(seed=1)])
    guarded = FrozenPolicy.ensemble(
        [make_policy(rise_guard=True), make_policy(seed=1, rise_guard=True)]
    )
    assert guarded.metadata.rise_guard  # deployed with the guard its members were trained with
    v2 = {"obs_version": 2}
    with pytest.raises(InputError, match="in base"):
        FrozenPolicy.ensemble(
            [make_policy(**v2, base={"steer_range": 10.0}), make_policy(**v2, base={})]
        )
    # A newer hpenv writes defaults out, an older one left them implicit: the same policy.
    written = make_policy(**v2, base={"rule": "min/30", "steer_range": 1000.0}, reward="paired")
    FrozenPolicy.ensemble([written, make_policy(seed=1, **v2, base={})])
    with pytest.raises(InputError, match="ensemble already"):
        FrozenPolicy.ensemble([FrozenPolicy.ensemble(members(2)), make_policy()])
    script = load_script("ensemble_policy")
    make_policy(("lr",)).save(tmp_path / "a.pt")
    make_policy(("lr", "momentum")).save(tmp_path / "b.pt")
    with pytest.raises(SystemExit) as stop:
        script.main(["--policies", f"{tmp_path}/a.pt,{tmp_path}/b.pt", "--out", f"{tmp_path}/e.pt"])
    assert stop.value.code == 2
    assert not (tmp_path / "e.pt").exists()
    for argv in (["--policies", f"{tmp_path}/a.pt"], ["--policies", f"{tmp_path}/a.pt,x.pt"]):
        with pytest.raises(SystemExit) as stop:
            script.main([*argv, "--out", f"{tmp_path}/e.pt"])
        assert stop.value.code == 2


def test_export_and_adaptation_take_one_network():
    ensemble = FrozenPolicy.ensemble(members(2))
    with pytest.raises(IncompatiblePolicyError, match="export takes one policy network"):
        ExportedPolicy(ensemble)
    with pytest.raises(IncompatiblePolicyError, match="adaptation takes one policy network"):
        ensemble.single("adaptation")


def test_an_ensemble_drives_a_plain_loop_like_the_mean_of_its_members():
    """In `HyperController` the ensemble's first decision is the mean of its members' actions
    on the same observation: its rate differs from every member's alone."""
    parts = members(3, tuned=("lr", "momentum", "weight_decay"))
    rates = []
    for policy in [*parts, FrozenPolicy.ensemble(parts)]:
        model, optimizer, train, val = plain_setup()
        controller = HyperController(policy, optimizer, total_steps=30, decisions=3,
                                     batch_size=8, evaluate=evaluator(model, val))  # fmt: skip
        train_plain(controller, optimizer, model, train, 12)
        rates.append(controller.history[1]["lr"])
        controller.detach()
    assert len(set(rates)) == 4
    assert min(rates[:3]) < rates[3] < max(rates[:3])


def test_a_policy_deployed_with_the_rise_guard_keeps_it_through_its_file(tmp_path: Path):
    """`with_rise_guard` chooses the guard for deployment whatever the training had: saved,
    loaded, fingerprinted apart, followed by `PolicyStep`; ``ensemble_policy.py --rise-guard``."""
    from agents.policy.step import PolicyStep

    single = make_policy()
    guarded = single.with_rise_guard(True)
    assert not single.metadata.rise_guard
    assert guarded.metadata.rise_guard
    assert guarded.fingerprint() != single.fingerprint()
    assert guarded.with_rise_guard(False).fingerprint() == single.fingerprint()
    loaded = load_policy(guarded.save(tmp_path / "g.pt"))
    assert loaded.metadata.rise_guard
    assert loaded.fingerprint() == guarded.fingerprint()
    assert PolicyStep(loaded).guard is not None
    assert PolicyStep(single).guard is None
    trained_with = make_policy(rise_guard=True)
    assert not trained_with.with_rise_guard(False).metadata.rise_guard

    paths = [str(p.save(tmp_path / f"m{i}.pt")) for i, p in enumerate(members(2))]
    script = load_script("ensemble_policy")
    out = tmp_path / "e.pt"
    assert (
        script.main(["--policies", ",".join(paths), "--out", str(out), "--rise-guard", "on"]) == 0
    )
    ensemble = load_policy(out)
    assert (ensemble.size, ensemble.metadata.rise_guard) == (2, True)
    plain = FrozenPolicy.ensemble([load_policy(p) for p in paths], sources=paths)
    assert ensemble.fingerprint() != plain.fingerprint()
    assert PolicyStep(ensemble).guard is not None


def test_a_policy_deployed_with_a_probe_start_keeps_it_through_its_file(tmp_path: Path):
    """`with_probe_start`: saved, loaded, fingerprinted apart (none: as before), gives the
    layout-1 policy a probe (`probe_config`); refused for layout 2; ensemble members must
    agree; ``ensemble_policy.py --probe-start``."""
    from hpenv.base import ProbeStart

    single = make_policy()
    started = single.with_probe_start(ProbeStart(within=10.0))
    assert single.metadata.probe_start is None
    assert single.metadata.probe_config() is None
    assert started.metadata.probe_start == ProbeStart(within=10.0)
    assert started.metadata.probe_config() is not None
    assert started.fingerprint() != single.fingerprint()
    assert started.fingerprint() != single.with_probe_start(True).fingerprint()
    assert started.with_probe_start(False).fingerprint() == single.fingerprint()
    assert started.with_probe_start(None) is started
    loaded = load_policy(started.save(tmp_path / "s.pt"))
    assert loaded.metadata.probe_start == ProbeStart(within=10.0)
    assert loaded.fingerprint() == started.fingerprint()
    with pytest.raises(InputError, match="layout 2"):
        make_policy(obs_version=2).with_probe_start(True)
    back = started.with_probe_rollback("start")  # the probe's rollback, for deployment
    assert back.metadata.probe_config().rollback == "start"
    assert started.metadata.probe_config().rollback == "best"
    assert back.fingerprint() != started.fingerprint()
    assert load_policy(back.save(tmp_path / "b.pt")).fingerprint() == back.fingerprint()
    assert single.with_probe_rollback("start") is single  # no probe: nothing to roll back
    for bad in ({"probe_start": {"rule": "min/7", "within": 1.0}}, {"probe_start": [1]},
                {"probe": {"bogus": 1}}):  # fmt: skip
        path = started._deployed(**bad).save(tmp_path / "damaged.pt")
        with pytest.raises(PolicyLoadError, match="unreadable probe, restart or fall-hold"):
            load_policy(path)
    with pytest.raises(InputError, match="in probe"):
        FrozenPolicy.ensemble([started, make_policy(seed=1)])

    paths = [str(p.save(tmp_path / f"m{i}.pt")) for i, p in enumerate(members(2))]
    script = load_script("ensemble_policy")
    out = tmp_path / "e.pt"
    argv = ["--policies", ",".join(paths), "--out", str(out)]
    assert script.main([*argv, "--probe-start", "min/10:3"]) == 0
    assert load_policy(out).metadata.probe_start == ProbeStart(rule="min/10", within=3.0)
    with pytest.raises(SystemExit):  # refused with its message before anything loads
        script.main([*argv, "--probe-start", "min/7"])
