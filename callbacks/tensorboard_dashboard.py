"""Everything a TensorBoard user looks at beyond the module's own epoch metrics.

One step convention: ``train/loss_update`` is keyed by optimiser update; everything else (the
module's ``*_epoch`` tags through :class:`callbacks.tensorboard_logger.EpochTensorBoardLogger`,
histograms, figures, text) by the number of notebook epochs completed, whatever the block size: the
dashboard tells the module which epochs it observes, and epoch blocks end at each of them. Each
piece has a switch; only rank 0 writes. Non-finite weights or losses never stop the dashboard: it
draws what is finite and says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import make_grid

from callbacks.batches import collect_rows, datamodule_loader
from callbacks.figures import confusion_matrix_figure, decision_boundary_figure, loss_curve_figure
from callbacks.scalar_record_file import ScalarRecordFile
from callbacks.tensorboard_hparams import (
    VALIDATION_IS_TEST,
    metric_infos,
    run_hparams,
    write_session_end,
    write_session_start,
)
from callbacks.weights_export import format_weights, layout_text, notebook_weights
from models.console import say, say_once
from models.epoch_blocks import epochs_done, every_n
from models.layers.heads import output_activation
from models.native_net import NativeMLP
from models.spec import MLPSpec

UPDATE_LOSS_TAG = "train/loss_update"


def tensorboard_writer(trainer: pl.Trainer) -> SummaryWriter | None:
    """The SummaryWriter of the trainer's first TensorBoardLogger (rank 0 only), else None."""
    if not trainer.is_global_zero:
        return None
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


def tensorboard_command(log_dir: str, points: int) -> str:
    """How to open ``log_dir`` with all ``points`` of the longest curve: TensorBoard keeps 1,000 points
    per scalar tag by default, and ``scalars=0`` would keep all but then draw none (TensorBoard 2.21)."""
    return f"tensorboard --logdir {log_dir} --samples_per_plugin scalars={max(points, 1000)}"


def latest_update_losses(pl_module: pl.LightningModule, outputs: object) -> Tensor:
    """The loss of every optimiser update made by the latest training step.

    The modules expose them as ``update_losses`` (several updates per step in block mode); a module
    without it makes one update per step, whose loss the step returns.
    """
    losses = getattr(pl_module, "update_losses", None)
    if isinstance(losses, Tensor) and losses.numel() > 0:
        return losses.detach().reshape(-1)
    loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
    if not isinstance(loss, Tensor):
        raise TypeError(f"TensorBoardDashboard needs training_step to return the loss, got {type(loss).__name__}")
    return loss.detach().reshape(1)


