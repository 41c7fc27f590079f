"""The two LightningModules: one trains the native net with autograd, one the hand-derived net.

Both share metrics, logging and reporting (:class:`MLPModule`); they differ only in
``training_step`` and in how gradients reach ``param.grad``.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MeanMetric, MeanSquaredError, Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from models.base_net import MLPParameters
from models.engine import run_updates, unequal_update_counts
from models.grad_sync import all_reduce_mean_
from models.layers.heads import output_activation, predicted_classes
from models.manual_net import ManualMLP
from models.native_net import NativeMLP
from models.report import GENERAL_ADVICE, format_test_report
from models.schedules import SchedulerInterval, build_lr_scheduler, planned_updates
from models.spec import MLPSpec


def _stage_metrics(spec: MLPSpec, stage: str) -> MetricCollection:
    # validate_args=False: inputs are our own argmax predictions and checked labels; the checks would
    # cost about a quarter of each update.
    if spec.is_classifier:
        k = spec.num_classes
        metrics = {
            "accuracy": MulticlassAccuracy(k, average="micro", validate_args=False),
            "precision": MulticlassPrecision(k, average="macro", validate_args=False),
            "recall": MulticlassRecall(k, average="macro", validate_args=False),
            "f1": MulticlassF1Score(k, average="macro", validate_args=False),
        }
    else:
        metrics = {"mse": MeanSquaredError(), "mae": MeanAbsoluteError()}
    return MetricCollection(metrics, prefix=f"{stage}/")


class MLPModule(pl.LightningModule):
    """The shared base: one torchmetrics collection per stage, logging, the test report, and the
    optimiser loop of :mod:`models.engine`. Subclasses only say how a loss and its gradients are made
    (:meth:`loss_and_logits` and, for the hand-derived net, :meth:`backward`).

    Both modules use manual optimisation, so a training step can make many updates
    (``rows_per_update``) and both step their learning-rate schedule the same way.
    """

    net: MLPParameters
    display_name = "mlp"
    hand_derived = False  # whether the NumPy path of models.engine may run this module's updates

    def __init__(
        self,
        net: MLPSpec,
        optimizer: OptimizerCallable | None = None,
        rows_per_update: int | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_scheduler_interval: SchedulerInterval = "step",
    ) -> None:
        """``optimizer`` builds a torch.optim optimizer from the parameters; default SGD(lr=0.1).

        ``lr_scheduler`` (optional) builds a torch.optim.lr_scheduler from the optimizer, stepped after
        every optimiser update (``lr_scheduler_interval="step"``) or every epoch (``"epoch"``).
        OneCycleLR without ``total_steps`` is given the run's exact number of updates.

        ``rows_per_update`` splits each training batch into consecutive chunks of that many rows and
        makes one optimiser update per chunk, in order: a batch of 400 rows with ``rows_per_update=1``
        gives exactly the updates of batch size 1, without Lightning's per-step cost on each of them.
        ``None`` makes one update per batch.
        """
        super().__init__()
        if rows_per_update is not None and rows_per_update < 1:
            raise ValueError(f"rows_per_update must be >= 1 or None, got {rows_per_update}")
        self.rows_per_update = rows_per_update
        self.automatic_optimization = False
        # The loss of every optimiser update made by the latest training step (read by loggers), and
        # the updates made since the fit began (saved in checkpoints).
        self.update_losses = torch.empty(0)
        self.updates_done = 0
        if isinstance(net, dict):  # as stored in a checkpoint's hyper-parameters
            net = MLPSpec(**net)
        # The optimizer comes from the config again on reload; a plain dict keeps checkpoints loadable
        # with torch.load(weights_only=True).
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.hparams["net"] = asdict(net)
        # The CLI records the class when it builds the module; record it too when Python does, so
        # `train.py test/predict --ckpt_path` can rebuild a module trained by a plain Trainer.
        self.hparams.setdefault("_class_path", f"{type(self).__module__}.{type(self).__qualname__}")
        self.spec = net
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.lr_scheduler_interval = lr_scheduler_interval
        self.net = self.build_net(net)
        self.train_metrics = _stage_metrics(net, "train")
        self.val_metrics = _stage_metrics(net, "val")
        self.test_metrics = _stage_metrics(net, "test")
        # Per-epoch mean loss per stage, weighted by rows; torchmetrics syncs it over ranks.
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.test_confusion = MulticlassConfusionMatrix(net.num_classes) if net.is_classifier else None
        self.collapse_advice = GENERAL_ADVICE  # what the test report suggests if every prediction is one class

    # ---- what the two modules do differently ---------------------------------------------
    def build_net(self, spec: MLPSpec) -> MLPParameters:
        raise NotImplementedError

    def loss_and_logits(self, x: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def gradient_step(self, x: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Loss and logits of one update, with the gradients left in ``param.grad``."""
        loss, z = self.loss_and_logits(x, target)
        self.manual_backward(loss)
        return loss, z

    # ---- setup ---------------------------------------------------------------------------
    def configure_model(self) -> None:
        """Make float64 runs start from the exact float64 initial weights.

        The CLI builds the module in float32 before the Trainer casts it to float64, which would leave
        the initial weights rounded to float32. Lightning calls this hook inside the precision's
        default-dtype context, so an untouched float32 net is re-initialised exactly in float64.
        """
        wanted = torch.get_default_dtype()
        if wanted == torch.float64 and self.dtype != wanted and self.net.is_at_initial_values():
            self.net.to(wanted)
            self.net.reset_parameters()

    def setup(self, stage: str) -> None:
        """Give every metric state tensors of its own in this process.

        ``ddp_spawn`` on CPU pickles the module into shared memory; Lightning un-shares parameters and
        buffers but not torchmetrics states, so without this all ranks would count into one tensor.
        """
        for metric in self.modules():
            if isinstance(metric, Metric):
                metric.reset()

    def on_save_checkpoint(self, checkpoint: dict[str, object]) -> None:
        """What a resumed run needs beyond the weights: the update count and the dropout masks' generator."""
        checkpoint["updates_done"] = self.updates_done
        checkpoint["dropout_generator_state"] = self.net.dropout_generator.get_state()

    def on_load_checkpoint(self, checkpoint: dict[str, object]) -> None:
        self.updates_done = int(checkpoint.get("updates_done", 0))
        if "dropout_generator_state" in checkpoint:
            self.net.dropout_generator.set_state(checkpoint["dropout_generator_state"])

    def forward(self, x: Tensor) -> Tensor:
        """Output pre-activations (logits)."""
        return self.net(x)

    def as_model_dtype(self, batch: object) -> object:
        """Floating inputs in the model's dtype: data is held exactly (float64), models may be float32."""
        if isinstance(batch, (tuple, list)):
            return type(batch)(t.to(self.dtype) if torch.is_floating_point(t) else t for t in batch)
        return batch.to(self.dtype) if torch.is_floating_point(batch) else batch

    # ---- optimisation --------------------------------------------------------------------
    def configure_optimizers(self) -> torch.optim.Optimizer | dict[str, object]:
        if self.optimizer_factory is None:
            optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        else:
            optimizer = self.optimizer_factory(self.parameters())
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = build_lr_scheduler(
            self.lr_scheduler_factory, optimizer, lambda: planned_updates(self.trainer, self.rows_per_update)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.lr_scheduler_interval},
        }

    def step_lr_schedule(self, interval: SchedulerInterval) -> None:
        """Advance the schedule, as manual optimisation requires of the module."""
        if self.lr_scheduler_factory and interval == self.lr_scheduler_interval:
            with warnings.catch_warnings():
                # The NumPy path updates the parameters without optimizer.step(), which torch's scheduler
                # takes for a schedule stepped before its optimiser.
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
                self.lr_schedulers().step()

    def on_train_epoch_start(self) -> None:
        """Tell the loader which epoch begins, so it serves that epoch's seeded order (both modules alike)."""
        loader = self.trainer.train_dataloader
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(self.current_epoch)

    def on_train_start(self) -> None:
        """Under DDP, refuse a block size that would give ranks different numbers of updates."""
        loader = self.trainer.train_dataloader
        world_size = self.trainer.world_size
        if self.rows_per_update is None or world_size == 1 or not hasattr(loader, "batch_rows"):
            return
        rows = [loader.batch_rows(rank, world_size) for rank in range(world_size)]
        problem = unequal_update_counts(rows, self.rows_per_update)
        if problem:
            raise ValueError(problem)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, target = self.as_model_dtype(batch)
        self.update_losses, logits = run_updates(self, x, target)
        self.updates_done += len(self.update_losses)
        loss = self.update_losses.mean()
        self._update_and_log("train", loss, logits, target, on_step=True)
        return loss

    # ---- metrics -------------------------------------------------------------------------
    def _metric_inputs(self, z: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        if self.spec.is_classifier:
            return predicted_classes(self.spec.head, z), target.reshape(-1).long()
        return output_activation(self.spec.head, z).reshape(target.shape), target

    def _stage_state(self, stage: str) -> tuple[MetricCollection, MeanMetric]:
        return {
            "train": (self.train_metrics, self.train_loss),
            "val": (self.val_metrics, self.val_loss),
            "test": (self.test_metrics, self.test_loss),
        }[stage]

    def _update_and_log(self, stage: str, loss: Tensor, z: Tensor, target: Tensor, on_step: bool) -> None:
        metrics, loss_mean = self._stage_state(stage)
        preds, truth = self._metric_inputs(z.detach(), target)
        metrics.update(preds, truth)
        n = z.shape[0]
        loss_mean.update(loss.detach(), weight=n)
        every = self.trainer.log_every_n_steps  # 0 when logging is off (barebones Trainer)
        if on_step and every and self.global_step % every == 0:
            # Each self.log call costs Lightning ~ms of bookkeeping, so the step loss is logged only at
            # the logging interval; every update's loss reaches TensorBoard through TensorBoardDashboard.
            self.log(f"{stage}/loss_step", loss.detach(), on_step=True, on_epoch=False, prog_bar=True, batch_size=n)
        if stage == "test" and self.test_confusion is not None:
            self.test_confusion.update(preds, truth)

    def _log_epoch_metrics(self, stage: str) -> dict[str, Tensor]:
        """Compute (synced over ranks by torchmetrics), log and reset one stage's metrics.

        Logging the collection once per epoch rather than handing it to ``self.log`` every step saves
        Lightning's per-step bookkeeping of every metric state (a third of an MNIST epoch here).
        """
        metrics, loss_mean = self._stage_state(stage)
        if not loss_mean.update_count:
            return {}
        values = metrics.compute()
        self.log_dict(values)
        values[f"{stage}/loss"] = loss_mean.compute()
        self.log(f"{stage}/loss", values[f"{stage}/loss"], prog_bar=True)
        metrics.reset()
        loss_mean.reset()
        return values

    def on_train_epoch_end(self) -> None:
        self._log_epoch_metrics("train")
        self.step_lr_schedule("epoch")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics("val")

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, target = self.as_model_dtype(batch)
        loss, z = self.loss_and_logits(x, target)
        self._update_and_log(stage, loss, z, target, on_step=False)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._evaluate(batch, "test")

    def predict_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        batch = self.as_model_dtype(batch)
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return output_activation(self.spec.head, self.net(x))

    def on_test_epoch_end(self) -> None:
        metrics = self._log_epoch_metrics("test")
        if self.test_confusion is None or not metrics:
            return
        confusion = self.test_confusion.compute()
        self.test_confusion.reset()
        report = format_test_report(
            self.display_name,
            float(metrics["test/precision"]),
            float(metrics["test/recall"]),
            float(metrics["test/f1"]),
            confusion,
            self.collapse_advice,
        )
        rank_zero_info(report)
        self._log_report_text(report)

    def _log_report_text(self, report: str) -> None:
        experiment = getattr(self.logger, "experiment", None)
        if self.trainer.is_global_zero and hasattr(experiment, "add_text"):
            experiment.add_text("test/report", f"```\n{report}\n```", global_step=self.global_step)


class NativeModule(MLPModule):
    """Autograd differentiates :class:`NativeMLP`."""

    display_name = "native (autograd)"

    def build_net(self, spec: MLPSpec) -> NativeMLP:
        return NativeMLP(spec)

    def loss_and_logits(self, x: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        z = self.net(x)
        return self.net.loss(z, target), z


class ManualModule(MLPModule):
    """``backward`` writes the hand-derived gradients into ``param.grad``.

    The update runs under ``torch.no_grad()``: no graph is built, and Lightning's DDP strategy then
    leaves the DDP reducer alone. Gradients are averaged across ranks by :meth:`backward` itself,
    since DDP's own all-reduce hooks fire only through autograd.
    """

    display_name = "manual (hand-derived)"
    hand_derived = True

    def build_net(self, spec: MLPSpec) -> ManualMLP:
        return ManualMLP(spec)

    def loss_and_logits(self, x: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        return self.net.forward_loss(x, target)

    @torch.no_grad()
    def gradient_step(self, x: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        return super().gradient_step(x, target)

    def backward(self, loss: Tensor, *args: object, **kwargs: object) -> None:
        """Fill ``param.grad`` with the hand-derived gradients; average them across DDP ranks."""
        grads = self.net.backward()
        for param, grad in zip(self.net.parameters(), grads):
            param.grad = grad  # a fresh tensor of the parameter's shape: no copy needed
        all_reduce_mean_(grads)
