"""Safe file I/O: atomic writes, and reads that never run code from a file.

Every artifact the project writes (data caches, checkpoints, reports) goes
through these helpers: the bytes go to a temporary file in the destination
directory, are flushed to disk, then renamed over the target in one step.

Every ``torch`` file the project reads goes through `safe_torch_load`: tensors
and plain containers only (``weights_only=True``), so a crafted checkpoint or
policy file cannot execute code when it is loaded.

A directory that one process at a time may write (an evaluation's report
directory) is held with `exclusive_lock`.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import torch

from hpenv.errors import InputError


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success rename it onto ``path``.

    If the body raises, the temporary file is removed and ``path`` is untouched.

    Args:
        path: Final destination. Parent directories are created.
        mode: ``"wb"`` or ``"w"``.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open supports modes 'wb' and 'w', not {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` that never leaves a truncated file behind."""
    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)


#: The first bytes of a ``torch.save`` file: a zip archive (since torch 1.6) or a pickle.
_ZIP_MAGIC = b"PK\x03\x04"
_TORCH_MAGIC = (_ZIP_MAGIC, b"\x80")


class UnsafeFileError(InputError):
    """A file could not be read as tensors and plain values (damaged, foreign or crafted)."""


def safe_torch_load(
    path: str | os.PathLike[str], what: str, map_location: str | torch.device = "cpu"
) -> Any:
    """``torch.load`` restricted to tensors and plain Python values (no code runs).

    Args:
        path: The file.
        what: What the file should be (for the message), e.g. ``"meta-training checkpoint"``.
        map_location: Device the tensors are loaded to.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafeFileError: The file is empty, not a torch file at all (another kind
            of file: nothing to repair), truncated, or holds objects other than
            tensors and plain values. The message says so in its own words:
            torch's advice to load with ``weights_only=False`` (which would run
            any code in the file) is never passed on.
    """
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"no {what} at {target}")
    with target.open("rb") as fh:
        head = fh.read(len(_ZIP_MAGIC))
    if not head:
        raise UnsafeFileError(f"{target} is empty, not a {what}")
    if not head.startswith(_TORCH_MAGIC):
        raise UnsafeFileError(f"{target} is not a {what}: it is not a torch file at all")
    try:
        return torch.load(target, weights_only=True, map_location=map_location)
    except Exception as exc:
        unsafe = isinstance(exc, pickle.UnpicklingError) or "weights_only" in str(exc)
        reason = (
            "it holds objects other than tensors and plain values, which hpenv never "
            "unpickles (loading them could run code from the file)"
            if unsafe
            else f"it is truncated or not a torch file ({type(exc).__name__})"
        )
        raise UnsafeFileError(
            f"{target} is not a readable {what}: {reason}. If you wrote it with this "
            "version of hpenv it is damaged: write it again; do not load it another way."
        ) from None


def atomic_write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_open(path, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True)
        fh.write("\n")


class LockedError(FileExistsError):
    """Another live process holds the lock file; the message names it."""


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Hold the lock file ``path`` for the body, or refuse at once if another process does.

    The lock is the kernel's (``fcntl.flock``, POSIX), so a process that dies, even
    by SIGKILL, holds nothing: a lock file it left behind is simply taken over. The
    file names its holder (PID, host, start time) for the message of whoever is
    refused, and is removed when the body ends.

    Args:
        path: The lock file (created if needed).
        what: The refusal's message; the holder is added in brackets.

    Raises:
        LockedError: Another process holds the lock.
    """
    import fcntl

    target = Path(path)
    while True:
        fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "a process"
            os.close(fd)
            raise LockedError(f"{what} ({holder})") from None
        if _same_file(fd, target):
            break
        os.close(fd)  # its holder removed the file we opened: lock the one there now
    try:
        since = time.strftime("%Y-%m-%d %H:%M:%S")
        holder = f"pid {os.getpid()} on {socket.gethostname()} since {since}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode(), 0)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)  # while still locked: a waiting opener sees another inode
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def read_json_object(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """The JSON object in ``path`` (a run's ``config.json``, say), checked.

    Args:
        path: The file.
        what: What the file should be (for the message), e.g. ``"meta-training run config"``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        InputError: The file is not valid JSON, or holds something other than an
            object; the message names the file.
    """
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"no {what} at {target}")
    try:
        value = json.loads(target.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{target} is not valid JSON ({exc}); it should hold the {what}") from None
    if not isinstance(value, dict):
        kind = type(value).__name__
        raise InputError(f"{target} holds a JSON {kind}, not an object: it should hold the {what}")
    return value
