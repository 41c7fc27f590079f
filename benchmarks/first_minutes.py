"""What a new user meets first: the quick start's whole command, timed as a process, and the installed size of
the packages the project depends on."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from benchmarks.timing import Timing

ROOT = Path(__file__).resolve().parents[1]


def quick_start(repeats: int) -> Timing:
    """``python train.py compare --config configs/week04.yaml``, start-up included, output to a file."""
    timing = Timing("quick start: train.py compare --config configs/week04.yaml")
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as runs:
            command = [sys.executable, "train.py", "compare", "--config", "configs/week04.yaml"]
            command.append(f"--trainer.logger.init_args.save_dir={runs}")
            start = time.perf_counter()
            subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
            timing.seconds.append(time.perf_counter() - start)
    return timing


def distribution_bytes(name: str) -> int:
    """The bytes of every file an installed distribution recorded."""
    files = metadata.distribution(name).files or []
    return sum(path.locate().stat().st_size for path in files if path.locate().is_file())


def installed_sizes() -> dict[str, float]:
    """MB installed per group: torch, NVIDIA's CUDA libraries that its default Linux build pulls in, the rest."""
    sizes = {"torch": 0.0, "NVIDIA CUDA libraries": 0.0, "everything else": 0.0}
    for distribution in metadata.distributions():
        name = distribution.metadata["Name"] or ""
        group = "torch" if name == "torch" else "NVIDIA CUDA libraries" if name.startswith("nvidia") else None
        megabytes = distribution_bytes(name) / 1e6
        sizes[group or "everything else"] += megabytes
    sizes["all"] = sum(sizes.values())
    return sizes
