"""A sweep on 2 gloo ranks, optionally cut after its first block or resumed, for the sweep's DDP resume test.

A script, not a pytest function, because the ``ddp`` strategy starts the other rank by running the same
command line again:

    python tests/ddp_sweep_run.py GRID [--cut | --resume RUN_DIR] -- <train.py arguments>

It prints the run directory on rank 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import lightning.pytorch as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from commands.sweep import run_sweep  # noqa: E402
from train import make_cli  # noqa: E402


class StopAfterFirstBlock(pl.Callback):
    """An interruption: the fit ends after its first training step (block of epochs)."""

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.should_stop = True


def main(argv: list[str]) -> None:
    split = argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("grid")
    parser.add_argument("--cut", action="store_true")
    parser.add_argument("--resume")
    options, train_args = parser.parse_args(argv[:split]), argv[split + 1 :]
    callbacks = [StopAfterFirstBlock()] if options.cut else None
    result = run_sweep(make_cli, train_args, options.grid, resume=options.resume, callbacks=callbacks)
    if pl.utilities.rank_zero_only.rank == 0:
        print(f"RUN_DIR={result.run_dir}")


if __name__ == "__main__":
    main(sys.argv[1:])
