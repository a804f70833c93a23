"""Framework integrations: the HF Trainer and Lightning callbacks on tiny random models."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from policies import make_policy, raising_with_rollback

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*LeafSpec"),  # lightning's pytree use, torch 2.14
    pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no"),
]

DECISIONS, STEPS = 4, 30  # intervals of 6 steps: decisions after steps 6, 12, 18, 24


def lr_in_force(history: list[dict[str, Any]], step: int) -> float:
    """The controller's learning rate after ``step`` optimizer steps."""
    return [h["lr"] for h in history if h["step"] <= step][-1]


def check_decisions(history: list[dict[str, Any]], lrs: dict[int, float], initial: float) -> None:
    """``lrs``: step -> the optimizer's rate after that step (scheduler included)."""
    assert [h["step"] for h in history] == [0, 6, 12, 18, 24]
    assert history[0]["lr"] == pytest.approx(initial)
    assert len({round(math.log10(h["lr"]), 6) for h in history}) > 2  # the policy moved it
    assert sorted(lrs) == list(range(1, STEPS + 1))
    for step, lr in lrs.items():
        assert lr == pytest.approx(lr_in_force(history, step), rel=1e-9), step


def interval_means(values: list[float], interval: int = 6) -> list[float]:
    return [float(np.mean(values[i : i + interval])) for i in range(0, DECISIONS * interval, 6)]


# ---------------------------------------------------------------------- Hugging Face


def hf_setup(tmp_path: Path, num_samples: int = 64, **overrides: Any):
    transformers = pytest.importorskip("transformers")
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("accelerate")
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, num_labels=2, max_position_embeddings=16,
    )  # fmt: skip
    model = transformers.BertForSequenceClassification(config)
    rng = np.random.default_rng(0)

    def dataset(n: int):
        ids = rng.integers(1, 50, size=(n, 8))
        return datasets.Dataset.from_dict(
            {"input_ids": ids.tolist(), "labels": (ids[:, 0] >= 25).astype(int).tolist()}
        )

    settings: dict[str, Any] = dict(
        output_dir=str(tmp_path / "out"), max_steps=STEPS, per_device_train_batch_size=4,
        learning_rate=2e-3, report_to=[], use_cpu=True, lr_scheduler_type="constant",
        save_strategy="no", logging_strategy="no", disable_tqdm=True, seed=0,
    )  # fmt: skip
    settings.update(overrides)
    args = transformers.TrainingArguments(**settings)
    return transformers, model, args, dataset(num_samples), dataset(24)


def hf_lr_recorder(transformers: Any, lrs: dict[int, float]) -> Any:
    class Recorder(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, optimizer=None, **kwargs):
            lrs[state.global_step] = optimizer.param_groups[0]["lr"]

    return Recorder()


def test_hf_trainer_follows_the_controller(tmp_path: Path):
    from agents.deploy.integrations.hf import HyperControllerCallback

    transformers, model, args, train, val = hf_setup(tmp_path)
    model.eval()
    with torch.no_grad():  # the untrained model's metrics, computed independently
        batch = {k: torch.tensor(val[k]) for k in ("input_ids", "labels")}
        out = model(**batch)
        accuracy = (out.logits.argmax(-1) == batch["labels"]).float().mean()
        initial = (float(out.loss), float(accuracy))
    model.train()
    callback = HyperControllerCallback(
        make_policy(decisions=DECISIONS), eval_dataset=val, eval_batch_size=10,
        log_dir=tmp_path / "tb",
    )  # fmt: skip
    lrs: dict[int, float] = {}
    callbacks = [callback, hf_lr_recorder(transformers, lrs)]
    trainer = transformers.Trainer(model=model, args=args, train_dataset=train, callbacks=callbacks)
    trainer.train()

    assert callback.controller is not None
    history = callback.controller.history
    check_decisions(history, lrs, initial=2e-3)
    assert (history[0]["val_loss"], history[0]["val_accuracy"]) == pytest.approx(initial, rel=1e-5)
    assert callback.controller.hparams.batch_size == 4
    assert callback.controller.hparams.dropout == pytest.approx(0.1)  # BERT's default rate
    assert list((tmp_path / "tb").glob("events.out.tfevents*"))
    assert not callback.controller._hooks  # detached at the end of training


