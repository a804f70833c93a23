"""What is trained: datasets, model families, and the task registry.

>>> from hpenv.tasks import get_task
>>> get_task("digits").defaults.optimizer
'adam'
"""

from hpenv.tasks.data import DataNotFoundError, TaskData, TextConfig
from hpenv.tasks.registry import TASKS, UnknownTaskError, get_task, list_tasks, registered
from hpenv.tasks.spec import Task
from hpenv.tasks.synthetic import SyntheticFamily, SyntheticSpec

__all__ = [
    "TASKS",
    "DataNotFoundError",
    "SyntheticFamily",
    "SyntheticSpec",
    "Task",
    "TaskData",
    "TextConfig",
    "UnknownTaskError",
    "get_task",
    "list_tasks",
    "registered",
]
