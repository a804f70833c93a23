"""Results that could be wrong without anyone noticing (issue 21): a resume with another
policy, bootstrap intervals that change on every rewrite, a torn ``results.csv`` header,
two processes writing one folder, third-party warnings on the user's terminal."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from policies import make_policy

from agents.evaluation import COLUMNS, EvalConfig, evaluate
from agents.evaluation.cells import MethodFactory
from agents.evaluation.methods.core import MethodResult, RunSpec
from scripts import load_script

TINY = ("digits:0.1:2",)


@dataclass
class Constant:
    """No training: the same result for every cell (counts its runs)."""

    name: str
    calls: Counter[str]

    def run(self, spec: RunSpec) -> MethodResult:
        self.calls[self.name] += 1
        trajectory = [{"progress": 1.0, "samples": 100, "lr": 1e-3, "val_accuracy": 0.5}]
        return MethodResult(
            self.name, spec.task, spec.seed, spec.start_lr_factor, 1.0, 0.5, math.nan, 0.5,
            100, 100, 0.01, False, trajectory,
        )  # fmt: skip


def _static(calls: Counter[str]) -> dict[str, MethodFactory]:
    return {"static": lambda: Constant("static", calls)}


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _scores() -> dict[tuple[str, str, float, int], float]:
    rng = np.random.default_rng(3)
    scores = {}
    for seed in range(5):
        for task in ("a", "b", "c"):
            for method, shift in (("static", 0.0), ("policy", 0.02), ("linear", 0.01)):
                scores[(method, task, 1.0, seed)] = 0.5 + shift + 0.05 * rng.random()
    return scores


def test_rliable_intervals_are_the_same_for_the_same_scores() -> None:
    from agents.evaluation.aggregate import rliable_section

    scores = _scores()
    np.random.seed(1)  # noqa: NPY002 (the global generator rliable draws from)
    first = rliable_section(scores, ["policy", "static", "linear"])
    np.random.seed(2)  # noqa: NPY002
    np.random.random(17)  # noqa: NPY002
    second = rliable_section(scores, ["policy", "static", "linear"])
    assert first == second
    # a method's intervals do not depend on which other methods are aggregated
    alone = rliable_section(scores, ["policy", "static"])
    policy_row = next(line for line in first if line.startswith("| policy |"))
    assert policy_row in alone
    np.random.seed(5)  # noqa: NPY002
    expected = np.random.random(3)  # noqa: NPY002
    np.random.seed(5)  # noqa: NPY002
    rliable_section(scores, ["policy", "static"])  # the global generator is left as it was
    assert np.array_equal(np.random.random(3), expected)  # noqa: NPY002


def test_rliable_section_raises_no_third_party_warnings() -> None:
    from agents.evaluation.aggregate import rliable_section

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # whatever pytest's configuration filters
        lines = rliable_section(_scores(), ["policy", "static"])
    assert any(line.startswith("| policy |") for line in lines)


# ------------------------------------------------------------------ torn results.csv header


def test_a_torn_results_header_is_repaired_on_resume(tmp_path: Path) -> None:
    calls: Counter[str] = Counter()
    out = tmp_path / "report"
    config = EvalConfig(
        tasks=("digits",), seeds=(0, 1), methods=("static",), fidelity=TINY, out_dir=str(out)
    )
    evaluate(config, _static(calls), progress=False)
    # a crash during the first write: runs.jsonl holds the record, results.csv a torn header
    first = (out / "runs.jsonl").read_text().splitlines()[0]
    (out / "runs.jsonl").write_text(first + "\n")
    (out / "results.csv").write_text("method,task,se")
    calls.clear()
    report = evaluate(dataclasses.replace(config, resume=True), _static(calls), progress=False)
    assert calls == Counter({"static": 2})  # no row survived: both cells ran again
    assert report.runs == 2
    rows = _rows(out)
    assert list(rows[0]) == list(COLUMNS)
    assert sorted(r["seed"] for r in rows) == ["0", "1"]


# ------------------------------------------------------------------ the policy of a resume


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A policy as a file and, the same policy, as a hub-layout folder; another policy."""
    folder = tmp_path_factory.mktemp("policies")
    policy = make_policy(decisions=3)
    return {
        "file": policy.save(folder / "a.pt"),
        "folder": policy.save(folder / "a-copy" / "policy.pt").parent,
        "other": make_policy(seed=1, decisions=3).save(folder / "b.pt"),
    }


def _cli_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """The one error line of ``scripts/evaluate.py ARGV``, which must exit with status 2."""
    import sys

    real = sys.argv
    sys.argv = ["evaluate.py"]  # the name the error line gives, as when run as a script
    try:
        with pytest.raises(SystemExit) as exit_info:
            load_script("evaluate").main(argv)
    finally:
        sys.argv = real
    assert exit_info.value.code == 2
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("evaluate.py:")]
    assert len(errors) == 1
    return errors[0]


