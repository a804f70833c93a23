"""`make train`'s wall time with its ensemble members one after another and several at once.

Runs `make train`'s command (``scripts/train_agent.py --ensemble 5 --total-steps 4800
--deploy-rise-guard on --deploy-restart collapse --deploy-fall-hold on``, `--threads 1`)
once per ``--jobs`` value and repeat, each a fresh run in a temporary folder, the values
interleaved within each repeat, and prints each one's wall time beside its ratio to
``--ensemble-jobs 1`` of the same repeat, and whether the ensembles are the same policy
(their fingerprints: members trained at once are the runs trained one after another).
Run it on an otherwise idle machine; ``--out`` writes JSON.

Usage:
    python scripts/benchmark_ensemble_jobs.py --jobs 1 3            # `make train` itself: ~25 min
    python scripts/benchmark_ensemble_jobs.py --jobs 1 2 3 5 --total-steps 1024
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAKE_TRAIN = (
    "--deploy-rise-guard", "on", "--deploy-restart", "collapse", "--deploy-fall-hold", "on",
)  # fmt: skip


def timed_run(jobs: int, ensemble: int, total_steps: int, out: Path) -> tuple[float, str]:
    """Wall seconds of one `make train`-style run with ``--ensemble-jobs jobs``, and the
    fingerprint of its ensemble."""
    command = [
        sys.executable, str(ROOT / "scripts" / "train_agent.py"), "--ensemble", str(ensemble),
        "--total-steps", str(total_steps), *MAKE_TRAIN, "--threads", "1",
        "--ensemble-jobs", str(jobs), "--out-dir", str(out),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    start = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        tail = done.stderr[-2000:]
        raise SystemExit(f"--ensemble-jobs {jobs} failed ({done.returncode}):\n{tail}")
    sys.path.insert(0, str(ROOT))
    from agents.policy.artifact import load_policy

    return seconds, load_policy(out / "policy.pt").fingerprint()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[1:]),
    )
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 3], help="values compared")
    parser.add_argument("--ensemble", type=int, default=5)
    parser.add_argument("--total-steps", type=int, default=4800, help="agent steps per member")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if 1 not in args.jobs or min(args.jobs) < 1:
        parser.error("--jobs must include 1 (the reference) and be >= 1")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"--ensemble {args.ensemble} --total-steps {args.total_steps}, one thread per process",
        flush=True,
    )
    seconds: dict[int, list[float]] = {j: [] for j in args.jobs}
    prints: dict[int, list[str]] = {j: [] for j in args.jobs}
    for repeat in range(args.repeats):
        for jobs in args.jobs:
            with tempfile.TemporaryDirectory(prefix="ens-jobs-") as folder:
                out = Path(folder) / "run"
                took, fingerprint = timed_run(jobs, args.ensemble, args.total_steps, out)
            seconds[jobs].append(took)
            prints[jobs].append(fingerprint)
            print(f"  repeat {repeat} --ensemble-jobs {jobs}: {took / 60:6.2f} min "
                  f"(ensemble {fingerprint[:16]})", flush=True)  # fmt: skip
    print("\nwall time, median over repeats [min, max]; ratio to --ensemble-jobs 1 per repeat")
    for jobs, values in seconds.items():
        ratios = [b / v for v, b in zip(values, seconds[1], strict=True)]
        same = all(p == q for p, q in zip(prints[jobs], prints[1], strict=True))
        print(
            f"  --ensemble-jobs {jobs}: {statistics.median(values) / 60:6.2f} min "
            f"[{min(values) / 60:.2f}, {max(values) / 60:.2f}]  {statistics.median(ratios):.2f}x "
            f"faster  same ensemble as one after another: {'yes' if same else 'NO'}"
        )
    if args.out:
        with open(args.out, "w") as handle:
            results = {"args": vars(args), "seconds": seconds, "fingerprints": prints}
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
