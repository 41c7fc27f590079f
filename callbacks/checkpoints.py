"""Checkpoint files: written whole or not at all, and checked before anything reads them."""

from __future__ import annotations

import io
import os
import uuid
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from callbacks.disk import disk_error


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


def write_whole(path: Path, data: memoryview) -> None:
    """``data`` into a temporary file beside ``path``, flushed to the disk, then renamed to ``path`` in one step:
    a reader (or a crash) sees the old file or the new one, never half of one. A failed write removes its
    temporary file. The name starts with a dot and ends in ``.tmp``, so no ``*.ckpt`` glob picks it up; it holds
    the writer's process id, so a temporary file a killed process left behind is removed by the next save."""
    remove_left_behind(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with temporary.open("xb") as file:  # "x": a name of its own; the umask's permissions, as open() gives
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)  # a kill, a Ctrl-C or a full disk leaves the old name or the new, whole file
    except BaseException:  # also Ctrl-C in the middle of the write
        temporary.unlink(missing_ok=True)
        raise


def remove_left_behind(folder: Path) -> None:
    """Temporary files of :func:`write_whole` whose writing process no longer exists (killed mid-save)."""
    for leftover in folder.glob(".*.tmp"):
        parts = leftover.name.split(".")
        pid = parts[-3] if len(parts) >= 4 else ""
        if pid.isdigit() and not process_exists(int(pid)):
            leftover.unlink(missing_ok=True)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's
        return True
    return True


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written whole, in their own folder (see :func:`write_whole`). Lightning's own plugin writes
    its temporary file in the system's temporary folder and moves it, which on another filesystem is a copy that
    a full disk or a kill can cut short under the checkpoint's name. A full or read-only disk is one
    :class:`~callbacks.disk.DiskError` naming the folder and the space the checkpoint needs."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):  # remote storage: Lightning's fsspec transaction
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        data = buffer.getbuffer()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_whole(path, data)
        except OSError as error:
            refused = disk_error(error, path.parent, f"save the checkpoint {path.name}", needed=data.nbytes)
            if refused is None:
                raise
            raise refused from error
