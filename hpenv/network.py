"""Is the Hugging Face Hub reachable? One short probe per process, instead of minutes of retries.

Offline machines otherwise wait through the hub clients' retries (about 25 s
per dataset or policy, printing "Retrying..." lines) before failing. `hub_offline`
answers at once when the user said so (``HF_HUB_OFFLINE``, ``HF_DATASETS_OFFLINE``
or ``HPENV_NO_HUB``), else after one TCP connection attempt to the hub's host
(``HF_ENDPOINT``, default huggingface.co) with a short timeout, remembered for
the rest of the process.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from urllib.parse import urlparse

#: Seconds the probe waits for a TCP connection to the hub.
PROBE_TIMEOUT = 2.0
_TRUE = ("1", "true", "yes", "on")


def offline_setting() -> str | None:
    """The environment variable that declares this machine offline, if one is set."""
    for name in ("HPENV_NO_HUB", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in _TRUE:
            return name
    return None


@functools.cache
def _probe(host: str, port: int) -> tuple[bool, float]:
    start = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT):
            return True, time.perf_counter() - start
    except OSError:
        return False, time.perf_counter() - start


def hub_offline() -> str | None:
    """None if the hub may be used; else why not (one line, with how to skip the probe)."""
    setting = offline_setting()
    if setting is not None:
        return f"{setting} is set"
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    reachable, seconds = _probe(host, port)
    if reachable:
        return None
    return (
        f"{host} unreachable (probed in {seconds:.1f} s; set HF_HUB_OFFLINE=1 to skip the probe "
        "and use only the local Hugging Face cache)"
    )
