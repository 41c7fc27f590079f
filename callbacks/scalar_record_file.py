"""Many points of one scalar tag, written to an event file of their own through one open file.

TensorBoard's writer appends each record by opening and closing its event file (its local-disk
``GFile``), from a thread that takes the records one by one off a queue: about 40 µs a point here,
0.5 s for week 4's 12,000 per-update losses, most of what the dashboard cost. Here the records of
an epoch are framed together: TensorBoard's framing (length, CRC-32C of the length, data, CRC-32C
of the data, as its ``RecordWriter`` writes them, byte for byte: ``tests/test_tensorboard.py``),
with the data CRCs computed for all records of one length at once by NumPy over TensorBoard's own
CRC table, where ``RecordWriter`` loops over every byte in Python: 4 µs a point instead of 13.

TensorBoard reads every event file of a run directory as one run. Its data server (the default,
``--load_fast auto``) follows all of them while a run is live; the older Python loader
(``--load_fast false``) follows only the file whose name sorts last, so this file's name sorts
first and the main event file (epoch metrics, figures, HParams) is the one it follows.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import CRC_TABLE, masked_crc32c

FILE_VERSION = "brain.Event:2"  # the first record of every event file, as TensorBoard's writers start theirs
FILE_NUMBERS = itertools.count()  # two files of one process in one second still get their own names
CRC_TABLE_ARRAY = np.array(CRC_TABLE, dtype=np.uint32)


def masked_crc32c_rows(rows: np.ndarray) -> np.ndarray:
    """TensorBoard's ``masked_crc32c`` of every row of a (records, bytes) uint8 array at once."""
    crc = np.full(rows.shape[0], 0xFFFFFFFF, dtype=np.uint32)
    for column in rows.T:  # the table-driven CRC-32C, one byte of every record per step
        crc = CRC_TABLE_ARRAY[(crc ^ column) & 0xFF] ^ (crc >> 8)
    crc ^= np.uint32(0xFFFFFFFF)
    return ((crc >> 15) | (crc << 17)) + np.uint32(0xA282EAD8)  # the mask; uint32 arithmetic wraps


def framed_records(records: Sequence[bytes]) -> bytes:
    """``records`` framed as TensorBoard's ``RecordWriter.write`` frames each: length (uint64), masked CRC
    of the length, the data, masked CRC of the data, all little-endian."""
    lengths = np.array([len(r) for r in records])
    framed: list[bytes] = [b""] * len(records)
    for length in np.unique(lengths):
        which = np.flatnonzero(lengths == length)
        rows = np.frombuffer(b"".join(records[i] for i in which), dtype=np.uint8).reshape(len(which), int(length))
        header = struct.pack("<Q", int(length))
        header += struct.pack("<I", masked_crc32c(header))
        crcs = masked_crc32c_rows(rows).astype("<u4").tobytes()  # 4 bytes a record
        for k, i in enumerate(which):
            framed[i] = header + records[i] + crcs[4 * k : 4 * k + 4]
    return b"".join(framed)


class ScalarRecordFile:
    """``add(tag, values, first_step)`` writes ``values`` as the points ``first_step, first_step + 1, …``."""

    def __init__(self, log_dir: str | os.PathLike[str], label: str) -> None:
        # "0." sorts before the timestamps that start the names of TensorBoard's own event files
        stamp = f"{int(time.time())}.{socket.gethostname()}.{os.getpid()}.{next(FILE_NUMBERS)}"
        self.path = Path(log_dir) / f"events.out.tfevents.0.{label}.{stamp}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("xb")  # never over another run's file
        self._file.write(framed_records([Event(wall_time=time.time(), file_version=FILE_VERSION).SerializeToString()]))

    def add(self, tag: str, values: Sequence[float], first_step: int) -> None:
        event = Event(wall_time=time.time(), summary=Summary(value=[Summary.Value(tag=tag)]))
        point = event.summary.value[0]
        records = []
        for step, value in enumerate(values, start=first_step):  # one message, refilled: 6x faster than new ones
            event.step = step
            point.simple_value = value
            records.append(event.SerializeToString())
        self._file.write(framed_records(records))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
