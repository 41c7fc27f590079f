"""The one tensor path every DataModule ends in: whole-split tensors batched by :class:`TensorBatchLoader`.

Subclasses only build ``(x, y)`` tensors per split; this base serves them, checks that the model's
input and output sizes fit the data, and tells the prediction writer how to label its columns.
"""

from __future__ import annotations

import logging
import math

import lightning.pytorch as pl
import torch
from torch import Tensor

from datamodules.csv_table import DataError
from datamodules.tensor_loader import TensorBatchLoader

SPLITS = ("train", "val", "test", "predict")
# What the data say about themselves (a synthetic fallback, a split, a mapping of labels): the project's printer,
# models/console.py, shows each line once per command; a logger by name keeps this package below the models.
DATA_LOG = logging.getLogger("backprop.data")


def announce(message: str) -> None:
    DATA_LOG.info(message, extra={"once": True})


def model_mismatch(spec: object, num_features: int, num_classes: int | None, target_width: int) -> str | None:
    """Why a network described by ``spec`` (an :class:`models.MLPSpec`) cannot take this data, or None."""
    net = "model.init_args.net"
    head, outputs = spec.head, spec.output_size
    if spec.input_size != num_features:
        return f"{net}.input_size is {spec.input_size} but the data has {num_features} features; set it to that."
    classifier = head in ("softmax_ce", "sigmoid_bce")
    if num_classes is not None and not classifier:
        return f"{net}.head is {head!r} (regression) but the data has class labels; use softmax_ce or sigmoid_bce."
    if num_classes is None and classifier:
        return f"{net}.head is {head!r} (classification) but the target is numeric; use mse or mse_sigmoid."
    if head == "softmax_ce" and outputs != num_classes:
        return f"{net}.output_size is {outputs} but the data has {num_classes} classes; set it to {num_classes}."
    if head == "sigmoid_bce" and num_classes != 2:
        return f"{net}.head sigmoid_bce needs 2 classes, the data has {num_classes}; use softmax_ce instead."
    if num_classes is None and outputs != target_width:
        return f"{net}.output_size is {outputs} but the data has {target_width} target column(s); set it to that."
    return None


