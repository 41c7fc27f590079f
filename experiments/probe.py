"""Whole-split metrics at chosen epochs, measured on the weights as they stand after that epoch.

The notebooks print the loss over the whole training set at the end of an epoch, not the mean of
the per-update losses during it; this callback measures the former, and test metrics, without
changing training (no optimiser state or random stream is touched).
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning.pytorch as pl
import torch
from torch import Tensor
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

from datamodules.base import TensorDataModule
from models.layers.heads import head_layer, output_activation, predicted_classes

EVAL_CHUNK_ROWS = 1024


class EpochProbe(pl.Callback):
    """Records ``{epoch, <split>/loss, ...}`` at epochs 1, 1 + every, ... and at each of ``epochs`` (1-based)."""

    def __init__(
        self,
        every: int = 0,
        epochs: Sequence[int] = (),
        splits: Sequence[str] = ("train", "test"),
        at_start: bool = False,
    ) -> None:
        """``at_start`` also records epoch 0, the initial weights (Lab 4 prints the loss before each update)."""
        self.every, self.epochs, self.splits, self.at_start = every, set(epochs), tuple(splits), at_start
        self.records: list[dict[str, float]] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.at_start:
            self.records.append({"epoch": 0, **self.measure(trainer, pl_module)})

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if epoch in self.epochs or (self.every and (epoch - 1) % self.every == 0):
            self.records.append({"epoch": epoch, **self.measure(trainer, pl_module)})

    @torch.no_grad()
    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        out: dict[str, float] = {}
        for split in self.splits:
            tensors = split_tensors(trainer.datamodule, split)
            if tensors is not None:
                out.update(split_metrics(pl_module, split, *tensors))
        return out


def split_tensors(datamodule: TensorDataModule, split: str) -> tuple[Tensor, Tensor] | None:
    """``(x, y)`` of a split, or None when the DataModule has no such split."""
    tensors = datamodule.tensors(split)
    return None if tensors is None else (tensors[0], tensors[1])


def split_metrics(module: pl.LightningModule, split: str, x: Tensor, y: Tensor) -> dict[str, float]:
    """Loss as the module minimises it, plus accuracy / macro F1 / class counts, or MSE for regression.

    The net is evaluated in evaluation mode, whatever mode it is in: no dropout mask is drawn from its
    generator, and batch norms use (and leave alone) their running statistics.
    """
    spec = module.spec
    x = x.to(module.device, module.dtype)
    y = y.to(module.device, module.dtype) if torch.is_floating_point(y) else y.to(module.device)
    training = module.net.training
    module.net.eval()
    try:  # in chunks: a conv net's im2col copies of a whole split would need gigabytes
        z = torch.cat([module.net(chunk) for chunk in x.split(EVAL_CHUNK_ROWS)])
    finally:
        module.net.train(training)
    loss = head_layer(spec.head, spec.reduction).forward(z, y)
    out = {f"{split}/loss": float(loss)}
    if spec.is_classifier:
        k = spec.num_classes
        preds, truth = predicted_classes(spec.head, z), y.reshape(-1).long()
        out[f"{split}/accuracy"] = float(multiclass_accuracy(preds, truth, k, average="micro"))
        out[f"{split}/f1"] = float(multiclass_f1_score(preds, truth, k, average="macro"))
        out[f"{split}/classes_predicted"] = float(len(torch.unique(preds)))
    else:
        out[f"{split}/mse"] = float(torch.mean((output_activation(spec.head, z).reshape(y.shape) - y) ** 2))
    return out
