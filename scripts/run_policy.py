"""Let a frozen policy drive a new full training job of any registered task.

Runs `agents.commands.run` (installed as ``hpenv-run``); see its ``--help``.
"""

from __future__ import annotations

import sys

from agents.commands.run import main

if __name__ == "__main__":
    sys.exit(main())
