"""Stopping long jobs cleanly on SIGINT (Ctrl-C) and SIGTERM (cluster schedulers).

The first signal only asks the job to stop: the job finishes the step it is
in, writes its checkpoint, closes its workers and exits with status 130, with
one line saying where the checkpoint is. A second signal interrupts at once
(``KeyboardInterrupt``). Worker processes ignore both signals (`ignore_stop_signals`):
a Ctrl-C in a terminal reaches the whole process group, and only the main
process decides how to stop.

Example:
    >>> with GracefulStop() as stop:
    ...     while not stop.requested:
    ...         break  # one unit of work
    >>> stop.requested
    False
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

#: Exit status of a job stopped by a signal (the shell's 128 + SIGINT).
EXIT_INTERRUPTED = 130
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class JobInterrupted(KeyboardInterrupt):
    """A job stopped on request; ``str()`` is the one line to print (where to resume from)."""


class GracefulStop:
    """Context manager turning SIGINT/SIGTERM into a ``requested`` flag.

    Handlers are installed only in the main thread (elsewhere Python forbids
    it and the flag simply stays False); the previous handlers are restored on
    exit.

    Args:
        message: Printed to stderr at the first signal.
    """

    def __init__(self, message: str = "stopping after the current step (signal again to abort)"):
        self.message = message
        self.requested = False
        self.signal_name = ""
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name
        print(f"\n{self.signal_name}: {self.message}", file=sys.stderr, flush=True)


def ignore_stop_signals() -> None:
    """In a worker process: leave SIGINT and SIGTERM to the main process."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
