"""TorchScript and ONNX exports: same actions as FrozenPolicy.predict, metadata, refusals."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.policy.artifact import FrozenPolicy, PolicyMetadata, _build_policy
from agents.policy.export import (
    ExportedPolicy,
    export_onnx,
    export_torchscript,
    load_onnx_metadata,
    load_torchscript,
)
from hpenv.hyperparams import TUNABLES
from hpenv.observation import OBS_HIGH, OBS_LOW, OBS_SIZE, OBS_VERSION
from scripts import load_script

CLIP_OBS = 4.0
CASES = {  # name: (tuned, action mode, frame stack)
    "continuous-1": (("lr",), "continuous", 1),
    "continuous-3-stacked": (("lr", "momentum", "weight_decay"), "continuous", 2),
    "discrete-3": (("lr", "batch_size", "dropout"), "discrete", 1),
}


def make_policy(
    tuned: tuple[str, ...],
    action_mode: str,
    frame_stack: int = 1,
    seed: int = 0,
    algorithm: str = "ppo",
) -> FrozenPolicy:
    """Random weights and random (non-trivial) normalisation statistics."""
    meta = PolicyMetadata(
        obs_version=OBS_VERSION,
        obs_size=OBS_SIZE,
        tuned=tuned,
        ranges={n: asdict(TUNABLES[n]) for n in tuned},
        action_mode=action_mode,
        algorithm=algorithm,
        policy_kwargs={"net_arch": [16, 16], "activation_fn": "Tanh"},
        frame_stack=frame_stack,
        tasks=("synthetic",),
    )
    torch.manual_seed(seed)
    policy = _build_policy(meta)
    with torch.no_grad():
        for p in policy.parameters():
            p.normal_(0.0, 0.5)
        for p in policy.action_net.parameters():  # means well beyond [-1, 1] for some obs
            p.normal_(0.0, 1.0)
    rng = np.random.default_rng(seed)
    dim = OBS_SIZE * frame_stack
    mean = rng.normal(0.0, 2.0, dim)
    var = np.exp(rng.uniform(-4.0, 3.0, dim))
    return FrozenPolicy(policy, mean, var, CLIP_OBS, 1e-8, meta)


def observations(policy: FrozenPolicy, n: int = 200, seed: int = 1) -> np.ndarray:
    """In range, far outside the observation bounds, and far outside the training stats."""
    rng = np.random.default_rng(seed)
    stack = policy.metadata.frame_stack
    low, high = np.tile(OBS_LOW, stack), np.tile(OBS_HIGH, stack)
    inside = rng.uniform(low, high, size=(n // 2, low.size))
    far = rng.uniform(low, high, size=(n // 4, low.size)) * rng.choice([-100.0, 100.0], low.size)
    std = np.sqrt(policy.obs_var)
    wide = policy.obs_mean + rng.normal(0.0, 30.0, size=(n - n // 2 - n // 4, low.size)) * std
    obs = np.concatenate([inside, far, wide]).astype(np.float32)
    normalised = policy.normalise(obs)
    assert (np.abs(normalised) == CLIP_OBS).any(), "observation clipping not exercised"
    assert (np.abs(normalised) < CLIP_OBS).any()
    return obs


def expected_actions(policy: FrozenPolicy, obs: np.ndarray, full: bool = True) -> np.ndarray:
    """``FrozenPolicy.predict``'s actions; ``full``: check the batch exercises every case."""
    actions, _ = policy.predict(obs)
    if full and policy.metadata.action_mode == "continuous":
        assert (np.abs(actions) == 1.0).any(), "action clipping not exercised"
        assert (np.abs(actions) < 0.99).any()
    elif full:
        assert len(np.unique(actions)) == 3
    return np.asarray(actions)


def assert_same(policy: FrozenPolicy, got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape == (want.shape[0], len(policy.metadata.tuned))
    if policy.metadata.action_mode == "continuous":
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
        assert got.min() >= -1.0
        assert got.max() <= 1.0
    else:
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)


def expected_metadata(policy: FrozenPolicy) -> dict:
    return json.loads(json.dumps(policy.metadata.to_dict()))


@pytest.fixture(scope="module", params=list(CASES))
def policy(request: pytest.FixtureRequest) -> FrozenPolicy:
    tuned, mode, stack = CASES[request.param]
    return make_policy(tuned, mode, stack, seed=len(request.param))


def test_module_matches_predict(policy: FrozenPolicy):
    obs = observations(policy)
    got = ExportedPolicy(policy)(torch.from_numpy(obs)).numpy()
    assert_same(policy, got, expected_actions(policy, obs))


