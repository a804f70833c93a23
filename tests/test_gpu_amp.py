"""Mixed precision on a GPU: the probe waits out the steps GradScaler skips (inf gradients), in a
plain loop, the HF Trainer (fp16) and Lightning (16-mixed). Skipped without CUDA: the device
check runs them (``pytest -m gpu``), CI and the CPU test run never need a GPU."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from policies import make_policy
from test_integrations import DECISIONS, hf_setup, lightning_setup

from hpenv.probe import OptimizerProbe, ProbeConfig

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec"),
    pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no"),
]


def test_a_grad_scaler_loop_on_cuda_probes_only_the_steps_it_takes():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4)
    ).cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cuda", init_scale=2.0**40)  # overflows until it backs off
    before = {k: v.clone() for k, v in model.state_dict().items()}
    probe = OptimizerProbe(optimizer, ProbeConfig(min_steps=2, rollback="start"), 16, model=model)
    x, y = torch.randn(512, 32, device="cuda"), torch.randint(0, 4, (512,), device="cuda")
    taken = 0
    while not probe.done and taken < 200:
        batch = slice((32 * taken) % 512, (32 * taken) % 512 + 32)
        optimizer.zero_grad()
        with torch.autocast("cuda", dtype=torch.float16):
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
        scaler.scale(loss).backward()
        probe.report_loss(loss)
        scaler.step(optimizer)
        scaler.update()
        taken += 1
    assert probe.result is not None
    assert taken > 16  # the scaler skipped some steps; the sweep waited them out
    assert len(probe.result.lrs) == 16
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, before[name])


def test_hf_trainer_fp16_probes_then_steers(tmp_path: Path):
    from agents.deploy.integrations.hf import HyperControllerCallback

    transformers, model, args, train, val = hf_setup(tmp_path, use_cpu=False, fp16=True)
    callback = HyperControllerCallback(
        make_policy(decisions=DECISIONS, obs_version=2), eval_dataset=val, eval_batch_size=10,
        probe=ProbeConfig(min_steps=4, max_steps=4),
    )  # fmt: skip
    transformers.Trainer(model=model, args=args, train_dataset=train, callbacks=[callback]).train()
    controller = callback.controller
    assert controller is not None
    assert controller.probe_result is not None
    assert controller.base is not None
    assert len(controller.history) == DECISIONS + 1
    assert all(math.isfinite(float(p.float().sum())) for p in model.parameters())


def test_lightning_16_mixed_probes_then_steers():
    from agents.deploy.integrations.lightning import HyperControllerCallback

    pl, module, train, val, kwargs = lightning_setup(scheduler="constant")
    kwargs.update(accelerator="gpu", devices=1, precision="16-mixed")
    callback = HyperControllerCallback(
        make_policy(decisions=DECISIONS, obs_version=2), probe=ProbeConfig(min_steps=4, max_steps=4)
    )
    pl.Trainer(callbacks=[callback], **kwargs).fit(module, train, val)
    controller = callback.controller
    assert controller is not None
    assert controller.probe_result is not None
    assert controller.base is not None
    assert len(controller.history) == DECISIONS + 1
    assert all(math.isfinite(float(p.sum())) for p in module.parameters())
