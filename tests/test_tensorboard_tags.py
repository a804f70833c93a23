"""Every TensorBoard tag of meta-training and the controller is documented (docs/tensorboard.md)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import torch
from policies import make_policy
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from agents.deploy.controller import HyperController

DOC = Path(__file__).resolve().parents[1] / "docs" / "tensorboard.md"


def documented() -> list[re.Pattern[str]]:
    """The doc's tags as patterns (``<task>`` matches one path segment)."""
    tags = re.findall(r"^\| `([^`]+)`", DOC.read_text(), flags=re.M)
    patterns = []
    for tag in tags:
        parts = re.split(r"(<[^>]+>)", tag)  # <task>, <f>: one path segment each
        body = "".join("[^/]+" if p.startswith("<") else re.escape(p) for p in parts)
        patterns.append(re.compile(f"^{body}$"))
    return patterns


def undocumented(tags: set[str]) -> set[str]:
    patterns = documented()
    return {t for t in tags if not any(p.match(t) for p in patterns)}


def written(log_dir: Path) -> set[str]:
    events = EventAccumulator(str(log_dir))
    events.Reload()
    tags = set(events.Tags()["scalars"]) | set(events.Tags()["images"])
    return tags | {t.removesuffix("/text_summary") for t in events.Tags()["tensors"]}


def test_meta_training_tags_are_documented(tmp_path: Path):
    from test_meta_train import TINY

    from agents.metatrain import meta_train

    meta_train(dataclasses.replace(TINY, out_dir=str(tmp_path / "run")))
    tags = written(tmp_path / "run")
    assert "eval/mean_return" in tags
    assert "hpenv/config" in tags
    assert not undocumented(tags)


def test_controller_tags_are_documented(tmp_path: Path):
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    controller = HyperController(make_policy(), optimizer, total_steps=20, batch_size=8,
                                 evaluate=lambda: (0.7, 0.5), log_dir=tmp_path)  # fmt: skip
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    for _ in range(20):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        controller.report_loss(loss)
        optimizer.step()
    controller.detach()
    tags = written(tmp_path)
    assert "controller/lr_vs_start" in tags
    assert not undocumented(tags)
    assert undocumented({"controller/made_up"}) == {"controller/made_up"}


def test_driven_job_tags_are_documented(tmp_path: Path):
    from agents.deploy.drive import DriveConfig, drive_task

    config = DriveConfig(task="digits", out_dir=str(tmp_path / "job"), epochs=1.0, device="cpu")
    drive_task(config, make_policy(("lr", "batch_size")))
    tags = written(tmp_path / "job")
    assert {"controller/lr_vs_start", "controller/hparams/batch_size"} <= tags
    assert not undocumented(tags)
