"""One line naming the machine and library versions, printed with every measured figure."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import lightning
import torch


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or what ``platform`` knows where that file is absent."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    names = (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    return next(names, platform.processor() or platform.machine())


def machine_summary() -> str:
    return (
        f"{cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"lightning {lightning.__version__}"
    )
