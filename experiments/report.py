"""RESULTS.md in the making: its markdown sections in run order and the figures directory beside it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure


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
