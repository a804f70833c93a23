"""The meta-learner and everything built on a frozen policy (Stable-Baselines3 lives here).

Laid out by audience:

| package | for | what |
|---|---|---|
| `agents.metatrain` | training a policy | config, loop, checkpoints, callbacks, suites, vec envs |
| `agents.policy` | sharing a policy | the artifact, export, the shipped policies |
| `agents.deploy` | using a policy | `HyperController`, the job driver, HF / Lightning callbacks |
| `agents.evaluation` | judging a policy | the harness; `methods/`: every baseline |

The command-line programs live in `agents.commands` (installed as ``hpenv-train``,
``hpenv-evaluate``, ``hpenv-run``, ``hpenv-export``, ``hpenv-adapt``). Shared by
them: `agents.cli` (flags from config dataclasses), `agents.stopping` (clean
stops on SIGINT/SIGTERM) and `agents.cluster` (connecting to Ray: a cluster, or
a local instance); `agents.warn` attributes hpenv's warnings to the user's line.

The names users need most are importable from here directly (loaded on first use)::

    from agents import HyperController, load_policy, meta_train
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "HyperController": "agents.deploy.controller",
    "DriveConfig": "agents.deploy.drive",
    "drive_task": "agents.deploy.drive",
    "TrainingRunDriver": "agents.deploy.run_driver",
    "FrozenPolicy": "agents.policy.artifact",
    "load_policy": "agents.policy.artifact",
    "load_default_policy": "agents.policy.pretrained",
    "load_pretrained": "agents.policy.hub",
    "MetaTrainConfig": "agents.metatrain.config",
    "meta_train": "agents.metatrain.loop",
    "AdaptConfig": "agents.metatrain.adapt_config",
    "adapt_policy": "agents.metatrain.adapt",
    "EvalConfig": "agents.evaluation.config",
    "evaluate": "agents.evaluation.runner",
}

__all__ = sorted(_EXPORTS)


def __dir__() -> list[str]:
    """The module's own names and the lazily loaded ones (for ``dir()`` and tab completion)."""
    return sorted({*globals(), *_EXPORTS})


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")
