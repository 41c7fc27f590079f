"""The week-4 notebook's data: two CSV files when present, else its synthetic blobs."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info

from datamodules.csv_table import DataError, features_and_class_labels, read_numeric_csv
from datamodules.synthetic import week04_blobs
from datamodules.tensor_loader import TensorBatchLoader


class Week04DataModule(pl.LightningDataModule):
    """Reads ``train_path`` and ``test_path`` when both exist; otherwise generates the notebook's
    fallback (400 train / 200 test rows of two Gaussian blobs, ``default_rng(data_seed)``).

    The notebook has no validation split, so by default validation tracks the test split
    (``validate_on_test``); nothing is selected on it.
    """

    def __init__(
        self,
        train_path: str = "data/week04/train.csv",
        test_path: str = "data/week04/test.csv",
        batch_size: int = 1,
        shuffle: bool = True,
        seed: int = 0,
        data_seed: int = 0,
        validate_on_test: bool = True,
    ) -> None:
        """``seed`` orders the training rows each epoch; ``data_seed`` draws the synthetic fallback."""
        super().__init__()
        self.save_hyperparameters()
        self.source = ""
        self.x_train = self.y_train = self.x_test = self.y_test = torch.empty(0)

    def prepare_arrays(self) -> tuple[np.ndarray, ...]:
        hp = self.hparams
        train_path, test_path = Path(hp.train_path), Path(hp.test_path)
        if train_path.exists() and test_path.exists():
            x_train, y_train = features_and_class_labels(read_numeric_csv(train_path))
            x_test, y_test = features_and_class_labels(read_numeric_csv(test_path))
            if x_train.shape[1] != x_test.shape[1]:
                raise DataError(
                    f"{test_path}: {x_test.shape[1]} feature columns but {train_path} has {x_train.shape[1]}; "
                    "both files need the same columns."
                )
            if len(np.unique(y_train)) < 2:
                raise DataError(f"{train_path}: the label column holds one class only; a classifier cannot learn.")
            self.source = f"CSV files {train_path} and {test_path}"
            return x_train, y_train, x_test, y_test
        missing = [str(p) for p in (train_path, test_path) if not p.exists()]
        self.source = (
            f"synthetic fallback (two Gaussian blobs, default_rng({hp.data_seed})) because "
            f"{' and '.join(missing)} not found"
        )
        return week04_blobs(hp.data_seed)

    def setup(self, stage: str | None = None) -> None:
        if self.source:
            return
        x_train, y_train, x_test, y_test = self.prepare_arrays()
        self.x_train, self.y_train = torch.from_numpy(x_train), torch.from_numpy(y_train)
        self.x_test, self.y_test = torch.from_numpy(x_test), torch.from_numpy(y_test)
        rank_zero_info(
            f"week-4 data: {self.source}; train {tuple(self.x_train.shape)}, test {tuple(self.x_test.shape)}, "
            f"classes {sorted(set(y_train.tolist()))}"
        )

    def train_dataloader(self) -> TensorBatchLoader:
        hp = self.hparams
        return TensorBatchLoader((self.x_train, self.y_train), hp.batch_size, shuffle=hp.shuffle, seed=hp.seed)

    def _test_loader(self) -> TensorBatchLoader:
        return TensorBatchLoader((self.x_test, self.y_test), max(self.hparams.batch_size, 256))

    def val_dataloader(self) -> TensorBatchLoader | list:
        return self._test_loader() if self.hparams.validate_on_test else []

    def test_dataloader(self) -> TensorBatchLoader:
        return self._test_loader()

    def predict_dataloader(self) -> TensorBatchLoader:
        return TensorBatchLoader((self.x_test,), max(self.hparams.batch_size, 256))