def test_hf_loss_matches_the_trainer_with_accumulation(tmp_path: Path):
    """One loss per optimizer step, equal to the Trainer's own logged loss; a linear
    decay is re-anchored at each decision and keeps its shape in between."""
    from agents.deploy.integrations.hf import HyperControllerCallback

    transformers, model, args, train, _ = hf_setup(
        tmp_path, num_samples=256, gradient_accumulation_steps=2, lr_scheduler_type="linear",
        logging_strategy="steps", logging_steps=1,
    )  # fmt: skip
    metrics = {"val_loss": 0.7, "val_accuracy": 0.5}
    callback = HyperControllerCallback(
        make_policy(decisions=DECISIONS), evaluate=lambda: metrics, dropout=0.0
    )
    lrs: dict[int, float] = {}
    callbacks = [callback, hf_lr_recorder(transformers, lrs)]
    trainer = transformers.Trainer(model=model, args=args, train_dataset=train, callbacks=callbacks)
    trainer.train()

    assert callback.controller is not None
    history = callback.controller.history
    assert callback.controller.hparams.batch_size == 8
    logged = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == STEPS
    reported = [h["train_loss"] for h in history[1:]]
    assert reported == pytest.approx(interval_means(logged), rel=1e-5)
    for step, lr in lrs.items():  # linear decay to 0 at STEPS, re-anchored at each decision
        last = max(h["step"] for h in history if h["step"] <= step)
        expected = lr_in_force(history, step) * (STEPS - step) / (STEPS - last)
        assert lr == pytest.approx(expected, rel=1e-9, abs=1e-15), step


def test_hf_refusals(tmp_path: Path):
    from agents.deploy.integrations.hf import HyperControllerCallback

    policy = make_policy(decisions=DECISIONS)
    with pytest.raises(ValueError, match="exactly one"):
        HyperControllerCallback(policy)
    transformers, model, args, train, _ = hf_setup(
        tmp_path, lr_scheduler_type="linear", warmup_steps=5
    )
    callback = HyperControllerCallback(policy, evaluate=lambda: (0.7, 0.5))
    trainer = transformers.Trainer(model, args, train_dataset=train, callbacks=[callback])
    with pytest.raises(ValueError, match="warm-up"):
        trainer.train()


@pytest.mark.parametrize("framework", ["hf", "lightning"])
def test_batch_size_policies_are_refused_when_the_callback_is_built(framework: str):
    """The framework owns the data loader: a batch-size policy is refused at once, saying so."""
    pytest.importorskip("transformers" if framework == "hf" else "lightning.pytorch")
    from agents.policy import IncompatiblePolicyError

    if framework == "hf":
        from agents.deploy.integrations.hf import HyperControllerCallback as Callback
    else:
        from agents.deploy.integrations.lightning import HyperControllerCallback as Callback
    policy = make_policy(("lr", "batch_size"), decisions=DECISIONS)
    with pytest.raises(IncompatiblePolicyError, match=r"batch_size.*run_policy\.py.*HF Trainer"):
        Callback(policy, evaluate=lambda: (0.7, 0.5))


# ------------------------------------------------------------------------- Lightning


def lightning_setup(
    accumulate: int = 1, scheduler: str | None = None, steps: int = STEPS, lr: float = 0.05
):
    pl = pytest.importorskip("lightning.pytorch")
    from torch.utils.data import DataLoader, TensorDataset

    class Classifier(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(12, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                torch.nn.Linear(16, 3),
            )  # fmt: skip
            self.losses: list[float] = []

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = torch.nn.functional.cross_entropy(self(x), y)
            self.losses.append(float(loss.detach()))
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.cross_entropy(self(x), y))

        def configure_optimizers(self) -> Any:
            optimizer = torch.optim.SGD(self.parameters(), lr=lr, momentum=0.9)
            if scheduler is None:
                return optimizer
            lam = (lambda _: 1.0) if scheduler == "constant" else (lambda s: 0.97**s)
            sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lam)
            config = {"scheduler": sched, "interval": "step"}
            return {"optimizer": optimizer, "lr_scheduler": config}

    torch.manual_seed(0)
    x, w = torch.randn(400, 12), torch.randn(12, 3)
    y = (x @ w).argmax(1)
    train = DataLoader(TensorDataset(x[:320], y[:320]), batch_size=8, shuffle=True)
    val = DataLoader(TensorDataset(x[320:], y[320:]), batch_size=40)
    module = Classifier()
    trainer_kwargs: dict[str, Any] = dict(
        max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        accumulate_grad_batches=accumulate,
    )  # fmt: skip
    return pl, module, train, val, trainer_kwargs


