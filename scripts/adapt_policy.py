"""Adapt a frozen policy to a new task with a few cheap episodes of PPO.

Runs `agents.commands.adapt` (installed as ``hpenv-adapt``); see its ``--help``.
"""

from __future__ import annotations

import sys

from agents.commands.adapt import main

if __name__ == "__main__":
    sys.exit(main())
