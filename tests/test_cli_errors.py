"""Every error a user can cause: one line, exit status 2, nothing written (issue 21).

Each script's ``main(argv)`` runs in this process with a bad input; it must
raise ``SystemExit(2)`` after exactly one stderr line ``<script>: error: ...``
(the one error path of `agents.cli`), and leave the working directory as it
was. None of these inputs reaches training: they are refused before it.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from policies import make_policy

from agents.cli import parse_config
from agents.evaluation import EvalConfig
from agents.metatrain import MetaTrainConfig
from agents.policy import DEFAULT_POLICY, PolicyLoadError, load_policy, load_pretrained
from scripts import load_script

REPO = Path(__file__).resolve().parents[1]


def _inputs(root: Path) -> dict[str, str]:
    """Bad files and directories under ``root``, by the placeholder `CASES` name them with."""
    good = DEFAULT_POLICY.read_bytes()
    truncated = good[: len(good) // 3]
    (root / "truncated.pt").write_bytes(truncated)
    (root / "empty.pt").write_bytes(b"")
    (root / "folder").mkdir()
    blob = torch.load(DEFAULT_POLICY, weights_only=True)
    blob["metadata"]["obs_size"] += 3
    torch.save(blob, root / "obs.pt")
    paths = {
        "out": root / "out",
        "readme": REPO / "README.md",
        "policy_truncated": root / "truncated.pt",
        "policy_empty": root / "empty.pt",
        "policy_folder": root / "folder",
        "policy_missing": root / "missing.pt",
        "policy_obs": root / "obs.pt",
        "meta_no_checkpoint": _meta_run(root / "meta1"),
        "meta_empty": _meta_run(root / "meta2", b""),
        "meta_truncated": _meta_run(root / "meta3", truncated),
        "meta_existing": _meta_run(root / "meta4", good),
        "meta_bad_json": _meta_run(root / "meta5", config="{oops"),
        "meta_list": _meta_run(root / "meta6", config="[1, 2]"),
        "job_truncated": _job(root / "job1", truncated),
        "job_empty": _job(root / "job2", b""),
        "job_existing": _job(root / "job3", good),
    }
    return {name: str(path) for name, path in paths.items()}


def _meta_run(run: Path, checkpoint: bytes | None = None, config: str | None = None) -> Path:
    """A meta-training run directory: its config.json and, if given, checkpoints/latest.pt."""
    run.mkdir()
    text = json.dumps(MetaTrainConfig().to_dict()) if config is None else config
    (run / "config.json").write_text(text)
    if checkpoint is not None:
        (run / "checkpoints").mkdir()
        (run / "checkpoints" / "latest.pt").write_bytes(checkpoint)
    return run


def _job(job: Path, checkpoint: bytes) -> Path:
    """A run_policy.py job directory: its config.json and checkpoint.pt."""
    job.mkdir()
    options = {"task": "digits", "policy": "hpenv-lr-v2", "model": None, "epochs": 1.0,
               "lr": None, "subset": None, "seed": 0, "device": "cpu",
               "data_dir": None}  # fmt: skip
    (job / "config.json").write_text(json.dumps(options))
    (job / "checkpoint.pt").write_bytes(checkpoint)
    return job


_POLICIES = ("truncated", "empty", "folder", "missing", "obs")
#: Script and arguments ({name}: a path of `_inputs`); each must be refused in one line.
CASES: dict[str, str] = {
    "train-budget": "train_agent --budget -100 --out-dir {out}",
    "train-tuned": "train_agent --tuned learning_rate --out-dir {out}",
    "train-train-tasks": "train_agent --train-tasks mnsit --out-dir {out}",
    "train-eval-tasks": "train_agent --eval-tasks mnsit --out-dir {out}",
    "train-unknown-flag": "train_agent --no-such-flag",
    "train-resume-no-checkpoint": "train_agent --out-dir {meta_no_checkpoint} --resume",
    "train-resume-empty": "train_agent --out-dir {meta_empty} --resume",
    "train-resume-truncated": "train_agent --out-dir {meta_truncated} --resume",
    "train-resume-missing-dir": "train_agent --out-dir {out} --resume",
    "train-existing-run": "train_agent --out-dir {meta_existing}",
    "train-config-invalid-json": "train_agent --out-dir {meta_bad_json} --resume",
    "train-config-list": "train_agent --out-dir {meta_list} --resume",
    "run-missing-data": "run_policy --task mnist --data-dir {policy_folder} --out-dir {out}",
    "run-lr": "run_policy --task digits --lr -0.01 --out-dir {out}",
    "run-subset": "run_policy --task digits --subset 1.5 --out-dir {out}",
    "run-device": "run_policy --task digits --device cuda --out-dir {out}",
    "run-resume-truncated": "run_policy --out-dir {job_truncated} --resume",
    "run-resume-empty": "run_policy --out-dir {job_empty} --resume",
    "run-existing-out-dir": "run_policy --task digits --epochs 1 --out-dir {job_existing}",
    "export-not-a-policy": "export_policy --policy {readme} --out {out}",
    "time-to-target-no-runs": "time_to_target --out-dir {policy_folder}",
    "compare-recipes-no-results": "compare_recipes --dirs a={out}",
}
for _name in _POLICIES:  # the same bad policy files, to every script that reads one
    _policy = f"--policy {{policy_{_name}}}"
    CASES[f"run-policy-{_name}"] = f"run_policy --task digits {_policy} --out-dir {{out}}"
    CASES[f"adapt-{_name}"] = f"adapt_policy --task digits {_policy} --out-dir {{out}}"
    CASES[f"export-{_name}"] = f"export_policy {_policy} --out {{out}}"


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*")}  # fmt: skip


def _refused(script: str, argv: list[str], monkeypatch, capsys) -> str:
    """Run ``script``'s main; assert exit status 2 and one ``<script>.py: error:`` line."""
    monkeypatch.setattr(sys, "argv", [f"{script}.py"])  # the name argparse and run_job print
    main = load_script(script).main
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{script}.py: error: "), err
    return lines[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_writes_nothing(case: str, tmp_path: Path, monkeypatch, capsys):
    script, *argv = CASES[case].format(**_inputs(tmp_path)).split()
    monkeypatch.chdir(tmp_path)  # a default out-dir (logs/...) would land here
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    before = _tree(tmp_path)
    line = _refused(script, argv, monkeypatch, capsys)
    assert _tree(tmp_path) == before
    if "config" in case:
        assert "config.json" in line  # names the file


def test_onnx_opset_is_the_one_asked_for_or_refused(tmp_path: Path, monkeypatch, capsys, caplog):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    artifact = make_policy(("lr",)).save(tmp_path / "p.pt")
    out = tmp_path / "out"
    before = _tree(tmp_path)
    line = _refused(
        "export_policy",
        ["--policy", str(artifact), "--format", "both", "--opset", "9", "--out", str(out)],
        monkeypatch,
        capsys,
    )
    assert "opset 9" in line
    assert _tree(tmp_path) == before  # not even the TorchScript file
    caplog.set_level(logging.WARNING)
    cli = load_script("export_policy")
    for opset in (17, 14):
        argv = ["--policy", str(artifact), "--format", "onnx", "--opset", str(opset), "--out",
                str(out / str(opset))]  # fmt: skip
        assert cli.main(argv) == 0
        model = onnx.load(str(out / str(opset) / "p.onnx"))
        assert {o.domain: o.version for o in model.opset_import}[""] == opset
    assert "Setting ONNX exporter" not in caplog.text + capsys.readouterr().err


def test_comma_separated_flags_ignore_spaces():
    config = parse_config(EvalConfig, None, ["--methods", "policy, static", "--seeds", "0, 1"])
    assert config.methods == ("policy", "static")
    assert config.seeds == (0, 1)


def test_reset_with_hparams_that_are_not_a_mapping_says_so():
    from hpenv.env import HPTuneEnv
    from hpenv.tasks import SyntheticSpec

    env = HPTuneEnv(SyntheticSpec().task(), device="cpu")
    with pytest.raises(ValueError, match=r"options\['hparams'\] must map hyperparameter names"):
        env.reset(seed=0, options={"hparams": "lr"})


def test_report_loss_takes_numpy_numbers():
    from agents.deploy.controller import HyperController

    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    controller = HyperController(make_policy(), optimizer, total_steps=40, decisions=3,
                                 batch_size=8)  # fmt: skip
    controller.report_loss(np.float32(0.5))
    controller.report_loss(np.float64(0.5))
    controller.report_loss(np.int64(1))
    with pytest.raises(TypeError):
        controller.report_loss(np.bool_(True))  # type: ignore[arg-type]


def test_a_file_that_is_not_a_policy_is_not_called_damaged():
    with pytest.raises(PolicyLoadError) as info:
        load_pretrained(REPO / "README.md")
    assert "not a torch file" in str(info.value)
    assert "damaged" not in str(info.value)


def test_load_policy_of_a_shipped_name_points_to_load_pretrained():
    with pytest.raises(FileNotFoundError, match="load_pretrained"):
        load_policy("hpenv-lr-v2")
