"""Meta-train the PPO agent across tasks (the product's main job; `make train`).

Runs `agents.commands.train` (installed as ``hpenv-train``); see its ``--help``.
"""

from __future__ import annotations

import sys

from agents.commands.train import main

if __name__ == "__main__":
    sys.exit(main())
