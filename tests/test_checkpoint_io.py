"""Checkpoints are written whole, in their own folder, or not at all; a full or read-only disk is one message
naming the folder (and, for a checkpoint, the space it needs), with no file left that fails to load."""

from __future__ import annotations

import errno
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from callbacks.checkpoints import AtomicCheckpointIO, check_checkpoint
from callbacks.disk import DiskError, check_writable, disk_error, readable_size
from commands.errors import user_message
from tests.test_cli_errors import fails_with_one_message, flower_args


def refuse_fsync_with(code: int):
    """An ``os.fsync`` that fails as a full (ENOSPC) or read-only (EROFS) disk does when data reaches it."""

    def fsync(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    return fsync


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_checkpoint_is_written_whole_with_no_temporary_file_left(tmp_path) -> None:
    path = tmp_path / "checkpoints" / "epoch=0-step=1.ckpt"  # the folder is created
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.arange(3.0)}, "epoch": 0}, path)
    check_checkpoint(path)
    assert torch.load(path, weights_only=True)["state_dict"]["w"].tolist() == [0.0, 1.0, 2.0]
    assert leftovers(path.parent) == [path.name]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() makes files, not mkstemp's 0600


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.ENOSPC, r"the disk is full \(No space left on device\)\. It needs {size}; .* are free there"),
        (errno.EROFS, r"Read-only file system \(the folder is read-only or not yours\)\. Make it writable"),
        (errno.EACCES, r"Permission denied \(the folder is read-only or not yours\)"),
    ],
)
def test_a_failed_save_is_one_message_and_leaves_the_previous_file_whole(tmp_path, monkeypatch, code, expected) -> None:
    path, new = tmp_path / "last.ckpt", {"epoch": 2, "state_dict": {"w": torch.zeros(1000)}}
    serialised = io.BytesIO()
    torch.save(new, serialised)
    writer = AtomicCheckpointIO()
    writer.save_checkpoint({"epoch": 1}, path)
    monkeypatch.setattr(os, "fsync", refuse_fsync_with(code))
    with pytest.raises(
        DiskError, match=expected.format(size=re.escape(readable_size(len(serialised.getvalue()))))
    ) as refused:
        writer.save_checkpoint(new, path)
    assert f"cannot save the checkpoint last.ckpt in {tmp_path}" in str(refused.value)
    assert leftovers(tmp_path) == ["last.ckpt"]  # the temporary file is gone
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}  # the old checkpoint, whole


def test_other_write_failures_keep_their_traceback(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(os, "fsync", refuse_fsync_with(errno.EIO))
    with pytest.raises(OSError, match="Input/output error") as raised:
        AtomicCheckpointIO().save_checkpoint({"epoch": 1}, tmp_path / "x.ckpt")
    assert not isinstance(raised.value, DiskError)
    assert leftovers(tmp_path) == []


def test_the_space_needed_is_in_decimal_units() -> None:
    assert [readable_size(n) for n in (0, 999, 13_141, 2_500_000, 7 * 10**9)] == [
        "0 B",
        "999 B",
        "13.1 kB",
        "2.5 MB",
        "7.0 GB",
    ]


def test_a_full_disk_under_any_other_file_is_one_message(tmp_path) -> None:
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "weights_final.json"))
    assert user_message(full) == str(disk_error(full, tmp_path / "run", "write weights_final.json"))
    assert user_message(full).startswith(f"cannot write weights_final.json in {tmp_path / 'run'}: the disk is full")
    assert user_message(OSError(errno.EIO, "Input/output error", "x")) is None  # a bug: its traceback stays


def test_a_run_folder_that_cannot_be_created_is_named(tmp_path, monkeypatch) -> None:
    blocking = tmp_path / "runs"
    blocking.write_text("a file where the runs folder should be")
    with pytest.raises(DiskError, match=rf"cannot create {blocking / 'x'}: {blocking} is a file, not a folder"):
        check_writable(blocking / "x")
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # root writes anywhere; a user may not
    with pytest.raises(DiskError, match=rf"{tmp_path} is read-only \(or not writable by this user\)"):
        check_writable(tmp_path / "new" / "version_0")


def test_a_read_only_save_dir_fails_before_anything_is_written(tmp_path, monkeypatch, capsys) -> None:
    save_dir = tmp_path / "runs"
    save_dir.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: path != save_dir and real_access(path, mode))
    args = [*flower_args(tmp_path, "--trainer.max_epochs=1"), f"--trainer.logger.init_args.save_dir={save_dir}"]
    line = fails_with_one_message(args, capsys)
    assert f"cannot create {save_dir / 'flower' / 'version_0'}: {save_dir} is read-only" in line
    assert "--trainer.logger.init_args.save_dir" in line
    assert leftovers(save_dir) == []


def test_a_full_disk_during_fit_is_one_message_and_no_checkpoint_is_cut_short(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(os, "fsync", refuse_fsync_with(errno.ENOSPC))
    line = fails_with_one_message(flower_args(tmp_path, "--trainer.max_epochs=1", "--test_after_fit=false"), capsys)
    checkpoints = tmp_path / "runs" / "flower" / "version_0" / "checkpoints"
    assert re.match(
        rf"error: cannot save the checkpoint epoch=\S+\.ckpt in {re.escape(str(checkpoints))}: the disk is full", line
    )
    assert "It needs" in line and "are free there" in line
    assert not checkpoints.exists() or leftovers(checkpoints) == []  # no half file, no temporary file


def test_a_full_disk_under_the_weights_file_is_one_message(tmp_path, monkeypatch, capsys) -> None:
    real_write_text = Path.write_text

    def write_text(path: Path, *args, **kwargs) -> int:
        if path.name == "weights_final.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_write_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    line = fails_with_one_message(flower_args(tmp_path, "--trainer.max_epochs=1", "--test_after_fit=false"), capsys)
    run = tmp_path / "runs" / "flower" / "version_0"
    assert line.startswith(f"error: cannot write weights_final.json in {run}: the disk is full (No space left")


def test_a_temporary_file_a_killed_save_left_is_removed_by_the_next_save(tmp_path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = tmp_path / f".epoch=1-step=1.ckpt.{int(dead.stdout)}.0123abcd.tmp"  # a process that no longer exists
    left.write_bytes(b"half a checkpoint")
    alive = tmp_path / f".epoch=1-step=1.ckpt.{os.getpid()}.0123abcd.tmp"  # one being written right now
    alive.write_bytes(b"in progress")
    AtomicCheckpointIO().save_checkpoint({"epoch": 2}, tmp_path / "epoch=2-step=2.ckpt")
    assert not left.exists() and alive.exists()
