"""The project's one metric set, and the per-stage metrics a LightningModule owns.

The metrics are listed once (:data:`CLASSIFICATION`, :data:`REGRESSION`): accuracy and macro precision, recall
and F1 for classifiers, MSE and MAE for regression, each as its torchmetrics class and functional twin. The
classes serve one value per stage (the modules' train/val/test, synced over DDP ranks); the functions one value per
group of rows in one call (each epoch of an epoch block, each member of a sweep's stack).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanMetric, MeanSquaredError, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)
from torchmetrics.functional import mean_absolute_error, mean_squared_error
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from models.console import say
from models.layers.heads import output_activation, predicted_classes
from models.report import format_test_report
from models.spec import MLPSpec

STAGES = ("train", "val", "test")


# The one list of metrics: name -> (torchmetrics class, its functional twin, their common arguments). Classifiers
# use macro averages but for accuracy; validate_args=False since the inputs are our own argmax predictions and
# checked labels, and the checks would cost about a quarter of a tiny net's update.
CLASSIFICATION = {
    "accuracy": (MulticlassAccuracy, multiclass_accuracy, {"average": "micro"}),
    "precision": (MulticlassPrecision, multiclass_precision, {"average": "macro"}),
    "recall": (MulticlassRecall, multiclass_recall, {"average": "macro"}),
    "f1": (MulticlassF1Score, multiclass_f1_score, {"average": "macro"}),
}
REGRESSION = {
    "mse": (MeanSquaredError, mean_squared_error, {}),
    "mae": (MeanAbsoluteError, mean_absolute_error, {}),
}


def metric_set(spec: MLPSpec) -> dict[str, tuple[type, Callable[..., Tensor], dict[str, object]]]:
    if spec.is_classifier:
        common = {"num_classes": spec.num_classes, "validate_args": False}
        return {name: (cls, fn, {**kwargs, **common}) for name, (cls, fn, kwargs) in CLASSIFICATION.items()}
    return REGRESSION


def metric_collection(spec: MLPSpec, prefix: str = "") -> MetricCollection:
    """Every metric of a net with ``spec``'s head, as one collection of stateful torchmetrics objects (synced over
    DDP ranks when computed), named ``<prefix><metric>``."""
    return MetricCollection({name: cls(**kwargs) for name, (cls, _, kwargs) in metric_set(spec).items()}, prefix=prefix)


def metric_inputs(spec: MLPSpec, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """What the metrics compare: predicted classes and labels, or the head's output shaped like the targets."""
    if spec.is_classifier:
        return predicted_classes(spec.head, logits), target.reshape(target.shape[: logits.ndim - 1]).long()
    return output_activation(spec.head, logits).reshape(target.shape), target


def grouped_metrics(spec: MLPSpec, logits: Tensor, target: Tensor, prefix: str = "") -> dict[str, Tensor]:
    """One value per group of every metric, from the same list's functional twins in one call each (a block's
    epochs, a stack's members: no state to keep): ``logits`` (G, rows, K), ``target`` (G, rows[, K]) -> (G,)."""
    preds, truth = metric_inputs(spec, logits, target)
    groups = preds.shape[0]
    values = {}
    for name, (_, fn, kwargs) in metric_set(spec).items():
        if spec.is_classifier:
            value = fn(preds, truth, multidim_average="samplewise", **kwargs)
        else:  # one column per group: (rows * K, G)
            columns = preds.reshape(groups, -1).T, truth.reshape(groups, -1).T.to(preds.dtype)
            value = fn(*columns, num_outputs=groups, **kwargs)
        values[f"{prefix}{name}"] = value.reshape(groups)  # one group comes back as a scalar
    return values


class StageMetrics(nn.Module):
    """One metric collection and one row-weighted mean loss per stage, and the test confusion matrix: the
    lightning-hydra-template layout, owned by the module. torchmetrics syncs all of them over DDP ranks."""

    def __init__(self, spec: MLPSpec) -> None:
        super().__init__()
        self.spec = spec
        self.train_metrics = metric_collection(spec, "train/")
        self.val_metrics = metric_collection(spec, "val/")
        self.test_metrics = metric_collection(spec, "test/")
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.test_confusion = MulticlassConfusionMatrix(spec.num_classes) if spec.is_classifier else None

    def collection(self, stage: str) -> MetricCollection:
        return {"train": self.train_metrics, "val": self.val_metrics, "test": self.test_metrics}[stage]

    def mean_loss(self, stage: str) -> MeanMetric:
        return {"train": self.train_loss, "val": self.val_loss, "test": self.test_loss}[stage]

    def update(self, stage: str, loss: Tensor, logits: Tensor, target: Tensor) -> None:
        preds, truth = metric_inputs(self.spec, logits.detach(), target)
        self.collection(stage).update(preds, truth)
        self.mean_loss(stage).update(loss.detach(), weight=logits.shape[0])
        if stage == "test" and self.test_confusion is not None:
            self.test_confusion.update(preds, truth)

    def compute(self, stage: str) -> dict[str, Tensor]:
        """This stage's values since the last call (synced over ranks), ``<stage>/loss`` included; then reset.
        Empty when nothing was seen."""
        loss, collection = self.mean_loss(stage), self.collection(stage)
        if not loss.update_count:
            return {}
        values = dict(collection.compute())
        values[f"{stage}/loss"] = loss.compute()
        collection.reset()
        loss.reset()
        return values

    def test_report(self, values: dict[str, Tensor], model_name: str, advice: str, show: bool = True) -> str | None:
        """The notebook's test printout (P/R/F1, confusion matrix, predicted-class counts), printed on rank 0 when
        ``show`` (``compare`` prints both modules' side by side instead); None for regression."""
        if self.test_confusion is None or not values:
            return None
        confusion = self.test_confusion.compute()
        self.test_confusion.reset()
        report = format_test_report(
            model_name,
            float(values["test/precision"]),
            float(values["test/recall"]),
            float(values["test/f1"]),
            confusion,
            advice,
        )
        if show:
            say(report)
        return report