def test_torchscript_matches_predict_and_keeps_metadata(policy: FrozenPolicy, tmp_path: Path):
    path = export_torchscript(policy, tmp_path / "policy.ts")
    module, meta = load_torchscript(path)
    obs = observations(policy)
    with torch.no_grad():
        got = module(torch.from_numpy(obs)).numpy()
    assert_same(policy, got, expected_actions(policy, obs))
    one = module(torch.from_numpy(obs[:1])).numpy()  # any batch size
    assert_same(policy, one, expected_actions(policy, obs[:1], full=False))
    assert meta["policy"] == expected_metadata(policy)
    assert meta["input"]["raw_obs_version"] == OBS_VERSION
    assert meta["input"]["shape"] == ["N", OBS_SIZE * policy.metadata.frame_stack]
    assert meta["normalisation"] == {"clip_obs": CLIP_OBS, "epsilon": 1e-8}


def test_onnx_matches_predict_and_keeps_metadata(policy: FrozenPolicy, tmp_path: Path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    path = export_onnx(policy, tmp_path / "policy.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["obs"]
    assert [o.name for o in session.get_outputs()] == ["action"]
    obs = observations(policy)
    (got,) = session.run(None, {"obs": obs})
    assert_same(policy, got, expected_actions(policy, obs))
    (one,) = session.run(None, {"obs": obs[:1]})
    assert_same(policy, one, expected_actions(policy, obs[:1], full=False))

    meta = load_onnx_metadata(path)
    assert meta["policy"] == expected_metadata(policy)
    assert meta["output"]["range"] == ([0, 2] if policy.metadata.action_mode == "discrete"
                                       else [-1.0, 1.0])  # fmt: skip
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    assert props["obs_version"] == str(OBS_VERSION)
    assert props["action_mode"] == policy.metadata.action_mode
    assert props["tuned"] == ",".join(policy.metadata.tuned)
    assert {o.domain: o.version for o in model.opset_import}[""] == 17


def test_recurrent_policy_is_refused_clearly(tmp_path: Path):
    pytest.importorskip("sb3_contrib")
    policy = make_policy(("lr",), "continuous", algorithm="recurrent_ppo")
    with pytest.raises(NotImplementedError, match=r"feed-forward \(MLP\).*recurrent"):
        export_torchscript(policy, tmp_path / "policy.ts")
    with pytest.raises(NotImplementedError, match="recurrent"):
        ExportedPolicy(policy)
    assert not (tmp_path / "policy.ts").exists()


def test_export_does_not_alias_the_policy():
    policy = make_policy(("lr",), "continuous")
    module = ExportedPolicy(policy)
    with torch.no_grad():
        module.action_net.weight.zero_()
    assert policy.policy.action_net.weight.abs().sum() > 0


def test_cli_writes_both_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    pytest.importorskip("onnxruntime")
    cli = load_script("export_policy")
    artifact = make_policy(("lr", "momentum"), "discrete").save(tmp_path / "best.pt")
    out = tmp_path / "out"
    assert cli.main(["--policy", str(artifact), "--format", "both", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / "best.ts"), str(out / "best.onnx")]
    assert all(Path(p).is_file() for p in printed)


def test_the_cli_says_deployment_settings_are_not_in_the_graph(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    cli = load_script("export_policy")
    plain = make_policy(("lr",), "continuous").save(tmp_path / "plain.pt")
    assert (
        cli.main(["--policy", str(plain), "--format", "torchscript", "--out", str(tmp_path)]) == 0
    )
    assert capsys.readouterr().err == ""
    off = make_policy(("lr",), "continuous").with_deploy_flags(
        "off", restart="off", fall_hold="off"
    )
    off_file = off.save(tmp_path / "off.pt")
    assert off.metadata.deploy  # every setting written, each off
    assert (
        cli.main(["--policy", str(off_file), "--format", "torchscript", "--out", str(tmp_path)])
        == 0
    )
    assert capsys.readouterr().err == ""  # nothing deployed: no note
    assert cli.main(["--format", "torchscript", "--out", str(tmp_path / "default")]) == 0
    err = capsys.readouterr().err  # the default, hpenv-lr-v2.1
    assert "deployed with fall_hold, restart, rise_guard" in err
    assert "not part of its graph" in err
    _, metadata = load_torchscript(tmp_path / "default" / "policy.ts")
    assert metadata["policy"]["deploy"]["restart"]["collapse"]
