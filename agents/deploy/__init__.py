"""A frozen policy driving real training jobs.

| module | what lives there |
|---|---|
| `controller` | `HyperController`: any ``torch.optim`` optimizer, any training loop |
| `drive` | `drive_task`: a full job of a registered task (``scripts/run_policy.py``) |
| `integrations` | Hugging Face ``Trainer`` and Lightning callbacks |
"""

from agents.deploy.controller import HyperController, InvalidMetricsError
from agents.deploy.drive import DriveConfig, drive_task

__all__ = ["DriveConfig", "HyperController", "InvalidMetricsError", "drive_task"]
