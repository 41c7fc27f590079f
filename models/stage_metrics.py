"""Metrics, logging and the test report shared by both modules: one torchmetrics collection per stage,
logged once per epoch, and the notebook's plain-text report after test (mixed into
:class:`models.lightning_modules.MLPModule`)."""

from __future__ import annotations

from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MeanMetric, MeanSquaredError, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from models.layers.heads import output_activation, predicted_classes
from models.report import format_test_report
from models.spec import MLPSpec


def stage_metrics(spec: MLPSpec, stage: str) -> MetricCollection:
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


class StageMetrics:
    """Updates, logs and resets the train/val/test metrics; writes the test report."""

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
        values[f"{stage}/loss"] = loss_mean.compute()
        # Lightning discards the sanity check's values; not logging them also keeps its record of each
        # key's arguments free for the fit's own validation, which inside epoch blocks logs at the epoch
        # (Lightning's own logging step would count blocks).
        if not self.trainer.sanity_checking:
            at_epoch = self.block_epochs > 1 and stage == "val" and self.trainer.state.fn == TrainerFn.FITTING
            to_logger = False if at_epoch else None  # None: Lightning's default, without its no-logger warning
            # The values are global already (torchmetrics synced its states over the processes in compute());
            # sync_dist says so to Lightning, which under DDP warns about epoch values it was not told to sync.
            # Its mean of the processes' identical values is the value itself.
            others = {k: v for k, v in values.items() if k != f"{stage}/loss"}
            self.log_dict(others, logger=to_logger, sync_dist=True)
            self.log(f"{stage}/loss", values[f"{stage}/loss"], prog_bar=True, logger=to_logger, sync_dist=True)
            if at_epoch:
                self._log_at_epoch({k: float(v) for k, v in values.items()}, self.epochs_done - 1)
        metrics.reset()
        loss_mean.reset()
        return values

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics("val")

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
