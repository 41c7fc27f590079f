"""Checkpoint files: whether one is whole, before anything reads it."""

from __future__ import annotations

import zipfile
from pathlib import Path


class CheckpointError(ValueError):
    """``--ckpt_path`` names no usable checkpoint."""


def check_checkpoint(path: str | Path) -> None:
    """A missing, empty, truncated or non-checkpoint file fails here, with its path, before any run starts."""
    path = Path(path)
    where = f"--ckpt_path {path}"
    if not path.is_file():
        raise CheckpointError(f"{where}: {'a directory' if path.is_dir() else 'no such file'}. Check the path.")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{where}: the file is empty (an interrupted save?). Use another checkpoint.")
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            records = {name.split("/", 1)[-1] for name in archive.namelist()}
    except zipfile.BadZipFile:
        raise CheckpointError(
            f"{where}: not a PyTorch checkpoint, or cut short (it is not the zip archive torch.save writes). "
            "Use a .ckpt from runs/<name>/version_<n>/checkpoints/."
        ) from None
    if damaged is not None:
        raise CheckpointError(f"{where}: damaged ({damaged} fails its checksum). Use another checkpoint.")
    if not {"data.pkl", "version"} <= records:
        raise CheckpointError(
            f"{where}: a zip archive, but not one torch.save wrote (no data.pkl and version records). "
            "Use a .ckpt from runs/<name>/version_<n>/checkpoints/."
        )
