"""RESULTS.md pieces: markdown tables from measured rows, the machine, and the figures directory."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lightning
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def fmt(value: object, digits: int = 6) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "" if value is None else str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[object]], digits: int = 6) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v, digits) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    model = next(
        (line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")),
        cpu,
    )
    return (
        f"{model}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"lightning {lightning.__version__}"
    )


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def new_figure(width: float = 6.4, height: float = 4.4) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


@dataclass
class Report:
    """Sections of markdown in run order; figures are saved next to RESULTS.md under ``results/``."""

    out_dir: Path
    sections: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def figure_dir(self) -> Path:
        path = self.out_dir / "results"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def add(self, *parts: str) -> None:
        self.sections.append("\n\n".join(parts))

    def figure(self, figure: Figure, name: str, caption: str) -> str:
        """Save ``figure`` as ``results/<name>.png`` and return the markdown image line."""
        figure.savefig(self.figure_dir / f"{name}.png")
        return f"![{caption}](results/{name}.png)"
