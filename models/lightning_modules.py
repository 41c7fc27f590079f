"""The two LightningModules: one trains the native net with autograd, one the hand-derived net.

Both share metrics, logging and reporting (:class:`MLPModule`); they differ only in
``training_step`` and in how gradients reach ``param.grad``.
"""

from __future__ import annotations

from dataclasses import asdict

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from models.base_net import MLPParameters
from models.grad_sync import all_reduce_mean_
from models.heads import loss_and_output_gradient, output_activation, predicted_classes
from models.manual_net import ForwardCache, ManualMLP
from models.native_net import NativeMLP
from models.spec import MLPSpec
from models.test_report import format_test_report


def _stage_metrics(spec: MLPSpec, stage: str) -> MetricCollection:
    if spec.is_classifier:
        k = spec.num_classes
        metrics = {
            "accuracy": MulticlassAccuracy(k, average="micro"),
            "precision": MulticlassPrecision(k, average="macro"),
            "recall": MulticlassRecall(k, average="macro"),
            "f1": MulticlassF1Score(k, average="macro"),
        }
    else:
        metrics = {"mse": MeanSquaredError(), "mae": MeanAbsoluteError()}
    return MetricCollection(metrics, prefix=f"{stage}/")


class MLPModule(pl.LightningModule):
    """Shared by both modules: one torchmetrics collection per stage, logging, test report."""

    net: MLPParameters
    display_name = "mlp"

    def __init__(self, net: MLPSpec, optimizer: OptimizerCallable | None = None) -> None:
        """``optimizer`` builds a torch.optim optimizer from the parameters; default SGD(lr=0.1)."""
        super().__init__()
        if isinstance(net, dict):  # as stored in a checkpoint's hyper-parameters
            net = MLPSpec(**net)
        # The optimizer comes from the config again on reload; a plain dict keeps checkpoints loadable
        # with torch.load(weights_only=True).
        self.save_hyperparameters(ignore=["optimizer"])
        self.hparams["net"] = asdict(net)
        self.spec = net
        self.optimizer_factory = optimizer
        self.net = self.build_net(net)
        self.train_metrics = _stage_metrics(net, "train")
        self.val_metrics = _stage_metrics(net, "val")
        self.test_metrics = _stage_metrics(net, "test")
        self.test_confusion = MulticlassConfusionMatrix(net.num_classes) if net.is_classifier else None

    def build_net(self, spec: MLPSpec) -> MLPParameters:
        raise NotImplementedError

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

    def forward(self, x: Tensor) -> Tensor:
        """Output pre-activations (logits)."""
        return self.net(x)

    def on_after_batch_transfer(self, batch: object, dataloader_idx: int) -> object:
        """Cast floating inputs to the model's dtype: data is held exactly (float64), models may be float32."""
        if isinstance(batch, (tuple, list)):
            return type(batch)(t.to(self.dtype) if torch.is_floating_point(t) else t for t in batch)
        return batch.to(self.dtype) if torch.is_floating_point(batch) else batch

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer_factory is None:
            return torch.optim.SGD(self.parameters(), lr=0.1)
        return self.optimizer_factory(self.parameters())

    # ---- metrics -------------------------------------------------------------------------
    def _metric_inputs(self, z: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        if self.spec.is_classifier:
            return predicted_classes(self.spec.head, z), target.reshape(-1).long()
        return output_activation(self.spec.head, z).reshape(target.shape), target

    def _update_and_log(self, stage: str, loss: Tensor, z: Tensor, target: Tensor, on_step: bool) -> None:
        metrics = {"train": self.train_metrics, "val": self.val_metrics, "test": self.test_metrics}[stage]
        preds, truth = self._metric_inputs(z.detach(), target)
        metrics.update(preds, truth)
        n = z.shape[0]
        self.log(
            f"{stage}/loss", loss.detach(), on_step=on_step, on_epoch=True, prog_bar=True, batch_size=n, sync_dist=True
        )
        self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=n)
        if stage == "test" and self.test_confusion is not None:
            self.test_confusion.update(preds, truth)

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, target = batch
        z = self.net(x)
        loss, _ = loss_and_output_gradient(self.spec.head, z, target, self.spec.reduction)
        self._update_and_log(stage, loss, z, target, on_step=False)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._evaluate(batch, "test")

    def predict_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return output_activation(self.spec.head, self.net(x))

    def on_test_epoch_end(self) -> None:
        if self.test_confusion is None:
            return
        confusion = self.test_confusion.compute()
        self.test_confusion.reset()
        metrics = self.test_metrics.compute()
        report = format_test_report(
            self.display_name,
            float(metrics["test/precision"]),
            float(metrics["test/recall"]),
            float(metrics["test/f1"]),
            confusion,
        )
        rank_zero_info(report)
        self._log_report_text(report)

    def _log_report_text(self, report: str) -> None:
        experiment = getattr(self.logger, "experiment", None)
        if self.trainer.is_global_zero and hasattr(experiment, "add_text"):
            experiment.add_text("test/report", f"```\n{report}\n```", global_step=self.global_step)


class NativeModule(MLPModule):
    """Automatic optimization: autograd differentiates :class:`NativeMLP`."""

    display_name = "native (autograd)"

    def build_net(self, spec: MLPSpec) -> NativeMLP:
        return NativeMLP(spec)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, target = batch
        z = self.net(x)
        loss = self.net.loss(z, target)
        self._update_and_log("train", loss, z, target, on_step=True)
        return loss

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, target = batch
        z = self.net(x)
        loss = self.net.loss(z, target)
        self._update_and_log(stage, loss, z, target, on_step=False)
        return loss


class ManualModule(MLPModule):
    """Manual optimization: ``backward`` writes the hand-derived gradients into ``param.grad``.

    The step runs under ``torch.no_grad()``: no graph is built, and Lightning's DDP strategy then
    leaves the DDP reducer alone. Gradients are averaged across ranks by :meth:`backward` itself,
    since DDP's own all-reduce hooks fire only through autograd.
    """

    display_name = "manual (hand-derived)"

    def __init__(self, net: MLPSpec, optimizer: OptimizerCallable | None = None) -> None:
        super().__init__(net, optimizer)
        self.automatic_optimization = False
        self._cache: ForwardCache | None = None

    def build_net(self, spec: MLPSpec) -> ManualMLP:
        return ManualMLP(spec)

    @torch.no_grad()
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, target = batch
        optimizer = self.optimizers()
        loss, self._cache = self.net.loss_and_cache(x, target)
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        self._update_and_log("train", loss, self._cache.logits, target, on_step=True)
        self._cache = None
        return loss

    def backward(self, loss: Tensor, *args: object, **kwargs: object) -> None:
        """Fill ``param.grad`` with the hand-derived gradients; average them across DDP ranks."""
        assert self._cache is not None, "backward needs the cache from training_step's forward pass"
        grads = self.net.gradients(self._cache)
        params = list(self.net.parameters())
        for param, grad in zip(params, grads):
            param.grad = grad.detach().clone() if param.grad is None else param.grad.copy_(grad)
        all_reduce_mean_([p.grad for p in params])
