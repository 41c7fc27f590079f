"""Rows from a run's own data for the callbacks that look at the data outside the training loop."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import lightning.pytorch as pl
import torch
from torch import Tensor


def datamodule_loader(trainer: pl.Trainer, stage: Literal["train", "test"]) -> Iterable | None:
    """A fresh loader from the trainer's datamodule, or None when the run was given bare dataloaders."""
    datamodule = trainer.datamodule
    if datamodule is None:
        return None
    return datamodule.train_dataloader() if stage == "train" else datamodule.test_dataloader()


def collect_rows(loader: Iterable, limit: int | None = None) -> tuple[Tensor, Tensor]:
    """``(x, y)`` from the loader's first batches, up to ``limit`` rows (all when None).

    Torch's RNG is forked, so reading a shuffled DataLoader here leaves the run's data order unchanged.
    """
    if hasattr(loader, "unsharded"):  # under DDP a TensorBatchLoader reads this rank's shard only
        loader = loader.unsharded()
    xs: list[Tensor] = []
    ys: list[Tensor] = []
    count = 0
    with torch.random.fork_rng(devices=[]):
        for batch in loader:
            xs.append(batch[0])
            ys.append(batch[1])
            count += len(batch[0])
            if limit is not None and count >= limit:
                break
    if not xs:
        raise ValueError("the dataloader yielded no batches; check the data paths and limits")
    return torch.cat(xs)[:limit], torch.cat(ys)[:limit]