def test_resume_refuses_another_policy_by_content(
    policies: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    config = EvalConfig(
        policy=str(policies["file"]), tasks=("digits",), seeds=(0,), methods=("policy",),
        fidelity=TINY, out_dir=str(out),
    )  # fmt: skip
    evaluate(config, {}, progress=False)
    fingerprint = json.loads((out / "config.json").read_text())["policy_sha256"]
    assert len(fingerprint) == 64
    assert f"(sha256 {fingerprint[:12]}; trained on" in (out / "summary.md").read_text()
    # the same policy from another place: the same policy; nothing runs again
    same = dataclasses.replace(config, policy=str(policies["folder"]), resume=True)
    assert evaluate(same, {}, progress=False).runs == 1

    results = (out / "results.csv").read_text()
    other = dataclasses.replace(config, policy=str(policies["other"]), resume=True)
    with pytest.raises(ValueError, match=r"b\.pt.*sha256"):
        evaluate(other, {}, progress=False)
    line = _cli_error(capsys, ["--out-dir", str(out), "--resume", "--policy", str(other.policy)])
    assert "b.pt" in line
    assert "another out_dir" in line
    assert (out / "results.csv").read_text() == results

    # a folder written before fingerprints were recorded: compared by the policy option
    saved = json.loads((out / "config.json").read_text())
    del saved["policy_sha256"]
    (out / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="by name only"):
        evaluate(other, {}, progress=False)
    assert evaluate(same, {}, progress=False).runs == 1  # the same option: resumed
    assert "policy_sha256" in json.loads((out / "config.json").read_text())


# ------------------------------------------------------------------ one writer per folder

#: A first evaluation (its own process) whose only cell waits until ``release`` exists.
HOLDER = """
import math, sys, time
from pathlib import Path
from agents.evaluation import EvalConfig, evaluate
from agents.evaluation.methods.core import MethodResult

out, started, release = map(Path, sys.argv[1:])

class Waiting:
    name = "static"

    def run(self, spec):
        started.touch()
        deadline = time.monotonic() + 120
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        point = {"progress": 1.0, "samples": 100, "lr": 1e-3, "val_accuracy": 0.5}
        return MethodResult("static", spec.task, spec.seed, spec.start_lr_factor, 1.0, 0.5,
                            math.nan, 0.5, 100, 100, 0.01, False, [point])

config = EvalConfig(tasks=("digits",), seeds=(0,), methods=("static",),
                    fidelity=("digits:0.1:2",), out_dir=str(out))
evaluate(config, {"static": Waiting}, progress=False)
"""


def test_a_second_process_on_a_folder_is_refused_until_the_first_dies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, started, release = tmp_path / "report", tmp_path / "started", tmp_path / "release"
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root, "OMP_NUM_THREADS": "1"}
    args = [str(out), str(started), str(release)]
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, *args], env=env)
    try:
        deadline = time.monotonic() + 120
        while not started.exists():
            assert holder.poll() is None, "the first evaluation ended before its cell ran"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        calls: Counter[str] = Counter()
        config = EvalConfig(
            tasks=("digits",), seeds=(0, 1), methods=("static",), fidelity=TINY,
            out_dir=str(out), resume=True,
        )  # fmt: skip
        with pytest.raises(FileExistsError, match=f"in use by another evaluation.*{holder.pid}"):
            evaluate(config, _static(calls), progress=False)
        line = _cli_error(capsys, ["--out-dir", str(out), "--resume", "--seeds", "0,1"])
        assert "in use by another evaluation" in line
        assert calls == Counter()
        assert json.loads((out / "config.json").read_text())["config"]["seeds"] == [0]
    finally:
        holder.send_signal(signal.SIGKILL)  # dies holding the lock: no clean-up runs
        holder.wait(timeout=60)
    assert (out / ".evaluate.lock").is_file()  # left behind, naming a dead process
    report = evaluate(config, _static(calls), progress=False)
    assert (report.runs, calls) == (2, Counter({"static": 2}))
    assert not (out / ".evaluate.lock").exists()


def test_a_lock_file_naming_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / ".evaluate.lock").write_text("pid 99999999 on elsewhere since 2020-01-01 00:00:00")
    calls: Counter[str] = Counter()
    config = EvalConfig(
        tasks=("digits",), seeds=(0,), methods=("static",), fidelity=TINY, out_dir=str(out)
    )
    assert evaluate(config, _static(calls), progress=False).runs == 1
    assert not (out / ".evaluate.lock").exists()


def test_an_interrupted_evaluation_releases_its_folder(tmp_path: Path) -> None:
    from agents.stopping import JobInterrupted

    class Interrupting:
        name = "static"

        def run(self, spec: RunSpec) -> MethodResult:
            raise KeyboardInterrupt  # Ctrl-C pressed twice: stop now

    out = tmp_path / "report"
    config = EvalConfig(
        tasks=("digits",), seeds=(0,), methods=("static",), fidelity=TINY, out_dir=str(out)
    )
    with pytest.raises(JobInterrupted, match="--resume"):
        evaluate(config, {"static": Interrupting}, progress=False)
    assert not (out / ".evaluate.lock").exists()
    calls: Counter[str] = Counter()
    resumed = dataclasses.replace(config, resume=True)
    assert evaluate(resumed, _static(calls), progress=False).runs == 1
