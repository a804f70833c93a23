"""The probe: the sweep's logic, rolling a run back, budget accounting, population parity."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from hpenv.hyperparams import HParams
from hpenv.population import Member, Population
from hpenv.probe import (
    ProbeConfig,
    ProbeResult,
    Sweep,
    find_lr,
    probe_population,
    probe_run,
)
from hpenv.tasks import SyntheticSpec, get_task
from hpenv.training import TrainingRun

REPO = Path(__file__).resolve().parents[1]
SHORT = ProbeConfig(min_steps=4, max_steps=16, smoothing=0.0)


def test_steps_for_a_budget():
    config = ProbeConfig()
    assert config.steps_for(79) == 0  # shorter than 4 x 20 steps: no probe
    assert config.steps_for(80) == 20
    assert config.steps_for(250) == 25  # a tenth of the run
    assert config.steps_for(10_000) == 60
    assert list(config.lrs(7)) == pytest.approx([1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    with pytest.raises(ValueError, match="lr_min < lr_max"):
        ProbeConfig(lr_min=1.0, lr_max=0.1)


def test_sweep_keeps_the_best_and_stops_on_divergence():
    sweep = Sweep(ProbeConfig(smoothing=0.0, diverge_factor=4.0), steps=7)
    improved = [sweep.record(loss) for loss in (2.0, 1.5, 1.0, 1.2, 4.1)]
    assert improved == [True, True, True, False, False]
    assert sweep.done  # 4.1 > 4 x 1.0
    result = sweep.result()
    assert (result.best, result.stopped, result.kept, result.thrown_away) == (2, 4, 3, 4)
    assert result.best_lr == pytest.approx(1e-4)
    assert result.divergence_lr == pytest.approx(1e-2)
    assert result.suggestion("min/10") == pytest.approx(1e-5)
    assert result.cost(100) == pytest.approx(0.04)
    assert ProbeResult.from_dict(result.to_dict()) == result
    with pytest.raises(RuntimeError, match="over"):
        sweep.record(1.0)


def test_sweep_smooths_with_bias_correction_and_stops_on_nan():
    sweep = Sweep(ProbeConfig(smoothing=0.5), steps=5)
    sweep.record(2.0)
    sweep.record(1.0)
    assert sweep.smoothed == pytest.approx([2.0, (0.5 * 1.0 + 0.5 * 1.0) / 0.75])
    assert not sweep.record(math.nan)
    assert sweep.done
    assert sweep.result().stopped == 2


def _run(seed: int = 0, **hparams) -> TrainingRun:
    task = get_task("digits")
    return TrainingRun(task, seed=seed, device="cpu", hparams=task.defaults.replace(**hparams))


def _weights(run: TrainingRun) -> list[torch.Tensor]:
    return [p.detach().clone() for p in run.model.parameters()]


def test_probe_run_rolls_back_to_its_best_state_and_spends_its_steps():
    run = _run()
    batch = run.hparams.batch_size
    result = probe_run(run, SHORT, steps=16)
    assert result.found
    assert run.samples_done == 16 * batch  # the reserved steps, used or not
    assert not run.diverged
    assert run.hparams.lr == pytest.approx(1e-3)  # the run's own rate again
    assert run.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert math.isfinite(run.evaluate().loss)
    # the kept state is the one right after the best step: replaying the sweep to it agrees
    replay = _run()
    for lr in result.lrs[: result.kept]:
        replay.set_hparams(lr=lr)
        replay.train(batch)
    for a, b in zip(_weights(run), _weights(replay), strict=True):
        torch.testing.assert_close(a, b)


def test_a_diverging_probe_never_damages_the_model():
    run = _run(optimizer="sgd", momentum=0.9)
    start = _weights(run)
    config = ProbeConfig(lr_min=1e-3, lr_max=1e3, min_steps=4, max_steps=30, rollback="start")
    result = probe_run(run, config, steps=30)
    assert result.stopped is not None  # it diverged on the way up
    assert not run.diverged
    for a, b in zip(_weights(run), start, strict=True):
        torch.testing.assert_close(a, b)
    stats = run.train(run.hparams.batch_size * 2)  # and trains on normally
    assert math.isfinite(stats.loss_mean)


def test_a_nan_loss_during_the_probe_is_rolled_back(monkeypatch: pytest.MonkeyPatch):
    run = _run()
    calls = {"n": 0}
    real = run._loss

    def poisoned(outputs, targets, reduction="mean"):
        calls["n"] += 1
        loss = real(outputs, targets, reduction)
        return loss * math.nan if calls["n"] == 6 else loss

    monkeypatch.setattr(run, "_loss", poisoned)
    result = probe_run(run, SHORT, steps=16)
    monkeypatch.undo()
    assert result.stopped == 5
    assert math.isnan(result.losses[5])
    assert not run.diverged
    assert all(torch.isfinite(p).all() for p in run.model.parameters())
    assert math.isfinite(run.evaluate().loss)


SHAPE = {"input_dim": 6, "num_classes": 3, "num_samples": 400, "width": 16, "depth": 2}


def test_population_probe_matches_probe_run_member_by_member():
    specs = [SyntheticSpec(**SHAPE, seed=s) for s in (1, 2, 3)]
    hparams = [HParams(batch_size=16, lr=3e-3), HParams(batch_size=16), HParams(batch_size=16)]
    config = ProbeConfig(min_steps=4, max_steps=20, lr_max=1.0, diverge_factor=2.0)
    pairs = enumerate(zip(specs, hparams, strict=True))
    population = Population(
        [Member(s.task(), seed=i, hparams=h) for i, (s, h) in pairs], device="cpu"
    )
    results = probe_population(population, config, steps=20)
    for i, (spec, hp) in enumerate(zip(specs, hparams, strict=True)):
        run = TrainingRun(spec.task(), seed=i, hparams=hp, device="cpu")
        expected = probe_run(run, config, steps=20)
        assert results[i].losses == pytest.approx(expected.losses, rel=1e-4, abs=1e-6)
        assert (results[i].best, results[i].stopped) == (expected.best, expected.stopped)
        assert population.samples_done[i] == run.samples_done
        assert population.hparams[i].lr == pytest.approx(hp.lr)
        assert not population.diverged[i]
        weights = population.parameters(i)
        for name, value in run.model.named_parameters():
            torch.testing.assert_close(weights[name], value.detach(), rtol=1e-4, atol=1e-5)
        # and both go on training alike
        after = population.train(64, members=[i])[0]
        assert after.loss_mean == pytest.approx(run.train(64).loss_mean, rel=1e-4)


def _loop_data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(512, 10, generator=gen)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    return [(x[i : i + 32], y[i : i + 32]) for i in range(0, 512, 32)]


@pytest.mark.parametrize(("kind", "lr_max"), [("adam", 1.0), ("sgd", 1e4)])
def test_find_lr_in_a_users_loop_restores_model_and_optimizer(kind: str, lr_max: float):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(10, 32), torch.nn.BatchNorm1d(32), torch.nn.ReLU(), torch.nn.Linear(32, 3)
    )
    if kind == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = {k: v.clone() for k, v in model.state_dict().items()}  # BatchNorm buffers too
    config = ProbeConfig(lr_max=lr_max, min_steps=2, max_steps=60, rollback="start")
    result = find_lr(model, optimizer, torch.nn.functional.cross_entropy, _loop_data(), 60, config)
    assert result.found
    if kind == "sgd":
        assert result.stopped is not None  # it diverged, inside the optimizer's hook
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, before[name])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 if kind == "adam" else 0.1)
    assert not optimizer.state  # fresh, as it was
    assert not optimizer._optimizer_step_pre_hooks
    assert not optimizer._optimizer_step_post_hooks


def test_the_probe_says_when_its_curve_suggests_nothing():
    flat = ProbeResult(
        lrs=[1e-6, 1e-5, 1e-4, 1e-3], losses=[1.0] * 4, smoothed=[1.0, 0.999, 0.995, 0.999],
        best=2, stopped=None, steps=4, kept=3, lr_min=1e-6, lr_max=1e-3,
    )  # fmt: skip
    assert "flat or noisy" in (flat.doubt() or "")
    early = ProbeResult(
        lrs=[1e-3, 1e-2, 1e-1, 1.0], losses=[1.0, 2.0, 5.0, 9.0], smoothed=[1.0, 2.0, 5.0, 9.0],
        best=0, stopped=3, steps=4, kept=1, lr_min=1e-3, lr_max=1.0,
    )  # fmt: skip
    assert "lower lr_min" in (early.doubt() or "")


def test_find_lr_script_prints_a_suggestion_and_writes_the_curve(tmp_path, capsys):
    from scripts import load_script

    png = tmp_path / "curve.png"
    script = load_script("find_lr")
    assert script.main(["--task", "digits", "--steps", "80", "--out", str(png)]) == 0
    out = capsys.readouterr().out
    assert "suggested learning rate:" in out
    assert png.stat().st_size > 0


def test_choose_base_measures_every_candidate_on_training_tasks(tmp_path, capsys):
    import json

    from scripts import load_script

    out = tmp_path / "bases.json"
    script = load_script("choose_base")
    argv = ["--tasks", "wine", "--seeds", "0", "--start-lr-factors", "1", "--out", str(out)]
    assert script.main(argv) == 0
    table = capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    for name in script.DEFAULT_CANDIDATES:
        assert f"| {name} |" in table
        assert sum(r["candidate"] == name for r in rows) == 1

    # Short runs (wine for 4 epochs: 33 steps): the default probe has none, a floor of 8 one.
    argv += ["--fidelity", "wine:1:4", "--candidates", "default cosine,min/30 cosine probe>=8"]
    assert script.main(argv) == 0
    rows = {r["candidate"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"default cosine", "min/30 cosine probe>=8"}
    assert rows["min/30 cosine probe>=8"]["first_lr"] != rows["default cosine"]["first_lr"]
    with pytest.raises(SystemExit):
        script.main([*argv[:-1], "min/30 cosine, no such"])


def test_steps_a_grad_scaler_skips_are_not_sweep_steps():
    """Mixed precision: GradScaler skips the optimizer's step when a gradient is inf; the
    probe counts only the steps taken, and the model comes back undamaged."""
    from hpenv.probe import OptimizerProbe

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    probe = OptimizerProbe(optimizer, ProbeConfig(min_steps=2, rollback="start"), steps=12)
    batches = _loop_data()
    skipped = taken = 0
    for i in range(40):
        if probe.done:
            break
        taken += 1
        inputs, targets = batches[i % len(batches)]
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        scaler.scale(loss).backward()
        if i % 3 == 1:  # an overflow: the scaler will skip this step
            next(model.parameters()).grad[0, 0] = math.inf
            skipped += 1
        probe.report_loss(loss)
        scaler.step(optimizer)
        scaler.update()
    assert probe.done
    assert skipped > 0
    assert taken == 12 + skipped  # every skipped step was waited out, none swept
    result = probe.result
    assert result is not None
    assert len(result.lrs) == 12  # only the steps the optimizer took swept the rate
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, before[name])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)


def test_plot_probe_steer_draws_a_policys_probe_and_rate_against_the_base(tmp_path, capsys):
    from agents.evaluation.config import EvalConfig
    from agents.evaluation.runner import evaluate
    from scripts import load_script
    from tests.policies import make_policy

    policy = make_policy(decisions=4, obs_version=2).save(tmp_path / "policy.pt")
    out = tmp_path / "eval"
    evaluate(
        EvalConfig(tasks=("diabetes",), seeds=(0,), methods=("policy", "probe_cosine"),
                   policy=str(policy), fidelity=("diabetes:1.0:6",), decisions=4,
                   out_dir=str(out)),
        progress=False,
    )  # fmt: skip
    script = load_script("plot_probe_steer")
    png = tmp_path / "figure.png"
    argv = ["--runs", str(out), "--task", "diabetes", "--out", str(png)]
    assert script.main(argv) == 0
    assert png.stat().st_size > 0
    from agents.evaluation.records import RunStore

    base = RunStore(out).records[("probe_cosine", "diabetes", 0, 1.0)]
    progress, rates = script.interval_rates(base)  # the first interval starts at the probe's end
    probe = base["extra"]["probe"]
    assert progress[0] == pytest.approx(probe["steps"] / probe["budget_steps"])
    assert progress == sorted(progress)
    assert len(progress) == len(rates) == len(base["trajectory"])
    assert rates[0] == pytest.approx(base["extra"]["base_lr"], rel=1e-3)
    offsets = load_script("steer_offsets")
    assert offsets.main(["--runs", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| folder | mean val acc | diabetes |" in printed
    with pytest.raises(SystemExit) as stopped:  # a cell that was not run: one error line
        script.main([*argv[:3], "mnist_cnn"])
    assert stopped.value.code == 2
    assert "error: no finished policy run of mnist_cnn" in capsys.readouterr().err


def test_steer_offsets_is_the_mean_log_ratio_of_the_rates_after_the_probe():
    from hpenv.errors import InputError
    from scripts import load_script

    offsets = load_script("steer_offsets")

    def record(rates):
        points = [{"lr": 1.0, "val_accuracy": 0.1}] + [
            {"lr": r, "val_accuracy": 0.5} for r in rates
        ]
        return {"task": "t", "seed": 0, "trajectory": points}

    base = record([1e-3, 5e-4, 1e-4])
    assert offsets.mean_offset(base, base) == 0.0  # following the base: no offset
    doubled = record([2e-3, 1e-3, 2e-4])
    assert offsets.mean_offset(doubled, base) == pytest.approx(math.log(2))
    mixed = record([3e-3, 5e-4 / 3, 1e-4])
    assert offsets.mean_offset(mixed, base) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(InputError, match="the policy trained 2 intervals and the base 3"):
        offsets.mean_offset(record([1e-3, 1e-3]), base)


def test_choose_base_runs_draws_of_the_synthetic_family_as_registered_tasks(capsys):
    """choose_base --synthetic-draws: tasks drawn from the meta-training family, registered
    by name only while the script runs (hpenv.tasks.registered), and a min/3 reading."""
    from hpenv.tasks import TASKS, get_task, registered
    from scripts import load_script

    script = load_script("choose_base")
    draws = script.synthetic_draws(3, seed=5)
    assert [t.name for t in draws] == ["synthetic-draw-0", "synthetic-draw-1", "synthetic-draw-2"]

    def shape(tasks):
        return [(t.defaults, t.budget_epochs, t.model) for t in tasks]

    assert shape(script.synthetic_draws(3, seed=5)) == shape(draws)  # one seed, one draw
    assert shape(script.synthetic_draws(3, seed=6)) != shape(draws)
    # the family comes from a recipe's --synthetic-* flags: the default is the v3 candidate's
    assert script.recipe_family(script.DEFAULT_SYNTHETIC_RECIPE).conv_fraction == 0.25
    make_train = script.recipe_family(f"{REPO}/docs/recipes/make-train.toml:make-train")
    assert make_train.optimizers == ("adam",)
    assert make_train.conv_fraction == 0.0
    assert all(t.defaults.optimizer == "adam" for t in script.synthetic_draws(8, 5, make_train))
    with pytest.raises(ValueError, match="no recipe 'nope'"):
        script.recipe_family(f"{REPO}/docs/recipes/make-train.toml:nope")
    with registered(draws):
        assert get_task("synthetic-draw-1") is draws[1]
        with pytest.raises(ValueError, match="already registered"), registered(draws[:1]):
            pass
    assert "synthetic-draw-1" not in TASKS
    argv = ["--tasks", "", "--synthetic-draws", "1", "--seeds", "0", "--start-lr-factors", "1",
            "--candidates", "min/3 cosine,min/30 cosine"]  # fmt: skip
    assert script.main(argv) == 0
    printed = capsys.readouterr().out
    assert "| min/3 cosine |" in printed
    assert "1 tasks x 1 optimizers x 1 start factors x 1 seeds" in printed
    assert "synthetic-draw-0" not in TASKS
    from hpenv.probe import ProbeResult

    probe = ProbeResult([1e-4, 1e-3, 1e-2, 1e-1], [2.0, 1.5, 1.0, 9.0], [2.0, 1.5, 1.0, 9.0],
                        2, 3, 4, 3, 1e-6, 1.0)  # fmt: skip
    assert probe.suggestion("min/3") == pytest.approx(1e-2 / 3)
