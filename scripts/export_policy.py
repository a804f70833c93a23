"""Export a frozen policy artifact as TorchScript and/or ONNX.

Runs `agents.commands.export` (installed as ``hpenv-export``); see its ``--help``.
"""

from __future__ import annotations

import sys

from agents.commands.export import main

if __name__ == "__main__":
    sys.exit(main())