def first_layer_filters(kernels: Tensor, pixels_per_weight: int = 12) -> Tensor:
    """The first conv layer's kernels (out, in, k, k) as one grey image (3, H, W): one tile per output
    channel and input channel, each scaled to its own min..max, enlarged so a 5x5 kernel is visible."""
    out_channels, in_channels, k, _ = kernels.shape
    tiles = kernels.detach().float().cpu().nan_to_num(0.0, 0.0, 0.0).reshape(out_channels * in_channels, 1, k, k)
    tiles = tiles.repeat_interleave(pixels_per_weight, 2).repeat_interleave(pixels_per_weight, 3)
    return make_grid(tiles, nrow=in_channels * max(1, 8 // in_channels), normalize=True, scale_each=True, padding=4)


def network_graph_inputs(spec: MLPSpec, batch: object, dtype: torch.dtype) -> tuple[torch.nn.Module, Tensor]:
    """The network as torch layers (the same for both modules: the manual net's own forward traces
    into a tangle of index arithmetic) and one training row to trace it with."""
    with torch.random.fork_rng(devices=[]):  # torch_default init draws from torch's RNG: leave the run's alone
        net = NativeMLP(spec).to(dtype).eval()
    rows = batch[0] if isinstance(batch, (tuple, list)) else batch
    return net, rows[:1].to(dtype)


class TensorBoardDashboard(pl.Callback):
    """Per-update loss, HParams, model graph, histograms, figures and final weights in TensorBoard.

    The per-update losses are kept as tensors and written once per epoch, so training never waits on
    the event file per update. Histograms show the weights and the gradient of the epoch's last
    optimiser update.
    """

    def __init__(
        self,
        update_loss: bool = True,
        hparams: bool = True,
        graph: bool = True,
        histograms: bool = True,
        histogram_every_n_epochs: int = 1,
        loss_curve: bool = True,
        confusion_matrix: bool = True,
        decision_boundary: bool = True,
        decision_boundary_every_n_epochs: int = 0,
        weights_text: bool = True,
        conv_filters: bool = True,
        max_points: int = 2000,
        print_command: bool = True,
    ) -> None:
        """``*_every_n_epochs``: 0 means at fit end only; ``max_points`` caps the points drawn on the
        boundary; ``print_command`` prints how to open the run in TensorBoard at fit end."""
        self.update_loss = update_loss
        self.hparams = hparams
        self.graph = graph
        self.histograms = histograms
        self.histogram_every_n_epochs = histogram_every_n_epochs
        self.loss_curve = loss_curve
        self.confusion_matrix = confusion_matrix
        self.decision_boundary = decision_boundary
        self.decision_boundary_every_n_epochs = decision_boundary_every_n_epochs
        self.weights_text = weights_text
        self.conv_filters = conv_filters
        self.max_points = max_points
        self.print_command = print_command
        self.update_losses: list[float] = []  # every update's training loss so far (rank 0)
        self._pending: list[Tensor] = []
        self._update_file: ScalarRecordFile | None = None  # train/loss_update's own event file (rank 0)
        self._first_update = 0
        self._graph_written = False
        self._session_open = False
        self._warned: set[str] = set()

    # ---- helpers --------------------------------------------------------------------------
    def _writer(self, trainer: pl.Trainer) -> SummaryWriter | None:
        writer = tensorboard_writer(trainer)
        if writer is None and trainer.is_global_zero and not trainer.fast_dev_run:  # fast_dev_run: none, on purpose
            self._warn_once("no TensorBoardLogger on the trainer; nothing is written.")
        return writer

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            rank_zero_warn(f"TensorBoardDashboard: {message}")

    def observed_epochs(self, max_epochs: int | None) -> list[int]:
        """Where epoch blocks must end (``models.epoch_blocks.EpochObserver``): histogram and boundary epochs."""
        epochs = list(every_n(self.histogram_every_n_epochs, max_epochs)) if self.histograms else []
        if self.decision_boundary:
            epochs += every_n(self.decision_boundary_every_n_epochs, max_epochs)
        return epochs

    @staticmethod
    def _due(every: int, epochs: int) -> bool:
        return every > 0 and epochs > 0 and epochs % every == 0

    # ---- start: HParams, graph ---------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.update_losses = []
        self._graph_written = False
        params = run_hparams(trainer, pl_module)
        if params["validation"] == VALIDATION_IS_TEST:
            say_once("Validation runs on the test split (this data has no validation split): val/* = test rows.")
        writer = self._writer(trainer)
        if writer is None or not self.hparams:
            return
        spec = getattr(pl_module, "spec", None)
        metrics = metric_infos(spec is None or spec.is_classifier, str(params["validation"]))
        write_session_start(writer, params, metrics)
        self._session_open = True

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: object, batch_idx: int
    ) -> None:
        spec = getattr(pl_module, "spec", None)
        if not self.graph or self._graph_written or spec is None:
            return
        writer = self._writer(trainer)
        if writer is not None:
            with warnings.catch_warnings():
                # add_graph traces with torch.jit, which torch deprecates; TensorBoard's Graphs tab reads
                # only the graph that trace produces.
                warnings.filterwarnings(
                    "ignore", message=r"`torch\.jit\.trace(_method)?` is deprecated", category=FutureWarning
                )
                writer.add_graph(*network_graph_inputs(spec, batch, pl_module.dtype))
        self._graph_written = True

    # ---- every step: losses; last step of an epoch: histograms --------------------------------
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._pending = []
        # updates, not Lightning steps: a step may make many (rows_per_update, epochs_per_step)
        self._first_update = getattr(pl_module, "updates_done", trainer.global_step)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: object, batch: object, batch_idx: int
    ) -> None:
        if not trainer.is_global_zero:
            return
        if self.update_loss or self.loss_curve:
            self._pending.append(latest_update_losses(pl_module, outputs))
        # The gradients are read here: validation, before epoch end, sets them to None.
        last = batch_idx + 1 == trainer.num_training_batches
        if last and self.histograms and self._due(self.histogram_every_n_epochs, epochs_done(trainer, pl_module)):
            self._write_histograms(trainer, pl_module)

    def _write_histograms(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        writer = self._writer(trainer)
        if writer is None:
            return
        epoch = epochs_done(trainer, pl_module)
        for name, param in pl_module.named_parameters():
            self._histogram(writer, f"weights/{name}", param, epoch)
            if param.grad is not None:
                self._histogram(writer, f"gradients/{name}", param.grad, epoch)

    def _histogram(self, writer: SummaryWriter, tag: str, values: Tensor, epoch: int) -> None:
        """The finite entries only: TensorBoard's binning fails on inf/NaN, and a diverged run still
        deserves a picture of what is left."""
        values = values.detach().double().cpu().reshape(-1)
        finite = torch.isfinite(values)
        if not bool(finite.all()):
            self._warn_once(f"{tag} has non-finite values (first at epoch {epoch}); histograms show finite ones only.")
            values = values[finite]
        if values.numel() > 0:
            writer.add_histogram(tag, values.numpy(), epoch, bins="auto")

    def _flush_update_losses(self, trainer: pl.Trainer) -> None:
        if not self._pending:
            return
        values = torch.cat(self._pending).double().cpu().tolist()  # one device sync per epoch
        self._pending = []
        self.update_losses.extend(values)
        writer = self._writer(trainer)
        if self.update_loss and writer is not None:
            if self._update_file is None:
                self._update_file = ScalarRecordFile(writer.get_logdir(), "updates")
            self._update_file.add(UPDATE_LOSS_TAG, values, self._first_update + 1)
            self._update_file.flush()  # a live TensorBoard shows each epoch as it ends

    def _close_update_file(self) -> None:
        if self._update_file is not None:
            self._update_file.close()
            self._update_file = None

    # ---- epoch end: losses, optional boundary snapshots ----------------------------------------
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._flush_update_losses(trainer)
        writer = self._writer(trainer)
        epochs = epochs_done(trainer, pl_module)
        if writer is not None and self.decision_boundary and self._due(self.decision_boundary_every_n_epochs, epochs):
            self._write_decision_boundary(trainer, pl_module, writer, epochs)

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
            probs = np.nan_to_num(probs, nan=0.0)  # a diverged net: no class wins anywhere
            return np.column_stack([1.0 - probs[:, 0], probs[:, 0]]) if probs.shape[1] == 1 else probs

        title = f"Decision boundary, {type(pl_module).__name__}, after epoch {epochs_done} (training points)"
        training = pl_module.net.training
        pl_module.net.eval()  # no dropout mask drawn, batch norm's running statistics used and left alone
        try:
            figure = decision_boundary_figure(predict_proba, x.double().numpy(), y.reshape(-1).numpy(), title)
        finally:
            pl_module.net.train(training)
        writer.add_figure("figures/decision_boundary", figure, epochs_done)

    # ---- fit end: curve, boundary, weights -------------------------------------------------------
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        writer = self._writer(trainer)
        if writer is None:
            return
        epochs = epochs_done(trainer, pl_module)
        if self.loss_curve and self.update_losses:
            updates_per_epoch = len(self.update_losses) // max(epochs, 1)
            figure = loss_curve_figure({type(pl_module).__name__: self.update_losses}, updates_per_epoch)
            writer.add_figure("figures/loss_curve", figure, epochs)
        if self.decision_boundary and self.decision_boundary_every_n_epochs == 0:
            self._write_decision_boundary(trainer, pl_module, writer, epochs)
        convs = getattr(getattr(pl_module, "net", None), "convs", None)
        if self.conv_filters and convs:
            writer.add_image("figures/conv1_filters", first_layer_filters(convs[0].weight), epochs)
        if self.weights_text and hasattr(pl_module, "net"):
            weights = notebook_weights(pl_module)
            writer.add_text("weights/final", f"{layout_text(weights)}\n\n```\n{format_weights(weights)}\n```", epochs)
        self._end_session(writer, succeeded=True)
        self._close_update_file()
        writer.flush()
        if self.print_command:
            command = tensorboard_command(writer.get_logdir(), len(self.update_losses))
            say(f"TensorBoard (every point): {command}")

    def _end_session(self, writer: SummaryWriter, succeeded: bool) -> None:
        if self._session_open:
            write_session_end(writer, succeeded)
            self._session_open = False

    # ---- test end: confusion matrix ---------------------------------------------------------------
    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Runs before the module's own hook, which resets its confusion matrix after printing it."""
        confusion_metric = getattr(pl_module, "test_confusion", None)
        if not self.confusion_matrix or confusion_metric is None or confusion_metric.update_count == 0:
            return
        confusion = confusion_metric.compute().cpu().numpy()  # on every rank: it syncs across DDP ranks
        writer = self._writer(trainer)
        if writer is not None:
            figure = confusion_matrix_figure(confusion, f"Test confusion matrix, {type(pl_module).__name__}")
            writer.add_figure("figures/confusion_matrix", figure, epochs_done(trainer, pl_module))

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        writer = self._writer(trainer)
        if writer is not None:
            writer.flush()

    # ---- interrupts and errors --------------------------------------------------------------------
    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        """Mark the HParams session failed (Ctrl-C, divergence stop, a failing gradient check)."""
        self._close_update_file()
        writer = tensorboard_writer(trainer)
        if writer is not None:
            self._end_session(writer, succeeded=False)