class TensorDataModule(pl.LightningDataModule):
    """Serves ``tensors(split)``; train batches are shuffled per epoch by ``seed``.

    Predict batches are ``(x, row_index)`` so the prediction writer can put rows back in order
    whatever rank or shard they came from.
    """

    def __init__(self, batch_size: int, eval_batch_size: int | None, shuffle: bool, seed: int, on_device: bool) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or max(batch_size, 1024)
        self.shuffle, self.seed, self.on_device = shuffle, seed, on_device
        self._tensors: dict[str, tuple[Tensor, ...]] = {}
        self.run_precision: str | None = None  # the trainer's, known before the trainer is attached

    # ---- what subclasses provide ----------------------------------------------------------
    def build_tensors(self, split: str) -> tuple[Tensor, ...] | None:
        """``(x, y)`` for train/val/test, ``(x,)`` for predict, or None when there is no such split."""
        raise NotImplementedError

    @property
    def num_classes(self) -> int | None:
        """Number of classes, or None for a regression target."""
        raise NotImplementedError

    @property
    def class_names(self) -> list[str] | None:
        n = self.num_classes
        return None if n is None else [str(k) for k in range(n)]

    @property
    def target_names(self) -> list[str]:
        return ["target"]

    @property
    def target_scale(self) -> float:
        """Regression targets were divided by this; predictions are multiplied back."""
        return 1.0

    def prediction_inputs(self) -> tuple[list[str], list[list[str]]]:
        """Header and rows, in original units, that the predictions CSV repeats before each prediction."""
        return [], []

    # ---- shared -----------------------------------------------------------------------------
    def tensors(self, split: str) -> tuple[Tensor, ...] | None:
        if split not in self._tensors:
            built = self.build_tensors(split)
            if built is None:
                return None
            self.require_trainable(split, built)
            if self.on_device and self.trainer is not None:
                built = tuple(t.to(self.trainer.strategy.root_device) for t in built)
            self._tensors[split] = built
        return self._tensors[split]

    def require_trainable(self, split: str, tensors: tuple[Tensor, ...]) -> None:
        """No inf/NaN reaches a model, and nothing the model's float32 cast would turn into inf."""
        precision = self.trainer.precision if self.trainer is not None else self.run_precision
        float32 = precision is not None and not str(precision).startswith("64")
        for role, values in zip(("features", "targets"), tensors):
            if not values.is_floating_point() or values.numel() == 0:
                continue
            flat = values.reshape(len(values), -1)
            bad = ~torch.isfinite(flat)
            if float32 and values.dtype == torch.float64:
                bad |= flat.abs() > torch.finfo(torch.float32).max
            if bad.any():
                row, column = (int(v) for v in torch.nonzero(bad)[0])
                names = list(getattr(self, "feature_names", []))
                name = names[column] if role == "features" and column < len(names) else f"{role} column {column}"
                value = float(flat[row, column])
                too_big = float32 and math.isfinite(value)
                what, fix = (
                    ("float32 cannot hold", "rescale it or run in float64 (trainer.precision: 64-true)")
                    if too_big
                    else ("is not finite", "fix the data")
                )
                raise DataError(
                    f"{type(self).__name__}: the {split} {role} hold {value:.3g} (row {row + 1} of the split, "
                    f"'{name}'), which {what}; {fix}."
                )

    def check_before_run(self, stage: str, spec: object | None, with_test: bool, precision: str | None) -> None:
        """Read and check everything ``stage`` needs before the trainer creates a run directory, so bad data
        fails with nothing written. Other stages only read their files: a checkpoint may still bring the
        fitted state (columns, classes, normalisation) that their tensors depend on."""
        self.run_precision = precision
        if stage != "fit":
            self.check_files(stage)
            return
        self.setup("fit")
        for split in ("train", "val", *(("test",) if with_test else ())):
            self.tensors(split)
        problem = None if spec is None else model_mismatch(spec, self.num_features, self.num_classes, self.target_width)
        if problem:
            raise DataError(f"{type(self).__name__}: {problem}")
        if self.on_device:  # built on the CPU here; the trainer's device is known only once it is attached
            self.forget_tensors()

    def check_files(self, stage: str) -> None:
        """Read the files ``stage`` (validate, test, predict) will use; by default there is nothing to read early."""

    def forget_tensors(self) -> None:
        """Drop built tensors, e.g. after a checkpoint brought a different normalisation."""
        self._tensors.clear()

    @property
    def num_features(self) -> int:
        x = self.tensors("train") or self.tensors("predict")
        if x is None:
            raise DataError("no training or predict data to count features from")
        return int(x[0][0].numel())

    @property
    def target_width(self) -> int:
        y = self.tensors("train")
        return 1 if y is None or y[1].ndim == 1 else int(y[1].shape[1])

    def check_model_fits(self) -> None:
        """Fail early, with the config key to change, when the network's sizes do not fit the data."""
        module = self.trainer.lightning_module if self.trainer is not None else None
        spec = getattr(module, "spec", None)
        if spec is None:
            return
        problem = model_mismatch(spec, self.num_features, self.num_classes, self.target_width)
        if problem:
            raise DataError(f"{type(self).__name__}: {problem}")

    def _loader(self, split: str, **kwargs: object) -> TensorBatchLoader | list:
        tensors = self.tensors(split)
        if tensors is None:
            return []
        self.check_model_fits()
        if split == "predict":
            tensors = (tensors[0], torch.arange(len(tensors[0]), device=tensors[0].device))
        return TensorBatchLoader(tensors, **kwargs)

    def train_dataloader(self) -> TensorBatchLoader:
        loader = self._loader("train", batch_size=self.batch_size, shuffle=self.shuffle, seed=self.seed)
        if not isinstance(loader, TensorBatchLoader):
            raise DataError(f"{type(self).__name__}: no training data")
        return loader

    def val_dataloader(self) -> TensorBatchLoader | list:
        return self._loader("val", batch_size=self.eval_batch_size)

    def test_dataloader(self) -> TensorBatchLoader | list:
        return self._loader("test", batch_size=self.eval_batch_size)

    def predict_dataloader(self) -> TensorBatchLoader:
        return self._loader("predict", batch_size=self.eval_batch_size)
