"""W5 (recorded only): Fashion-MNIST from Debian's package into whole-split tensors.

``ours`` is what a run pays before its first step: ``MNISTDataModule("fashion_mnist")`` finds and reads
the four IDX files, splits off validation, normalises each split once and cuts the first batch.
``plain_read`` is the least that work can cost: gunzip, ``numpy.frombuffer`` and one scaling of the
same files. This was a test's wall-time bound (< 20 s) before timings left the tests.
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import numpy as np
import torch

from benchmarks.timing import interleaved
from datamodules.mnist import STANDARD_STATS, MNISTDataModule

SYSTEM_FILES = Path("/usr/share/datasets/fashion-mnist")
MEAN, STD = STANDARD_STATS["fashion_mnist"]
HEADER_BYTES = {"images": 16, "labels": 8}  # IDX magic + shape: 4 + 4 * ndim bytes


def plain_read() -> dict[str, torch.Tensor]:
    """Every file as a tensor, images standardised: no search, checks, split or batching."""
    tensors = {}
    for path in sorted(SYSTEM_FILES.glob("*-ubyte.gz")):
        kind = "images" if "images" in path.name else "labels"
        array = np.frombuffer(gzip.decompress(path.read_bytes()), dtype=np.uint8, offset=HEADER_BYTES[kind])
        tensor = torch.from_numpy(array.copy())
        tensors[path.name] = (tensor.to(torch.float32) / 255 - MEAN) / STD if kind == "images" else tensor.long()
    return tensors


def ours(data_dir: str) -> None:
    dm = MNISTDataModule("fashion_mnist", data_dir=data_dir, download=False)
    dm.setup("fit")
    for split in ("train", "val", "test"):
        dm.tensors(split)
    next(iter(dm.train_dataloader()))


def run(repeats: int) -> dict:
    if not SYSTEM_FILES.is_dir():
        raise SystemExit(f"W5 needs {SYSTEM_FILES}: apt-get install -y dataset-fashion-mnist")
    data_dir = tempfile.mkdtemp(prefix="bench_w5_")
    timings = interleaved({"plain_read": plain_read, "ours": lambda: ours(data_dir)}, repeats)
    return {
        "timings": timings,
        "ratios": {"ours / plain_read": timings["ours"].median / timings["plain_read"].median},
    }
