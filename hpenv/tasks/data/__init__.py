"""Datasets: where they are found, how they are read, processed and cached."""

from hpenv.tasks.data.catalog import DATASETS
from hpenv.tasks.data.loader import DataFormatError, DataNotFoundError, load_task_data
from hpenv.tasks.data.spec import DatasetInfo, RawSplits, TaskData, TextConfig

__all__ = [
    "DATASETS",
    "DataFormatError",
    "DataNotFoundError",
    "DatasetInfo",
    "RawSplits",
    "TaskData",
    "TextConfig",
    "load_task_data",
]