def lightning_lr_recorder(pl: Any, lrs: dict[int, float]) -> Any:
    class Recorder(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            lrs[trainer.global_step] = trainer.optimizers[0].param_groups[0]["lr"]

    return Recorder()


@pytest.mark.parametrize("scheduler", [None, "constant"])
def test_lightning_trainer_follows_the_controller(scheduler: str | None):
    from agents.deploy.integrations.lightning import HyperControllerCallback

    pl, module, train, val, kwargs = lightning_setup(scheduler=scheduler)
    module.eval()
    with torch.no_grad():
        x, y = val.dataset.tensors
        logits = module(x)
        initial = (float(torch.nn.functional.cross_entropy(logits, y)),
                   float((logits.argmax(1) == y).float().mean()))  # fmt: skip
    module.train()
    callback = HyperControllerCallback(make_policy(decisions=DECISIONS))  # default evaluation
    lrs: dict[int, float] = {}
    trainer = pl.Trainer(callbacks=[callback, lightning_lr_recorder(pl, lrs)], **kwargs)
    trainer.fit(module, train, val)

    assert callback.controller is not None
    history = callback.controller.history
    check_decisions(history, lrs, initial=0.05)
    assert (history[0]["val_loss"], history[0]["val_accuracy"]) == pytest.approx(initial, rel=1e-5)
    assert callback.controller.hparams.batch_size == 8
    assert callback.controller.hparams.dropout == pytest.approx(0.2)
    reported = [h["train_loss"] for h in history[1:]]
    assert reported == pytest.approx(interval_means(module.losses), rel=1e-5)


def test_lightning_accumulation_and_decaying_schedule():
    from agents.deploy.integrations.lightning import HyperControllerCallback

    pl, module, train, _, kwargs = lightning_setup(accumulate=2, scheduler="decay")
    calls: list[int] = []

    def evaluate() -> tuple[float, float]:
        calls.append(1)
        return 0.9, 0.5

    callback = HyperControllerCallback(make_policy(decisions=DECISIONS), evaluate=evaluate)
    lrs: dict[int, float] = {}
    trainer = pl.Trainer(callbacks=[callback, lightning_lr_recorder(pl, lrs)], limit_val_batches=0,
                         **kwargs)  # fmt: skip
    trainer.fit(module, train)

    assert callback.controller is not None
    history = callback.controller.history
    assert len(calls) == len(history) == DECISIONS + 1
    assert callback.controller.hparams.batch_size == 16
    per_step = [float(np.mean(module.losses[i : i + 2])) for i in range(0, 2 * STEPS, 2)]
    assert [h["train_loss"] for h in history[1:]] == pytest.approx(interval_means(per_step))
    # lrs is recorded after every micro-batch; keep the values after each optimizer step
    for step in range(1, STEPS + 1):
        last = max(h["step"] for h in history if h["step"] <= step)
        expected = lr_in_force(history, step) * 0.97 ** (step - last)
        assert lrs[step] == pytest.approx(expected, rel=1e-9), step


def test_lightning_grad_norm_is_this_steps():
    """Lightning steps with a closure: gradient norms are read after it has run."""
    from agents.deploy.integrations.lightning import HyperControllerCallback

    pl, module, train, _, kwargs = lightning_setup(steps=12)
    norms: list[float] = []

    class Reference(pl.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
            norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

    callback = HyperControllerCallback(make_policy(decisions=2), evaluate=lambda: (0.9, 0.5))
    trainer = pl.Trainer(callbacks=[callback, Reference()], limit_val_batches=0, **kwargs)
    trainer.fit(module, train)
    assert callback.controller is not None
    history = callback.controller.history
    # intervals of 4 steps: the norm is sampled on each interval's first and last step
    expected = [np.mean([norms[0], norms[3]]), np.mean([norms[4], norms[7]])]
    assert [h["grad_norm"] for h in history[1:]] == pytest.approx(expected, rel=1e-6)


# ------------------------------- the probe (layout 2, or layout 1 with a probe start)


def check_probe_then_decisions(controller: Any, lrs: dict[int, float], start_lr: float) -> None:
    """A 4-step probe, then the rate the run starts at (the base's, or a layout-1 policy's
    probe start from the loop's ``start_lr``) and the policy's decisions over 26 steps."""
    assert controller.probe_result is not None
    assert controller.probe_steps == 4
    history = controller.history
    assert [h["step"] for h in history] == [4, 10, 16, 22, 28]
    if controller.probe_start is not None:
        start = controller.probe_start.lr(controller.probe_result, start_lr)
    else:
        assert controller.base is not None
        start = controller.base.lr(4 / STEPS)
    assert history[0]["lr"] == pytest.approx(start)
    for step, lr in lrs.items():
        if step >= 4:  # from the probe's end the optimizer runs at the controller's rates
            assert lr == pytest.approx(lr_in_force(history, step), rel=1e-9), step


def probing_policy(layout: int) -> Any:
    """A layout-2 policy, or a layout-1 policy with a probe start: both probe first."""
    if layout == 2:
        return make_policy(decisions=DECISIONS, obs_version=2)
    return make_policy(decisions=DECISIONS).with_probe_start(True)


@pytest.mark.parametrize("layout", [1, 2])
def test_hf_trainer_probes_first(tmp_path: Path, layout: int):
    from agents.deploy.integrations.hf import HyperControllerCallback
    from hpenv.probe import ProbeConfig

    transformers, model, args, train, val = hf_setup(tmp_path)
    callback = HyperControllerCallback(
        probing_policy(layout), eval_dataset=val, eval_batch_size=10,
        probe=ProbeConfig(min_steps=4, max_steps=4),
    )  # fmt: skip
    lrs: dict[int, float] = {}
    callbacks = [callback, hf_lr_recorder(transformers, lrs)]
    transformers.Trainer(model=model, args=args, train_dataset=train, callbacks=callbacks).train()
    assert callback.controller is not None
    check_probe_then_decisions(callback.controller, lrs, args.learning_rate)


@pytest.mark.parametrize("layout", [1, 2])
def test_lightning_probes_first(layout: int):
    from agents.deploy.integrations.lightning import HyperControllerCallback
    from hpenv.probe import ProbeConfig

    pl, module, train, val, kwargs = lightning_setup(scheduler="constant")
    callback = HyperControllerCallback(
        probing_policy(layout), probe=ProbeConfig(min_steps=4, max_steps=4)
    )
    lrs: dict[int, float] = {}
    trainer = pl.Trainer(callbacks=[callback, lightning_lr_recorder(pl, lrs)], **kwargs)
    trainer.fit(module, train, val)
    assert callback.controller is not None
    check_probe_then_decisions(callback.controller, lrs, 0.05)


# ------------------------------------------- the restart (a first interval that blew up)


def check_restart(controller: Any, lrs: dict[int, float], start_lr: float) -> None:
    """The first interval (6 steps) at a rate far too high blew up: the run went back to
    its start at the rate / 10, which the optimizer then trains with (the framework's
    scheduler re-anchored on it), and the policy decided from there."""
    assert controller.restarts is not None
    assert controller.restarts.count >= 1
    start, restart = controller.history[:2]
    assert start["lr"] == pytest.approx(start_lr)
    assert (restart["step"], restart["restarts"]) == (6, 1.0)
    assert restart["lr"] == pytest.approx(start_lr / 10)
    assert lrs[7] == pytest.approx(start_lr / 10, rel=1e-9)  # the step after the restart


def hf_train_warned(
    tmp_path: Path, policy: Any, learning_rate: float, warning: str
) -> tuple[Any, dict[int, float]]:
    """The HF Trainer driven by ``policy`` from ``learning_rate``, warning ``warning``: its
    controller and the rate of every step."""
    from agents.deploy.integrations.hf import HyperControllerCallback

    transformers, model, args, train, val = hf_setup(tmp_path, learning_rate=learning_rate)
    callback = HyperControllerCallback(policy, eval_dataset=val, eval_batch_size=10)
    lrs: dict[int, float] = {}
    callbacks = [callback, hf_lr_recorder(transformers, lrs)]
    with pytest.warns(RuntimeWarning, match=warning):
        transformers.Trainer(
            model=model, args=args, train_dataset=train, callbacks=callbacks
        ).train()
    assert callback.controller is not None
    return callback.controller, lrs


def lightning_fit_warned(policy: Any, lr: float, warning: str) -> tuple[Any, dict[int, float]]:
    """Lightning driven by ``policy`` from ``lr``, warning ``warning``: its controller and the
    rate of every step."""
    from agents.deploy.integrations.lightning import HyperControllerCallback

    pl, module, train, val, kwargs = lightning_setup(scheduler="constant", lr=lr)
    callback = HyperControllerCallback(policy)
    lrs: dict[int, float] = {}
    trainer = pl.Trainer(callbacks=[callback, lightning_lr_recorder(pl, lrs)], **kwargs)
    with pytest.warns(RuntimeWarning, match=warning):
        trainer.fit(module, train, val)
    assert callback.controller is not None
    return callback.controller, lrs


def test_hf_trainer_restarts_a_blown_first_interval(tmp_path: Path):
    policy = make_policy(decisions=DECISIONS).with_restart(True)
    controller, lrs = hf_train_warned(tmp_path, policy, 1.0, "blew up")
    check_restart(controller, lrs, 1.0)


def test_lightning_restarts_a_blown_first_interval():
    policy = make_policy(decisions=DECISIONS).with_restart(True)
    controller, lrs = lightning_fit_warned(policy, 1.0, "blew up")
    check_restart(controller, lrs, 1.0)


# ------------------------------------------- the rollback (a later interval that blew up)
# `raising_with_rollback` raises the rate x3 at every decision, deployed with
# the rollback (as the default hpenv-lr-v2.1 is, with the collapse rule too).
def check_rollback(controller: Any, lrs: dict[int, float], step: int, lr: float) -> None:
    """The interval before ``step`` blew up: the run went back to its best state at a
    tenth of the best interval's rate, which the optimizer trains with from the next step
    (the framework's scheduler re-anchored on it)."""
    assert controller.restarts is not None
    assert (controller.restarts.count, controller.restarts.rollbacks) == (0, 1)
    (rolled,) = [h for h in controller.history if h.get("rollbacks")]
    assert rolled["step"] == step
    assert rolled["lr"] == pytest.approx(lr)
    assert lrs[step + 1] == pytest.approx(lr, rel=1e-9)


def test_hf_trainer_rolls_back_a_later_blow_up(tmp_path: Path):
    # 0.003 raised x3 per decision: the best state after 18 steps (trained at 0.027), the
    # interval at 0.081 blows the validation loss up (0.69 untrained -> 0.91)
    controller, lrs = hf_train_warned(
        tmp_path, raising_with_rollback(DECISIONS), 0.003, "best state"
    )
    check_rollback(controller, lrs, 24, 0.0027)


def test_lightning_rolls_back_a_later_blow_up():
    # 0.1 raised x3 per decision: the best state after 12 steps (trained at 0.3), the
    # interval at 0.9 blows the validation loss up (1.15 untrained -> 6.6); back at 0.03
    # the next interval reaches a loss below that best (0.39 against 0.46)
    controller, lrs = lightning_fit_warned(raising_with_rollback(DECISIONS), 0.1, "best state")
    check_rollback(controller, lrs, 18, 0.03)
    best, blown, after = (h["val_loss"] for h in controller.history[2:5])
    assert blown > 1.1 * controller.history[0]["val_loss"]
    assert after < best
