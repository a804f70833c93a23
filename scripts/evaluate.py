"""Evaluate a frozen policy against every registered baseline.

Runs `agents.commands.evaluate` (installed as ``hpenv-evaluate``); see its ``--help``.
"""

from __future__ import annotations

import sys

from agents.commands.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
