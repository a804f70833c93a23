"""Kill meta-training at random points, resume it, and check that nothing is lost.

For each signal (SIGKILL, SIGTERM, SIGINT) and each repeat, a small
meta-training run (subprocess workers, as ``make train`` runs) is started,
sent the signal at a random moment while it trains, then resumed with the
bare ``--out-dir DIR --resume`` command until it finishes. Each run must end
at the same agent step as an uninterrupted one, and its ``progress.csv`` must
hold every PPO update's row exactly once. Prints one line per run and a
summary; exits 1 if any run failed.

Examples:
    python scripts/check_interrupts.py                 # 3 signals x 5 repeats
    python scripts/check_interrupts.py --repeats 1 --signals TERM
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from agents.cli import option, parse_config

ROOT = Path(__file__).resolve().parents[1]
RUN = [
    "--train-tasks", "synthetic", "--eval-tasks", "synthetic-heldout", "--n-envs", "2",
    "--vec-env", "subprocess", "--n-steps", "32", "--batch-size", "32", "--decisions", "4",
    "--budget", "400", "--eval-every", "512", "--eval-seeds", "0", "--checkpoint-every", "64",
    "--net-arch", "16",
]  # fmt: skip
ROLLOUT = 2 * 32  # n_envs x n_steps: agent steps per PPO update


def _train(args: list[str]) -> subprocess.Popen[str]:
    command = [sys.executable, str(ROOT / "scripts" / "train_agent.py"), *args]
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _wait_training(out: Path, process: subprocess.Popen[str], timeout: float = 120) -> bool:
    """True once the run has written its first TensorBoard events (training has started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if list(out.glob("events.out.tfevents*")) and (out / "checkpoints").is_dir():
            return True
        time.sleep(0.1)
    return False


def _logged_steps(out: Path) -> list[int]:
    with open(out / "progress.csv", newline="") as fh:
        return [int(r["time/total_timesteps"]) for r in csv.DictReader(fh) if r.get("time/fps")]


def one_run(out: Path, sig: signal.Signals, total: int, rng: random.Random) -> tuple[bool, str]:
    """Start, kill at a random moment, resume to the end; (ok, description)."""
    process = _train([*RUN, "--total-steps", str(total), "--out-dir", str(out)])
    if not _wait_training(out, process):
        process.kill()
        return False, "the run never started training"
    delay = rng.uniform(0.5, 8.0)
    time.sleep(delay)
    finished_first = process.poll() is not None
    if not finished_first:
        process.send_signal(sig)
    sent = time.monotonic()
    _, stderr = process.communicate(timeout=120)
    exit_seconds = time.monotonic() - sent
    expected_rc = {signal.SIGKILL: -9}.get(sig, 130)
    if not finished_first and process.returncode != expected_rc:
        return False, f"rc {process.returncode} after {sig.name} (wanted {expected_rc}): {stderr}"
    resumes = 0
    while process.returncode != 0:
        resumes += 1
        process = _train(["--out-dir", str(out), "--resume"])
        _, stderr = process.communicate(timeout=600)
        if process.returncode != 0 and resumes >= 3:
            return False, f"resume failed (rc {process.returncode}): {stderr[-2000:]}"
    final = -(-total // ROLLOUT) * ROLLOUT  # where an uninterrupted run stops
    steps = _logged_steps(out)
    wanted = list(range(ROLLOUT, final + 1, ROLLOUT))
    details = (
        f"{sig.name} after {delay:.1f} s{' (already finished)' if finished_first else ''}, "
        f"exit in {exit_seconds:.1f} s, {resumes} resume(s), {len(steps)} rows"
    )
    if steps != wanted:
        missing = sorted(set(wanted) - set(steps))
        extra = sorted(s for s in set(steps) if steps.count(s) > 1 or s not in wanted)
        return False, f"{details}: progress.csv rows wrong (missing {missing}, repeated {extra})"
    return True, details


@dataclass(frozen=True)
class CheckConfig:
    """Which signals, how often (every field is a flag)."""

    signals: tuple[str, ...] = option(
        "signals to send", default=("KILL", "TERM", "INT"), choices=("KILL", "TERM", "INT")
    )
    repeats: int = option("runs per signal", default=5)
    total_steps: int = option("agent steps per run", default=1_536)
    seed: int = option("seed of the kill times", default=0)


def main(argv: list[str] | None = None) -> int:
    args = parse_config(CheckConfig, __doc__, argv)
    rng = random.Random(args.seed)
    signals = [signal.Signals[f"SIG{name}"] for name in args.signals]
    results = []
    root = Path(tempfile.mkdtemp(prefix="hpenv-interrupts-"))
    try:
        for sig in signals:
            for repeat in range(args.repeats):
                out = root / f"{sig.name}-{repeat}"
                ok, details = one_run(out, sig, args.total_steps, rng)
                results.append(ok)
                print(f"{'ok  ' if ok else 'FAIL'} {sig.name} #{repeat}: {details}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{sum(results)} of {len(results)} runs ended at the same step with every row once")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
