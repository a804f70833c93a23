"""A frozen policy driving real training jobs.

| module | what lives there |
|---|---|
| `controller` | `HyperController`: any ``torch.optim`` optimizer, any training loop |
| `run_driver` | `TrainingRunDriver`: a `TrainingRun` in sample-counted intervals, batch size too |
| `drive` | `drive_task`: a full job of a registered task (``scripts/run_policy.py``) |
| `decision_log` | `DecisionLog`: the trajectory and TensorBoard tags both drivers write |
| `integrations` | Hugging Face ``Trainer`` and Lightning callbacks (optimizer values only) |
"""

from agents.deploy.controller import HyperController, InvalidMetricsError
from agents.deploy.drive import DriveConfig, drive_task
from agents.deploy.run_driver import TrainingRunDriver

__all__ = [
    "DriveConfig",
    "HyperController",
    "InvalidMetricsError",
    "TrainingRunDriver",
    "drive_task",
]
