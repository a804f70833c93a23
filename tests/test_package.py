"""The package as a newcomer meets it: names, commands, help texts, warnings."""

from __future__ import annotations

import inspect
import re
import warnings
from pathlib import Path

import pytest
import torch
from policies import make_policy

import agents
from agents.deploy.controller import HyperController
from scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def test_dir_lists_the_lazily_exported_names():
    names = dir(agents)
    assert set(agents.__all__) <= set(names)
    assert "HyperController" in names
    assert "__getattr__" in names  # the module's own names stay
    assert names == sorted(names)


def _recorded(run) -> list[warnings.WarningMessage]:
    """The warnings that reach the user while ``run()`` runs (Python's default filters)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        run()
    return list(caught)


def test_controller_warnings_name_the_users_line_even_under_a_scheduler():
    """A decision skipped inside ``optimizer.step()`` (wrapped by an LR scheduler, as in
    every framework) is reported at the user's ``optimizer.step()`` line, not in torch."""
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.optim.lr_scheduler.StepLR(optimizer, step_size=100)  # wraps optimizer.step

    calls: list[int] = []

    def evaluate() -> tuple[float, float]:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("validation data went away")
        return 0.7, 0.5

    controller = HyperController(make_policy(), optimizer, total_steps=20, decisions=3,
                                 batch_size=8, evaluate=evaluate)  # fmt: skip
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))

    def train() -> None:
        for _ in range(20):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            controller.report_loss(loss)
            optimizer.step()

    caught = _recorded(train)
    assert any("skipped" in str(w.message) for w in caught)
    assert all(w.filename == __file__ for w in caught), [(w.filename, w.lineno) for w in caught]


def test_lightning_callback_warnings_name_the_users_line():
    """The callback's own warning names the user's ``trainer.fit`` line, and Lightning's
    internal FutureWarning about torch's pytree API does not reach the user."""
    pl = pytest.importorskip("lightning.pytorch")
    from torch.utils.data import DataLoader, TensorDataset

    from agents.deploy.integrations.lightning import HyperControllerCallback

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(4, 2)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.cross_entropy(self.net(x), y)

        def configure_optimizers(self):
            optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
            cycle = torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.2, total_steps=100)
            schedule = {"scheduler": cycle, "interval": "step"}
            return {"optimizer": optimizer, "lr_scheduler": schedule}

    data = DataLoader(TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,))), batch_size=8)
    callback = HyperControllerCallback(make_policy(decisions=2), evaluate=lambda: (0.7, 0.5))
    trainer = pl.Trainer(max_steps=8, callbacks=[callback], accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)  # fmt: skip
    caught = _recorded(lambda: trainer.fit(Module(), data))
    assert any("OneCycleLR is not re-anchored" in str(w.message) for w in caught)
    assert all(w.filename == __file__ for w in caught), [(w.filename, w.lineno) for w in caught]


def test_onnx_export_keeps_the_exporters_internal_notices_off_the_terminal(
    tmp_path, capfd: pytest.CaptureFixture[str]
):
    pytest.importorskip("onnxscript")
    from agents.policy.export import export_onnx

    export_onnx(make_policy(), tmp_path / "policy.onnx")
    err = capfd.readouterr().err
    assert "operator set version" not in err
    assert "version converter" not in err


SCRIPTS = sorted(p.stem for p in (ROOT / "scripts").glob("*.py"))
#: What a help text must not cite: our run folders, issue labels, paths outside the clone.
INTERNAL = re.compile(r"logs/exp\d|\bissue \d|\bbar \d|\.\./shared")


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_cites_nothing_internal(name: str, capsys: pytest.CaptureFixture[str]):
    module = load_script(name)
    if "argv" in inspect.signature(module.main).parameters:
        with pytest.raises(SystemExit) as exit_:
            module.main(["--help"])
        assert exit_.value.code == 0
        text = capsys.readouterr().out
    else:  # parses sys.argv itself: its help is its docstring
        text = module.__doc__ or ""
    assert text.strip()
    assert not INTERNAL.search(text), INTERNAL.search(text)


def test_wheel_installs_the_documented_commands(tmp_path, capsys: pytest.CaptureFixture[str]):
    """The wheel's entry points are the five main commands; each target imports, prints its
    help, and is documented in the README."""
    import importlib
    import shutil
    import subprocess
    import sys
    import zipfile

    import tomllib

    pytest.importorskip("setuptools")
    root = ROOT
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("agents", "hpenv"):
        shutil.copytree(root / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("hpenv-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (entry_points,) = [n for n in archive.namelist() if n.endswith("entry_points.txt")]
        text = archive.read(entry_points).decode()
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    expected = ("hpenv-train", "hpenv-evaluate", "hpenv-run", "hpenv-export", "hpenv-adapt")
    assert sorted(scripts) == sorted(expected)
    readme = (root / "README.md").read_text()
    for command, target in scripts.items():
        assert f"{command} = {target}" in text
        module, function = target.split(":")
        main = getattr(importlib.import_module(module), function)
        with pytest.raises(SystemExit) as exit_:
            main(["--help"])
        assert exit_.value.code == 0
        assert capsys.readouterr().out.startswith("usage:")
        assert f"`{command}`" in readme, f"the README does not document {command}"
