"""Writes ``predict`` results as a CSV next to the run: the input rows in their original units, then
the predicted class and class probabilities, or the regression value back in the target's units."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.distributed as dist
from torch import Tensor

from models.console import say


def free_path(path: Path) -> Path:
    """``path``, or ``name_1.csv``, ``name_2.csv``, ... : an existing file is never overwritten."""
    candidate, k = path, 0
    while candidate.exists():
        k += 1
        candidate = path.with_name(f"{path.stem}_{k}{path.suffix}")
    return candidate


def prediction_columns(head: str | None, outputs: Tensor, datamodule: object) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the predicted part of each row, from the module's outputs
    (``output_activation``: probabilities, or regression values in training units)."""
    if head in ("softmax_ce", "sigmoid_bce"):
        probs = torch.cat([1 - outputs, outputs], dim=1) if head == "sigmoid_bce" else outputs
        names = getattr(datamodule, "class_names", None) or [str(k) for k in range(probs.shape[1])]
        header = ["predicted_class"] + [f"prob_{name}" for name in names]
        rows = [[names[int(k)]] + [f"{p:.8g}" for p in row] for k, row in zip(probs.argmax(1), probs.tolist())]
        return header, rows
    values = outputs * getattr(datamodule, "target_scale", 1.0)
    names = getattr(datamodule, "target_names", None) or []
    if len(names) != values.shape[1]:
        names = [f"output_{k}" for k in range(values.shape[1])]
    return [f"predicted_{name}" for name in names], [[f"{v:.8g}" for v in row] for row in values.tolist()]


class PredictionWriter(pl.Callback):
    """Collects ``(row index, output)`` per predict batch; rank 0 gathers every rank's rows, puts them
    back in input order and writes ``filename`` in ``output_dir`` (default: the run directory of the
    checkpoint predicted with, else the current run's log dir), never over an existing file.

    DataModules built on :class:`datamodules.base.TensorDataModule` send predict batches as
    ``(x, row_index)`` and supply the original input rows, class names and target scale. A plain callback,
    not a ``BasePredictionWriter``: the row indices come with the batch, so Lightning need not track the
    sampler's indices (which a ``TensorBatchLoader`` does not have).
    """

    def __init__(self, filename: str = "predictions.csv", output_dir: str | None = None) -> None:
        self.filename, self.output_dir = filename, output_dir
        self.last_path: Path | None = None
        self._index: list[Tensor] = []
        self._outputs: list[Tensor] = []

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._index, self._outputs = [], []

    def on_predict_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Tensor,
        batch: object,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        outputs = outputs.detach().cpu().double()
        outputs = outputs.reshape(len(outputs), -1)
        if isinstance(batch, (tuple, list)) and len(batch) > 1:
            index = batch[1].detach().cpu().long()
        else:  # a plain loader: one process, batches in order
            start = sum(len(i) for i in self._index)
            index = torch.arange(start, start + len(outputs))
        self._index.append(index)
        self._outputs.append(outputs)

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._index or trainer.fast_dev_run:  # a smoke test writes no files
            return
        index, outputs = torch.cat(self._index), torch.cat(self._outputs)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, (index, outputs))
            index = torch.cat([g[0] for g in gathered])
            outputs = torch.cat([g[1] for g in gathered])
        folder = Path(self.output_dir or self.run_dir(trainer))  # run_dir broadcasts under DDP: every rank asks
        if trainer.is_global_zero:
            order = torch.argsort(index)
            self.write(trainer, pl_module, index[order], outputs[order], folder)

    @staticmethod
    def run_dir(trainer: pl.Trainer) -> Path:
        """The run that made the checkpoint (``<run>/checkpoints/x.ckpt``), else this run's log dir."""
        ckpt = Path(trainer.ckpt_path) if trainer.ckpt_path else None
        if ckpt is not None and ckpt.parent.name == "checkpoints":
            return ckpt.parent.parent
        return Path(trainer.log_dir or trainer.default_root_dir)

    def write(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, index: Tensor, outputs: Tensor, folder: Path
    ) -> None:
        datamodule = trainer.datamodule
        head = getattr(getattr(pl_module, "spec", None), "head", None)
        header, cells = prediction_columns(head, outputs, datamodule)
        inputs = getattr(datamodule, "prediction_inputs", None)
        in_header, in_rows = inputs() if inputs else ([], [])
        if len(in_rows) <= int(index.max()):
            in_header, in_rows = ["row"], [[str(i)] for i in range(int(index.max()) + 1)]
        rows = [in_rows[int(i)] + c for i, c in zip(index, cells)]
        folder.mkdir(parents=True, exist_ok=True)
        path = free_path(folder / self.filename)
        with path.open("x", newline="") as f:  # "x": fail rather than overwrite, even in a race
            writer = csv.writer(f)
            writer.writerow(in_header + header)
            writer.writerows(rows)
        self.last_path = path
        say(f"predictions for {len(rows)} rows written to {path}")
