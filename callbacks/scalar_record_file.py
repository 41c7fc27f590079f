"""Many points of one scalar tag, written to an event file of their own through one open file.

TensorBoard's writer appends each record by opening and closing its event file, from a thread that takes the
records one by one off a queue, which costs more than the tiny nets' updates it records. Here the points of an
epoch are written together in TensorBoard's documented event-file format, the TFRecord framing (TensorFlow's
"TFRecord format details"): for each record, its length (uint64), the masked CRC-32C of the length, the data (one
serialised ``Event`` protocol buffer), and the masked CRC-32C of the data, all little-endian. The CRCs come from the
``crc32c`` package.

TensorBoard reads every event file of a run directory as one run. Its data server (the default loader) follows all
of them while a run is live; the older Python loader (``--load_fast false``) needs ``--reload_multifile true`` to
follow more than the newest file.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import time
from collections.abc import Sequence
from pathlib import Path

from crc32c import crc32c
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary

FILE_VERSION = "brain.Event:2"  # the first record of every event file, as TensorBoard's writers start theirs
FILE_NUMBERS = itertools.count()  # two files of one process in one second still get their own names
CRC_MASK_DELTA = 0xA282EAD8


def masked_crc(data: bytes) -> int:
    """The TFRecord format's masked CRC-32C: the CRC rotated right by 15 bits plus a constant, modulo 2**32."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + CRC_MASK_DELTA) & 0xFFFFFFFF


def framed_records(records: Sequence[bytes]) -> bytes:
    """``records`` framed one after another in the TFRecord format."""
    framed = []
    for data in records:
        length = struct.pack("<Q", len(data))
        framed += [length, struct.pack("<I", masked_crc(length)), data, struct.pack("<I", masked_crc(data))]
    return b"".join(framed)


class ScalarRecordFile:
    """``add(tag, values, first_step)`` writes ``values`` as the points ``first_step, first_step + 1, …``."""

    def __init__(self, log_dir: str | os.PathLike[str], label: str) -> None:
        # TensorBoard's own naming, with a label that says what the file holds
        stamp = f"{int(time.time())}.{socket.gethostname()}.{os.getpid()}.{next(FILE_NUMBERS)}"
        self.path = Path(log_dir) / f"events.out.tfevents.{stamp}.{label}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = self.path.open("xb")  # never over another run's file
        self.file.write(framed_records([Event(wall_time=time.time(), file_version=FILE_VERSION).SerializeToString()]))

    def add(self, tag: str, values: Sequence[float], first_step: int) -> None:
        event = Event(wall_time=time.time(), summary=Summary(value=[Summary.Value(tag=tag)]))
        point = event.summary.value[0]
        records = []
        for step, value in enumerate(values, start=first_step):  # one message, refilled: cheaper than new ones
            event.step = step
            point.simple_value = value
            records.append(event.SerializeToString())
        self.file.write(framed_records(records))

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()
