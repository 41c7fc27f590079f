"""What a failed command leaves: one message for a mistake the user can fix, and no empty run directory.

Errors the user can fix (bad data, a bad config value, an unusable checkpoint) print ``error: <message>``
on stderr with no traceback and exit with status 2, as a command-line usage error does. Set
``BACKPROP_TRACEBACK=1`` to see the traceback as well. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from lightning.fabric.utilities.exceptions import MisconfigurationException

from callbacks.checkpoints import CheckpointError
from callbacks.disk import DiskError, disk_error
from datamodules.csv_table import DataError
from models.lightning_modules import DivergenceError
from models.schedules import ScheduleError

TRACEBACK_ENV = "BACKPROP_TRACEBACK"
USAGE_ERROR_STATUS = 2
# What a run directory holds before anything worth keeping was written: the config, the logger's metadata and
# the initial weights (written at fit start from the config's seed; a run refused at its start has nothing else).
SETUP_FILES = ("config.yaml", "hparams.yaml", "weights_initial.json")


class ConfigError(ValueError):
    """A config value a class refused; the message is the class's own, which names the key."""


USER_ERRORS = (DataError, ConfigError, CheckpointError, DivergenceError, ScheduleError, DiskError)


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error, then what it was raised from, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def as_config_error(error: ValueError) -> ValueError:
    """A class constructor's refusal, which jsonargparse wraps in its own ValueError listing every union
    member it tried, as the constructor's own message; other errors are returned unchanged."""
    innermost = list(causes(error))[-1]
    if isinstance(innermost, DataError):
        return innermost
    if innermost is not error and isinstance(innermost, ValueError):
        return ConfigError(str(innermost))
    return error


# Lines of a jsonargparse report that frame a complaint rather than state it.
REPORT_FRAMING = (
    "Does not validate",
    "Subtypes:",
    "Errors:",
    "Given value",
    "Problem with given class_path",
    "Parser key",
)


def expected_types(complaint: str) -> str:
    """jsonargparse's nested report (every union member it tried, the whole config's value) cut to what the
    innermost key wanted: "expected float", "expected one of 'sigmoid', 'tanh'", "module 'torch.optim' has
    no attribute 'Adamm'"."""
    start = max(complaint.rfind("Parser key"), complaint.rfind("Problem with given class_path"), 0)
    lines = [line.strip().lstrip("- ") for line in complaint[start:].splitlines()[1:]]
    reasons = [line for line in lines if line and not line.startswith(REPORT_FRAMING) and "NoneType" not in line]
    kinds: list[str] = []
    for match in re.finditer(r"Expected a (?:<class '([\w.]+)'>|typing\.Literal\[(.*?)\])", "\n".join(reasons)):
        kind = match.group(1) or f"one of {match.group(2)}"
        if kind not in kinds:
            kinds.append(kind)
    if kinds:
        return "expected " + " or ".join(kinds)
    if reasons:  # e.g. "... expects a function or a callable class: module 'torch.optim' has no attribute 'Adamm'"
        return reasons[0].rsplit(": ", 1)[-1] if "has no attribute" in reasons[0] else reasons[0]
    return complaint.strip().splitlines()[0]


def parser_complaint(message: str) -> str:
    """A jsonargparse error in one line: "model: lr = fast: expected float" for a nested type report (which
    lists every union member tried and the whole config's value); other messages as they are."""
    keys = re.findall(r'Parser key "([^"]+)":', message)
    first_line = message.strip().splitlines()[0]
    if not keys or not first_line.endswith(":"):  # not nested: "Parser key "config": File does not exist: ..."
        # a YAML error spans lines: "... while parsing a flow node / did not find ... / in "<unicode string>", line 3"
        return " ".join(message.replace('"<unicode string>"', "the config").split()).rstrip(".")
    innermost = message[message.rfind("Parser key") :]
    found = re.search(r"(?:Got|Given) value: (.+?)(?:\. Got value: .*)?$", innermost, re.M)
    found = found or re.search(r"val='([^']*)'", message)
    value = found.group(1) if found and not found.group(1).startswith(("{", "Namespace(")) else None
    where = keys[0] if len(keys) == 1 else f"{keys[0]}: {keys[-1]}"
    return f"{where}{f' = {value}' if value else ''}: {expected_types(message)}"


def checkpoint_argument(argv: list[str]) -> str | None:
    """The ``--ckpt_path`` given on the command line, if any, to name it in a message."""
    for i, arg in enumerate(argv):
        if arg.startswith("--ckpt_path="):
            return arg.split("=", 1)[1]
        if arg == "--ckpt_path" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def user_message(error: BaseException, checkpoint: str | None = None) -> str | None:
    """The one message to show for an error the user can fix, or None for a bug."""
    for cause in causes(error):
        if isinstance(cause, USER_ERRORS):
            return str(cause)
        if isinstance(cause, OSError) and cause.filename:  # a full or read-only disk under any other file written
            refused = disk_error(cause, Path(cause.filename).parent, f"write {Path(cause.filename).name}")
            if refused is not None:
                return str(refused)
        if isinstance(cause, argparse.ArgumentError):  # jsonargparse's, with exit_on_error off: no usage dump
            return f"{parser_complaint(str(cause))}. Every option: python train.py <command> --help"
        if isinstance(cause, MisconfigurationException):  # Lightning's: a trainer setting this machine cannot honour
            return (
                f"{cause} Check the trainer settings (--trainer.accelerator, --trainer.devices, --trainer.strategy); "
                "without a GPU, add --trainer configs/trainer/cpu.yaml."
            )
        if "weights_only" in str(cause):  # torch refused to unpickle: its advice to disable that is unsafe
            return (
                f"{f'--ckpt_path {checkpoint}: ' if checkpoint else ''}"
                "the checkpoint could not be loaded: it holds objects that are not plain weights, so it is not a "
                "checkpoint written by this project's train.py (or it was altered). Pass a .ckpt from "
                "runs/<name>/version_<n>/checkpoints/."
            )
    return None


def remove_if_empty(run_dir: Path) -> bool:
    """Delete a run directory that holds only setup files (config, hparams, initial weights, TensorBoard events)."""
    if not run_dir.is_dir():
        return False
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    if any(p.name not in SETUP_FILES and not p.name.startswith("events.out.tfevents") for p in files):
        return False
    shutil.rmtree(run_dir)
    return True


def report_and_exit(error: BaseException, run_dirs: list[Path], argv: list[str]) -> None:
    """Print the user's message and exit 2, or re-raise a bug (or anything, with BACKPROP_TRACEBACK=1)."""
    message = user_message(error, checkpoint_argument(argv))
    if message is None or os.environ.get(TRACEBACK_ENV, "") not in ("", "0"):
        raise error
    removed = [str(d) for d in run_dirs if remove_if_empty(d)]
    kept = [str(d) for d in run_dirs if d.is_dir()]  # it holds checkpoints or results from before the error
    note = f"\n(removed the empty run directory {', '.join(removed)})" if removed else ""
    note += f"\n(what the run wrote before this is kept in {', '.join(kept)})" if kept else ""
    print(f"error: {message}{note}\n(set {TRACEBACK_ENV}=1 to see the traceback)", file=sys.stderr)
    raise SystemExit(USAGE_ERROR_STATUS)
