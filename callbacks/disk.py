"""Where a run writes: a full or read-only disk is one message naming the folder and what it needs."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}
ELSEWHERE = "or write the runs elsewhere (--trainer.logger.init_args.save_dir)"


class DiskError(ValueError):
    """A folder a run writes into is full or not writable; nothing half-written was left there."""


def readable_size(size: int) -> str:
    """``13107`` -> ``13.1 kB``: decimal units, as ``df -H`` prints them."""
    power = min(len(str(max(size, 1))) - 1, 12) // 3
    return f"{size} B" if power == 0 else f"{size / 1000**power:.1f} {'kMGT'[power - 1]}B"


def free_space(folder: Path) -> str:
    """The space left on ``folder``'s disk, or ``unknown`` when even that cannot be read."""
    try:
        return readable_size(shutil.disk_usage(folder).free)
    except OSError:
        return "an unknown amount"


def disk_error(error: OSError, folder: Path, action: str, needed: int | None = None) -> DiskError | None:
    """``error`` as one message when it is a full or read-only disk (``action``: what could not be done, e.g.
    "save the checkpoint x.ckpt"); None for any other failure, which stays a bug with its traceback."""
    if error.errno in FULL:
        need = f" It needs {readable_size(needed)};" if needed is not None else ""
        return DiskError(
            f"cannot {action} in {folder}: the disk is full ({error.strerror}).{need} {free_space(folder)} "
            f"are free there. Free some space, {ELSEWHERE}."
        )
    if error.errno in NOT_WRITABLE:
        return DiskError(
            f"cannot {action} in {folder}: {error.strerror} (the folder is read-only or not yours). Make it "
            f"writable, {ELSEWHERE}."
        )
    return None


def check_writable(folder: Path) -> None:
    """A run can create ``folder``: its nearest existing ancestor is a writable folder. Checked before anything
    is written, so a read-only ``save_dir`` fails before the logger's first write, not inside the Trainer."""
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise DiskError(f"cannot create {folder}: {existing} is a file, not a folder. Remove it, {ELSEWHERE}.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DiskError(
            f"cannot create {folder}: {existing} is read-only (or not writable by this user). Make it writable, "
            f"{ELSEWHERE}."
        )
