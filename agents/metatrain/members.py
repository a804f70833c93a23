"""Train an ensemble's members several at once, each in a process of its own.

`agents.metatrain.loop` trains the members of ``--ensemble K`` one after another
in its own process. With ``--ensemble-jobs J`` > 1 it hands them to
`train_at_once`, which keeps up to J member processes running (spawned, each a
whole `meta_train` of one seed, exactly the run the sequential path makes) and
starts the next member when one finishes. One member alone does not keep two
cores busy (its PPO update and held-out evaluations run in one thread while the
environment workers wait): on the 2-core development machine three at once
trained `make train`'s five in 9.6 min instead of 11.6 (1.2x), the same ensemble
(docs/benchmarks.md, "Ensemble members at once"); more cores gain more.

Each member writes its output (its progress bar, its lines) to
``s<seed>/train.log``; this process prints one line when a member starts and
when it ends, over a progress bar of finished members.

Signals: each member runs in a process group of its own, so a Ctrl-C in the
terminal reaches this process only; the first SIGINT/SIGTERM is passed to every
running member once (each writes its checkpoint and stops, as a run alone
does), no new member starts, and `JobInterrupted` names the resume command. A
second signal is passed on too (members abort at once) and interrupts here.

A member that fails stops the others the same way; the error names its log and
quotes its last lines. Finished members are kept: ``--resume`` trains only what
is left.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import wait
from pathlib import Path
from typing import TYPE_CHECKING, cast

from tqdm import tqdm

from agents.stopping import EXIT_INTERRUPTED, GracefulStop, JobInterrupted

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from agents.metatrain.config import MetaTrainConfig

#: Lines of a failed member's log quoted in the error.
TAIL_LINES = 5


def member_log(member: MetaTrainConfig) -> Path:
    """Where a member trained in a process of its own writes its output."""
    return Path(member.out_dir or ".") / "train.log"


def member_line(k: int, total: int, member: MetaTrainConfig) -> str:
    """The line an ensemble prints as its member ``k`` of ``total`` starts (either way)."""
    state = "continuing" if member.resume else "training"
    return f"ensemble member {k} of {total}: {state} seed {member.seed} in {member.out_dir}"


def _member_main(member: MetaTrainConfig, log: str) -> None:
    """A member process: its own process group, its output to ``log``, one `meta_train`."""
    os.setpgid(0, 0)  # a terminal's Ctrl-C reaches the ensemble's process, which passes it on
    from agents.metatrain.loop import meta_train

    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", buffering=1) as stream:
        os.dup2(stream.fileno(), 1)
        os.dup2(stream.fileno(), 2)
        sys.stdout = sys.stderr = stream  # the environment workers inherit the descriptors
        try:
            meta_train(member)
        except JobInterrupted as stop:
            print(stop, flush=True)
            code = EXIT_INTERRUPTED
        except Exception:  # into the log while it is open; the ensemble quotes its end
            traceback.print_exc(file=stream)
            code = 1
        else:
            code = 0
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    sys.exit(code)


def _tail(path: Path) -> str:
    """The last lines of a member's log (progress-bar redraws split into lines)."""
    try:
        text = path.read_text(errors="replace").replace("\r", "\n")
    except OSError:
        return "(no log)"
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-TAIL_LINES:]) or "(empty log)"


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


def train_at_once(members: Sequence[MetaTrainConfig], jobs: int, hint: str) -> None:
    """Train ``members`` with up to ``jobs`` of them at once; return when all have finished.

    Args:
        members: The member runs (`agents.metatrain.loop.ensemble_members`).
        jobs: How many run at once (>= 1).
        hint: The command that continues the ensemble run (for the messages).

    Raises:
        JobInterrupted: Stopped by a signal; the running members wrote their checkpoints.
        RuntimeError: A member failed (its log and last lines in the message); the others
            were stopped at their next step with their checkpoints.
    """
    context = multiprocessing.get_context("spawn")
    total = len(members)
    waiting = deque(enumerate(members, 1))
    running: dict[int, tuple[int, MetaTrainConfig, BaseProcess, float]] = {}
    failed: list[str] = []
    stopped = False  # the stop was passed on to the members

    def pass_on(sig: int) -> None:
        for _, _, process, _ in running.values():
            if process.pid is not None and process.exitcode is None:
                os.kill(process.pid, sig)

    bar = tqdm(total=total, desc="ensemble members", unit="member", dynamic_ncols=True)
    try:
        with GracefulStop("stopping the ensemble's members at their next step") as stop:
            while waiting or running:
                if (stop.requested or failed) and not stopped:
                    waiting.clear()
                    pass_on(signal.SIGTERM)
                    stopped = True
                while waiting and len(running) < jobs:
                    k, member = waiting.popleft()
                    log = member_log(member)
                    child = context.Process(
                        target=_member_main, args=(member, str(log)), name=f"member-s{member.seed}"
                    )
                    child.start()
                    running[child.sentinel] = (k, member, child, time.monotonic())
                    bar.write(f"{member_line(k, total, member)} (its output: {log})")
                try:
                    ready = wait(list(running), timeout=1.0)
                except InterruptedError:  # pragma: no cover - PEP 475 retries
                    continue
                for sentinel in ready:
                    k, member, process, started = running.pop(cast(int, sentinel))
                    process.join()
                    took = _minutes(time.monotonic() - started)
                    if process.exitcode == 0:
                        bar.update(1)
                        bar.write(
                            f"ensemble member {k} of {total} (seed {member.seed}) done in {took}"
                        )
                    elif process.exitcode == EXIT_INTERRUPTED and (stop.requested or failed):
                        bar.write(
                            f"ensemble member {k} of {total} (seed {member.seed}) stopped; its "
                            f"checkpoint is in {member.out_dir}"
                        )
                    else:
                        log = member_log(member)
                        failed.append(
                            f"member {k} of {total} (seed {member.seed}) failed (exit code "
                            f"{process.exitcode}); its output is in {log}, ending:\n{_tail(log)}"
                        )
    except KeyboardInterrupt:  # a second signal: the members abort too
        pass_on(signal.SIGTERM)
        for _, _, process, _ in running.values():
            process.join(timeout=30)
        raise
    finally:
        bar.close()
    if failed:
        raise RuntimeError(
            "\n".join(failed)
            + f"\nfinished members are kept; continue the ensemble run with: {hint}"
        )
    if stopped:
        raise JobInterrupted(
            f"interrupted; the stopped members have their checkpoints in their s<seed>/ "
            f"folders; continue the ensemble run with: {hint}"
        )
