"""Timing helpers: interleaved repeats, medians and spreads, measured in one process."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Timing:
    name: str
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def spread(self) -> str:
        return f"{min(self.seconds):.3f}-{max(self.seconds):.3f}"


def interleaved(paths: dict[str, Callable[[], object]], repeats: int) -> dict[str, Timing]:
    """Run every path once per round, ``repeats`` rounds, so machine drift hits all paths alike."""
    timings = {name: Timing(name) for name in paths}
    for _ in range(repeats):
        for name, run in paths.items():
            start = time.perf_counter()
            run()
            timings[name].seconds.append(time.perf_counter() - start)
    return timings


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started: Linux's VmHWM. ``ru_maxrss`` also counts what
    the parent held when it forked this process (a W11 point started by the benchmark read 3.9 GB)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:  # not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return int(status.split("VmHWM:")[1].split()[0]) / 1024.0


def current_rss_mb() -> float:
    """This process's resident memory now (Linux's VmRSS); 0 where /proc is missing."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:  # not Linux
        return 0.0
    return int(status.split("VmRSS:")[1].split()[0]) / 1024.0
