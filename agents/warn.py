"""Warnings attributed to the user's line of code, not to ours or to a framework's.

hpenv's warnings are raised deep inside calls the user did not write: an
optimizer's step hook, a Lightning or Hugging Face callback, an SB3 callback.
A fixed ``stacklevel`` names whichever file happens to sit at that depth (for
a Lightning callback, Lightning's own ``trainer/call.py``). `warn` walks the
stack out of hpenv, the frameworks it runs inside and the standard library,
and attributes the warning to the first frame beyond them: the line in the
user's script, notebook or test that started the work. Python 3.12's
``skip_file_prefixes`` does the same; this works on 3.10 and 3.11 too.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import warnings
from types import FrameType

#: Packages whose frames are never the user's code (those not imported cannot be on the stack).
FRAMEWORKS = (
    "agents",
    "hpenv",
    "torch",
    "lightning",
    "lightning_fabric",
    "pytorch_lightning",
    "transformers",
    "accelerate",
    "stable_baselines3",
    "sb3_contrib",
    "gymnasium",
    "ray",
)


def _framework_dirs() -> tuple[str, ...]:
    dirs = []
    for name in FRAMEWORKS:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            dirs.append(os.path.dirname(os.path.abspath(path)) + os.sep)
    return tuple(dirs)


def _stdlib_dirs() -> tuple[str, tuple[str, ...]]:
    """The standard library's folder, and the site-packages folders that may lie inside it."""
    paths = sysconfig.get_paths()
    stdlib = os.path.abspath(paths["stdlib"]) + os.sep
    sites = tuple(os.path.abspath(paths[key]) + os.sep for key in ("purelib", "platlib"))
    return stdlib, sites


def user_stacklevel() -> int:
    """The ``stacklevel`` for the caller's ``warnings.warn`` that names the user's line.

    Returns:
        The level of the first frame outside hpenv, the frameworks (`FRAMEWORKS`)
        and the standard library, counted from the caller (1); 1 (the caller's
        own line) if every frame is inside them.
    """
    frameworks = _framework_dirs()
    stdlib, sites = _stdlib_dirs()

    def internal(frame: FrameType) -> bool:
        name = frame.f_code.co_filename
        path = os.path.abspath(name)
        if name.startswith("<frozen") or path.startswith(frameworks):
            return True
        return path.startswith(stdlib) and not path.startswith(sites)

    frame: FrameType | None = sys._getframe(1)  # the caller, which calls warnings.warn
    level = 1
    while frame is not None and internal(frame):
        frame, level = frame.f_back, level + 1
    return level if frame is not None else 1


def warn(message: str, category: type[Warning] = RuntimeWarning) -> None:
    """``warnings.warn(message, category)`` attributed to the user's line (`user_stacklevel`)."""
    warnings.warn(message, category, stacklevel=user_stacklevel())
