"""Many points of one scalar tag, written to an event file of their own through one open file.

TensorBoard's writer appends each record by opening and closing its event file (its local-disk
``GFile``), from a thread that takes the records one by one off a queue: about 40 µs a point here,
0.5 s for week 4's 12,000 per-update losses, most of what the dashboard cost. The same records,
framed by TensorBoard's own ``RecordWriter`` onto a file kept open, cost about 11 µs a point
(``benchmarks/w6_dashboard_cost.py`` measures the whole dashboard).

TensorBoard reads every event file of a run directory as one run. Its data server (the default,
``--load_fast auto``) follows all of them while a run is live; the older Python loader
(``--load_fast false``) follows only the file whose name sorts last, so this file's name sorts
first and the main event file (epoch metrics, figures, HParams) is the one it follows.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.record_writer import RecordWriter

FILE_VERSION = "brain.Event:2"  # the first record of every event file, as TensorBoard's writers start theirs
FILE_NUMBERS = itertools.count()  # two files of one process in one second still get their own names


class ScalarRecordFile:
    """``add(tag, values, first_step)`` writes ``values`` as the points ``first_step, first_step + 1, …``."""

    def __init__(self, log_dir: str | os.PathLike[str], label: str) -> None:
        # "0." sorts before the timestamps that start the names of TensorBoard's own event files
        stamp = f"{int(time.time())}.{socket.gethostname()}.{os.getpid()}.{next(FILE_NUMBERS)}"
        name = f"events.out.tfevents.0.{label}.{stamp}"
        self.path = Path(log_dir) / name
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("xb")  # never over another run's file
        self._records = RecordWriter(self._file)
        self._records.write(Event(wall_time=time.time(), file_version=FILE_VERSION).SerializeToString())

    def add(self, tag: str, values: Sequence[float], first_step: int) -> None:
        event = Event(wall_time=time.time(), summary=Summary(value=[Summary.Value(tag=tag)]))
        point = event.summary.value[0]
        for step, value in enumerate(values, start=first_step):  # one message, refilled: 6x faster than new ones
            event.step = step
            point.simple_value = value
            self._records.write(event.SerializeToString())

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
