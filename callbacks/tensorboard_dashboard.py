"""Everything a TensorBoard user looks at beyond the module's own ``self.log`` scalars.

The module logs per-epoch ``{train,val,test}/{loss,accuracy,precision,recall,f1}``; this callback adds
the per-step training loss, HParams with the final metrics, weight and gradient histograms, figures
and the final weights as text. Each piece has a switch. Only rank 0 writes.
"""

from __future__ import annotations

from collections.abc import Mapping

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary
from torchvision.utils import make_grid

from callbacks.batches import collect_rows, datamodule_loader
from callbacks.figures import confusion_matrix_figure, decision_boundary_figure, loss_curve_figure
from callbacks.weights_export import LAYOUT, format_weights, notebook_weights
from models.layers.heads import output_activation

STEP_LOSS_TAG = "train/loss_every_step"


def tensorboard_writer(trainer: pl.Trainer) -> SummaryWriter | None:
    """The SummaryWriter of the trainer's first TensorBoardLogger (rank 0 only), else None."""
    if not trainer.is_global_zero:
        return None
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


def _flat(prefix: str, values: Mapping[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out.update(_flat(f"{prefix}{key}.", value))
        elif isinstance(value, (bool, int, float, str)):
            out[f"{prefix}{key}"] = value
        elif value is not None:
            out[f"{prefix}{key}"] = str(value)
    return out


def run_hparams(trainer: pl.Trainer, module: pl.LightningModule) -> dict[str, object]:
    """Flat, TensorBoard-friendly hyperparameters: module class, net spec, optimizer, data and trainer."""
    params: dict[str, object] = {"model": type(module).__name__}
    params.update(_flat("", {k: v for k, v in module.hparams.items() if k != "optimizer"}))
    if trainer.optimizers:
        optimizer = trainer.optimizers[0]
        params["optimizer"] = type(optimizer).__name__
        group = optimizer.param_groups[0]
        params.update(_flat("optimizer.", {k: group[k] for k in ("lr", "momentum", "weight_decay") if k in group}))
    if trainer.datamodule is not None:
        params.update(_flat("data.", dict(trainer.datamodule.hparams)))
    params["trainer.max_epochs"] = trainer.max_epochs if trainer.max_epochs is not None else -1
    params["trainer.precision"] = str(trainer.precision)
    params["trainer.accelerator"] = type(trainer.accelerator).__name__
    params["trainer.world_size"] = trainer.world_size
    return params


def final_metrics(trainer: pl.Trainer) -> dict[str, float]:
    """Epoch-level metrics as ``hp/<stage>_<name>``: own tags, so they never add a point to the curves."""
    out: dict[str, float] = {}
    for key, value in trainer.callback_metrics.items():
        if key.endswith("_step") or "/" not in key:
            continue
        name = key.removesuffix("_epoch").replace("/", "_")
        out[f"hp/{name}"] = float(value)
    return out


def first_layer_filters(kernels: Tensor, pixels_per_weight: int = 12) -> Tensor:
    """The first conv layer's kernels (out, in, k, k) as one grey image (3, H, W): one tile per output
    channel and input channel, each scaled to its own min..max, enlarged so a 5x5 kernel is visible."""
    out_channels, in_channels, k, _ = kernels.shape
    tiles = kernels.detach().float().cpu().reshape(out_channels * in_channels, 1, k, k)
    tiles = tiles.repeat_interleave(pixels_per_weight, 2).repeat_interleave(pixels_per_weight, 3)
    return make_grid(tiles, nrow=in_channels * max(1, 8 // in_channels), normalize=True, scale_each=True, padding=4)


class TensorBoardDashboard(pl.Callback):
    """Per-step loss (buffered), HParams, histograms, figures and final weights in TensorBoard.

    The per-step training loss is kept as detached tensors and written once per epoch, so a
    batch-size-1 run pays no per-step device sync or event-file write. Histograms show the weights
    and the gradient of the epoch's last optimizer step.
    """

    def __init__(
        self,
        step_loss: bool = True,
        hparams: bool = True,
        histograms: bool = True,
        histogram_every_n_epochs: int = 1,
        loss_curve: bool = True,
        confusion_matrix: bool = True,
        decision_boundary: bool = True,
        decision_boundary_every_n_epochs: int = 0,
        weights_text: bool = True,
        conv_filters: bool = True,
        max_points: int = 2000,
    ) -> None:
        """``*_every_n_epochs``: 0 means at fit end only; ``max_points`` caps the points drawn on the boundary."""
        self.step_loss = step_loss
        self.hparams = hparams
        self.histograms = histograms
        self.histogram_every_n_epochs = histogram_every_n_epochs
        self.loss_curve = loss_curve
        self.confusion_matrix = confusion_matrix
        self.decision_boundary = decision_boundary
        self.decision_boundary_every_n_epochs = decision_boundary_every_n_epochs
        self.weights_text = weights_text
        self.conv_filters = conv_filters
        self.max_points = max_points
        self._pending: list[Tensor] = []
        self._first_step = 0
        self.step_losses: list[float] = []  # every step's training loss so far (rank 0), for the loss curve
        self._warned = False
        self._hparams_written = False

    # ---- helpers --------------------------------------------------------------------------
    def _writer(self, trainer: pl.Trainer) -> SummaryWriter | None:
        writer = tensorboard_writer(trainer)
        if writer is None and trainer.is_global_zero and not self._warned:
            rank_zero_warn("TensorBoardDashboard: no TensorBoardLogger on the trainer; nothing is written.")
            self._warned = True
        return writer

    @staticmethod
    def _due(every: int, trainer: pl.Trainer) -> bool:
        return every > 0 and (trainer.current_epoch + 1) % every == 0

    # ---- per-step loss --------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.step_losses = []
        self._hparams_written = False

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._pending = []
        # updates, not Lightning steps: a step may make many (rows_per_update, epochs_per_step)
        self._first_step = getattr(pl_module, "updates_done", trainer.global_step)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: object, batch: object, batch_idx: int
    ) -> None:
        if not trainer.is_global_zero:
            return
        if self.step_loss or self.loss_curve:
            self._pending.append(self._update_losses(pl_module, outputs))
        last = batch_idx + 1 == trainer.num_training_batches or trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        if last and self.histograms and self._due(self.histogram_every_n_epochs, trainer):
            self._write_histograms(trainer, pl_module)

    def _write_histograms(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """At the epoch's last batch: validation zeroes ``.grad`` (``on_validation_model_zero_grad``) later."""
        writer = self._writer(trainer)
        if writer is None:
            return
        step = trainer.global_step
        for name, param in pl_module.named_parameters():
            writer.add_histogram(f"weights/{name}", param.detach().float().cpu(), step, bins="auto")
            if param.grad is not None:
                writer.add_histogram(f"gradients/{name}", param.grad.detach().float().cpu(), step, bins="auto")

    @staticmethod
    def _update_losses(pl_module: pl.LightningModule, outputs: object) -> Tensor:
        """The loss of every optimiser update of this batch: ``update_losses`` when the module makes
        several updates per batch (``rows_per_update``), else the step's own loss."""
        losses = getattr(pl_module, "update_losses", None)
        if isinstance(losses, Tensor) and losses.numel() > 0:
            return losses.detach().reshape(-1)
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if not isinstance(loss, Tensor):
            raise TypeError(f"TensorBoardDashboard needs training_step to return the loss, got {type(loss).__name__}")
        return loss.detach().reshape(1)

    def _flush_step_losses(self, trainer: pl.Trainer) -> None:
        if not self._pending:
            return
        values = torch.cat(self._pending).double().cpu().tolist()  # one device sync per epoch
        self._pending = []
        self.step_losses.extend(values)
        writer = self._writer(trainer)
        if self.step_loss and writer is not None:
            for i, value in enumerate(values, start=self._first_step + 1):
                writer.add_scalar(STEP_LOSS_TAG, value, i)

    # ---- epoch end: losses, histograms, optional boundary snapshots ------------------------
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._flush_step_losses(trainer)
        writer = self._writer(trainer)
        if writer is None:
            return
        if self.decision_boundary and self._due(self.decision_boundary_every_n_epochs, trainer):
            self._write_decision_boundary(trainer, pl_module, writer, trainer.current_epoch + 1)

    def _write_decision_boundary(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, writer: SummaryWriter, epochs_done: int
    ) -> None:
        spec = getattr(pl_module, "spec", None)
        loader = datamodule_loader(trainer, "train")
        if spec is None or spec.input_size != 2 or not spec.is_classifier or loader is None:
            return
        x, y = collect_rows(loader, self.max_points)

        @torch.no_grad()
        def predict_proba(points: np.ndarray) -> np.ndarray:
            inputs = torch.from_numpy(points).to(pl_module.device, pl_module.dtype)
            probs = output_activation(spec.head, pl_module.net(inputs)).double().cpu().numpy()
            return np.column_stack([1.0 - probs[:, 0], probs[:, 0]]) if probs.shape[1] == 1 else probs

        title = f"Decision boundary, {type(pl_module).__name__}, after epoch {epochs_done} (training points)"
        figure = decision_boundary_figure(predict_proba, x.double().numpy(), y.reshape(-1).numpy(), title)
        writer.add_figure("figures/decision_boundary", figure, trainer.global_step)

    # ---- fit end: curve, boundary, weights, hparams -----------------------------------------
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        writer = self._writer(trainer)
        if writer is None:
            return
        step = trainer.global_step
        if self.loss_curve and self.step_losses:
            epochs = getattr(pl_module, "epochs_done", trainer.current_epoch)  # Lightning's counts blocks of epochs
            steps_per_epoch = len(self.step_losses) // max(epochs, 1)
            figure = loss_curve_figure({type(pl_module).__name__: self.step_losses}, steps_per_epoch)
            writer.add_figure("figures/loss_curve", figure, step)
        if self.decision_boundary and self.decision_boundary_every_n_epochs == 0:
            self._write_decision_boundary(trainer, pl_module, writer, trainer.current_epoch)
        convs = getattr(getattr(pl_module, "net", None), "convs", None)
        if self.conv_filters and convs:
            writer.add_image("figures/conv1_filters", first_layer_filters(convs[0].weight), step)
        if self.weights_text and hasattr(pl_module, "net"):
            text = format_weights(notebook_weights(pl_module))
            writer.add_text("weights/final", f"{LAYOUT}\n\n```\n{text}\n```", step)
        self._write_hparams(trainer, pl_module, writer)
        writer.flush()

    # ---- test end: confusion matrix, hparams with test metrics -------------------------------
    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Runs before the module's own hook, which resets its confusion matrix after printing it."""
        confusion_metric = getattr(pl_module, "test_confusion", None)
        if not self.confusion_matrix or confusion_metric is None or confusion_metric.update_count == 0:
            return
        confusion = confusion_metric.compute().cpu().numpy()  # on every rank: it syncs across DDP ranks
        writer = self._writer(trainer)
        if writer is not None:
            figure = confusion_matrix_figure(confusion, f"Test confusion matrix, {type(pl_module).__name__}")
            writer.add_figure("figures/confusion_matrix", figure, trainer.global_step)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        writer = self._writer(trainer)
        if writer is not None:
            self._write_hparams(trainer, pl_module, writer)
            writer.flush()

    def _write_hparams(self, trainer: pl.Trainer, pl_module: pl.LightningModule, writer: SummaryWriter) -> None:
        """The final metrics as ``hp/*`` scalars, and the HParams session once per run.

        TensorBoard keeps the first session summary of a run, so the one written at fit end already
        declares the ``hp/test_*`` metrics a later test fills in.
        """
        metrics = final_metrics(trainer)
        if not self.hparams or not metrics:
            return
        for tag, value in metrics.items():
            writer.add_scalar(tag, value, trainer.global_step)
        if self._hparams_written:
            return
        declared = dict.fromkeys([*metrics, *(k.replace("hp/val_", "hp/test_") for k in metrics if "hp/val_" in k)])
        experiment, start, end = hparams_summary(run_hparams(trainer, pl_module), declared)
        file_writer = writer._get_file_writer()  # as Lightning's TensorBoardLogger.log_hyperparams does
        for summary in (experiment, start, end):
            file_writer.add_summary(summary, trainer.global_step)
        self._hparams_written = True
