"""Policies by file, folder (hub layout), shipped name and Hub repo id; sharing them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from policies import make_policy

from agents.deploy.controller import HyperController
from agents.policy import DEFAULT_POLICY, PolicyNotFoundError, hub, load_pretrained, save_pretrained
from agents.policy.pretrained import v21_from_v2
from hpenv.observation import OBS_SIZE


def same_actions(a, b) -> None:
    obs = np.random.default_rng(0).uniform(-1, 1, size=(8, OBS_SIZE)).astype(np.float32)
    np.testing.assert_array_equal(a.predict(obs)[0], b.predict(obs)[0])


def test_a_folder_in_the_hub_layout_loads(tmp_path: Path):
    policy = make_policy()
    folder = save_pretrained(policy, tmp_path / "mine", command="make train", results="| x |")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "hpenv.json", "policy.pt"]
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: hpenv")
    assert "make train" in card
    assert "| x |" in card
    assert hub.read_card_metadata(folder)["tuned"] == ["lr"]
    same_actions(load_pretrained(folder), policy)
    same_actions(load_pretrained(folder / "policy.pt"), policy)


def test_shipped_names_and_the_default():
    assert hub.DEFAULT_POLICY_NAME == "hpenv-lr-v2.1"
    assert {"hpenv-lr-v2", "hpenv-lr-v2.1"} <= set(hub.shipped_policies())
    assert hub.resolve_policy_file(None) == DEFAULT_POLICY
    assert hub.resolve_policy_file("hpenv-lr-v2.1") == DEFAULT_POLICY
    assert hub.resolve_policy_file("hpenv-lr-v2.1.pt") == DEFAULT_POLICY
    assert hub.resolve_policy_file("hpenv-lr-v2") == DEFAULT_POLICY.with_name("hpenv-lr-v2.pt")
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    controller = HyperController.from_pretrained(None, optimizer, total_steps=50, batch_size=8)
    assert controller.policy.metadata.tuned == ("lr",)


def test_a_repo_id_is_downloaded_through_huggingface_hub(tmp_path, monkeypatch):
    folder = save_pretrained(make_policy(), tmp_path / "repo")
    calls: list[dict[str, Any]] = []

    def download(repo_id: str, filename: str, **kwargs: Any) -> str:
        calls.append({"repo_id": repo_id, "filename": filename, **kwargs})
        return str(folder / filename)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # cached copies still load offline
    policy = load_pretrained("someone/policy@v1")
    assert policy.metadata.tuned == ("lr",)
    assert calls[0]["repo_id"] == "someone/policy"
    assert calls[0]["filename"] == "policy.pt"
    assert calls[0]["revision"] == "v1"
    assert calls[0]["local_files_only"] is True


def test_offline_a_repo_id_fails_fast_and_says_what_it_tried(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    start = time.perf_counter()
    with pytest.raises(PolicyNotFoundError) as info:
        load_pretrained("someone/not-cached")
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert "a shipped policy (known: hpenv-lr-v2" in message
    assert "Hugging Face Hub repo 'someone/not-cached'" in message
    assert "not in the local cache, and HPENV_NO_HUB is set" in message  # conftest sets it


def test_the_default_is_v2_deployed_with_its_nets():
    """hpenv-lr-v2.1 is hpenv-lr-v2's weights with the rise guard, the collapse restart and
    the fall hold, nothing else (rebuilt by the recipe its docstring gives)."""
    v2, v21 = load_pretrained("hpenv-lr-v2"), load_pretrained(None)
    assert v2.metadata.deploy == {}  # v2 stays as meta-trained
    assert v21.metadata.rise_guard
    assert v21.metadata.fall_hold == 0.01
    restart = v21.metadata.restart
    assert restart is not None
    assert (restart.train_loss, restart.rollback, restart.collapse) == (True, True, True)
    assert v21.fingerprint() == v21_from_v2(v2).fingerprint() != v2.fingerprint()
    weights = zip(v21.policy.state_dict().values(), v2.policy.state_dict().values(), strict=True)
    for mine, theirs in weights:
        assert torch.equal(mine, theirs)
    same_actions(v21, v2)


def test_an_unknown_name_lists_the_shipped_ones():
    with pytest.raises(PolicyNotFoundError, match="known: hpenv-lr-v2"):
        load_pretrained("no-such-policy")


def test_push_to_hub_uploads_the_hub_layout(monkeypatch):
    uploaded: dict[str, Any] = {}

    class FakeApi:
        def __init__(self, token: str | None = None) -> None:
            uploaded["token"] = token

        def create_repo(self, repo_id: str, private: bool, exist_ok: bool) -> None:
            uploaded["repo"] = repo_id

        def upload_folder(self, repo_id: str, folder_path: str) -> str:
            uploaded["files"] = sorted(p.name for p in Path(folder_path).iterdir())
            return "commit"

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    assert hub.push_to_hub(make_policy(), "me/policy", token="t") == "commit"
    assert uploaded == {
        "token": "t",
        "repo": "me/policy",
        "files": ["README.md", "hpenv.json", "policy.pt"],
    }
