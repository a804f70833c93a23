"""The meta-training run's SB3 logger: TensorBoard events and ``progress.csv``, resumable.

SB3's own CSV output opens ``progress.csv`` for writing, so a resumed run
would lose every row logged before the resume. Here a resumed run keeps the
rows up to the checkpoint's step, drops the ones logged after it (that part of
the run is trained again) and appends; TensorBoard's writer is opened with
``purge_step`` so that the events after the checkpoint are hidden the same
way. Every logged step then appears once.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from stable_baselines3.common.logger import CSVOutputFormat, Logger, TensorBoardOutputFormat
from torch.utils.tensorboard import SummaryWriter

from hpenv.io import atomic_open

#: The column SB3 writes the agent step into.
STEP_COLUMN = "time/total_timesteps"


class ResumedCSVOutputFormat(CSVOutputFormat):
    """SB3's CSV output, continuing an existing file from ``step`` (rows after it dropped)."""

    def __init__(self, filename: str, step: int) -> None:
        path = Path(filename)
        keys: list[str] = []
        if path.is_file():
            keys = _truncate_after(path, step)
        if keys:
            self._open(filename)
        else:
            super().__init__(filename)
        self.keys = keys

    def _open(self, filename: str) -> None:
        # SB3 seeks back and rewrites the header when new keys appear: read-write, at the end.
        self.file = open(filename, "r+")  # noqa: SIM115 (closed by KVWriter.close)
        self.file.seek(0, io.SEEK_END)
        self.separator = ","
        self.quotechar = '"'


def _truncate_after(path: Path, step: int) -> list[str]:
    """Rewrite ``path`` (atomically) without the rows logged after ``step``; its header."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    column = header.index(STEP_COLUMN) if STEP_COLUMN in header else None
    kept = [r for r in body if column is None or not r[column] or float(r[column]) <= step]
    with atomic_open(path, "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(kept)
    return header


class ResumedTensorBoardOutputFormat(TensorBoardOutputFormat):
    """SB3's TensorBoard output; events after ``step`` from earlier sessions are purged."""

    def __init__(self, folder: str, step: int) -> None:
        self.writer = SummaryWriter(log_dir=folder, purge_step=step + 1)
        self._is_closed = False


def make_logger(folder: Path, resume_step: int | None = None) -> Logger:
    """TensorBoard + ``progress.csv`` in ``folder``; continuing from ``resume_step`` if given."""
    csv_path = str(folder / "progress.csv")
    if resume_step is None:
        formats = [TensorBoardOutputFormat(str(folder)), CSVOutputFormat(csv_path)]
    else:
        formats = [
            ResumedTensorBoardOutputFormat(str(folder), resume_step),
            ResumedCSVOutputFormat(csv_path, resume_step),
        ]
    return Logger(folder=str(folder), output_formats=formats)
