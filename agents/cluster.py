"""Connecting to Ray (a cluster, or a local instance) and telling a lost node from a bug.

Shared by meta-training on Ray actors (`agents.metatrain.ray_vec`), the
harness's cells as Ray tasks (`agents.evaluation.ray_cells`) and the PBT
baseline (`agents.evaluation.methods.pbt`).

Addresses (``--ray-address``): ``None`` or ``"local"`` start a Ray instance
on this machine for the block (and shut it down after); ``"auto"`` is Ray's
own detection (``RAY_ADDRESS``, else the cluster ``ray start`` began on this
machine); anything else is a cluster's head, ``HOST:6379``. When this process
is already connected (a caller's ``ray.init``), that connection is used and
left open.

`ray.init` installs a SIGTERM handler of its own; `ray_session` puts the
previous handler back when it shuts Ray down, so enter it *outside*
`agents.stopping.GracefulStop` (whose handler must win while the job runs).

Ray is imported inside these functions only (``pip install -e '.[ray]'``).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: ``--ray-address`` value that starts a Ray instance on this machine.
LOCAL = "local"


def is_local(address: str | None) -> bool:
    """True when ``address`` means a Ray instance started on this machine."""
    return address is None or address == LOCAL


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[bool]:
    """Ray connected for the block; yields whether this call started the connection.

    Args:
        address: Where Ray runs (see the module docstring).
        num_cpus: CPUs of a local instance (None: Ray counts the machine's);
            ignored when connecting to a cluster, whose nodes declare their own.

    Ray's own logging is set to ERROR, no dashboard is started and worker
    output is not forwarded (errors still reach the driver as exceptions).

    Raises:
        ImportError: Ray is not installed (the message says how to install it).
    """
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"{exc}: Ray is needed here; pip install -e '.[ray]'") from None

    if ray.is_initialized():  # the caller's connection: use it, leave it open
        yield False
        return
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    local = is_local(address)
    ray.init(
        address=LOCAL if local else address,
        num_cpus=num_cpus if local else None,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=True,
        logging_level=logging.ERROR,
    )
    try:
        yield True
    finally:
        ray.shutdown()
        if main and previous is not None:
            signal.signal(signal.SIGTERM, previous)


def lost_errors() -> tuple[type[BaseException], ...]:
    """The `ray.exceptions` that mean a worker or its node was lost (not a bug in our code).

    An actor that died (`RayActorError`, which covers ``ActorDiedError`` and
    ``ActorUnavailableError``), a worker process that crashed, a node that
    died, or an object that was lost with its node. Exceptions raised by our
    own code arrive as `ray.exceptions.RayTaskError` and are not among these.
    """
    from ray import exceptions

    return (
        exceptions.RayActorError,
        exceptions.WorkerCrashedError,
        exceptions.NodeDiedError,
        exceptions.ObjectLostError,
    )


def describe(exc: BaseException) -> str:
    """One line for a lost worker: the exception's type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def cluster_cpus() -> float:
    """CPUs of the connected cluster (all nodes, busy or not)."""
    import ray

    resources: dict[str, Any] = ray.cluster_resources()
    return float(resources.get("CPU", 0.0))
