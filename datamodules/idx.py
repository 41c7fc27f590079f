"""Raw IDX files (the MNIST family's format), gzipped or not, read straight into arrays."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from datamodules.csv_table import DataError

IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes as a uint8 array of its stated shape."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(f"{path}: not a readable gzip file ({err}). Download it again.") from None
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number). Download it again.")
    ndim = raw[3]
    offset = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:offset])
    if len(raw) - offset != int(np.prod(shape)):
        raise DataError(
            f"{path}: header says shape {shape} ({int(np.prod(shape))} bytes) but {len(raw) - offset} bytes follow; "
            "the file is truncated or corrupt. Download it again."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


def find_idx_files(directories: list[Path]) -> dict[str, Path] | None:
    """The four IDX files, plain or ``.gz``, from the first directory holding all of them."""
    for directory in directories:
        found: dict[str, Path] = {}
        for stem in (name for pair in IDX_NAMES.values() for name in pair):
            for candidate in (directory / stem, directory / f"{stem}.gz"):
                if candidate.is_file():
                    found[stem] = candidate
                    break
        if len(found) == 4:
            return found
    return None
