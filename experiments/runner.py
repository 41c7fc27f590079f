"""Run one config in-process through the project's CLI, with overrides, and collect what it measured."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.cli import SaveConfigCallback

from callbacks.tensorboard_dashboard import TensorBoardDashboard
from experiments.probe import EpochProbe
from train import make_cli

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "experiments"
# Sweeps need no TensorBoard, checkpoints or progress bars; the base configs keep them for single runs.
QUIET = [
    "--trainer.logger=false",
    "--trainer.enable_checkpointing=false",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--weights_export.print_final=false",
    "--trainer.limit_val_batches=0",  # EpochProbe measures whole splits where a sweep needs them
    # with no logger, weight files and the like go to the trainer's root dir, not the working directory
    f"--trainer.default_root_dir={ROOT / 'runs' / 'experiments' / 'sweeps'}",
]


@dataclass
class RunResult:
    module: pl.LightningModule
    trainer: pl.Trainer
    datamodule: pl.LightningDataModule
    records: list[dict[str, float]]
    seconds: float  # wall time of fit alone

    @property
    def last(self) -> dict[str, float]:
        return self.records[-1] if self.records else {}

    def at(self, epoch: int) -> dict[str, float]:
        return next(r for r in self.records if r["epoch"] == epoch)


def config_path(name: str) -> Path:
    path = CONFIGS / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no experiment config {path}; the names are the files in {CONFIGS}")
    return path


def run(
    name: str,
    overrides: list[str] | None = None,
    probe: EpochProbe | None = None,
    quiet: bool = True,
    layers: Sequence[Path] = (),
    callbacks: Sequence[pl.Callback] = (),
) -> RunResult:
    """Fit ``configs/experiments/<name>.yaml``, then the config ``layers`` over it, with ``overrides``
    (CLI syntax), probing whole splits."""
    layer_args = [arg for layer in layers for arg in ("--config", str(layer))]
    args = ["--config", str(config_path(name)), *layer_args, *(QUIET if quiet else []), *(overrides or [])]
    cli = make_cli(args, run=False)
    probe = probe or EpochProbe(every=0)
    if quiet:  # no logger: the config would go into the working directory, and a dashboard has nowhere to draw
        unused = (SaveConfigCallback, TensorBoardDashboard)
        cli.trainer.callbacks[:] = [c for c in cli.trainer.callbacks if not isinstance(c, unused)]
    cli.trainer.callbacks.extend([probe, *callbacks])
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    seconds = time.perf_counter() - start
    if not probe.records or probe.records[-1]["epoch"] != cli.trainer.current_epoch:
        probe.records.append({"epoch": cli.trainer.current_epoch, **probe.measure(cli.trainer, cli.model)})
    return RunResult(cli.model, cli.trainer, cli.datamodule, probe.records, seconds)
