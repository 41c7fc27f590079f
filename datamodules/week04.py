"""The week-4 notebook's data: two CSV files when named, else its synthetic blobs."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from datamodules.base import TensorDataModule, announce
from datamodules.csv_table import DataError, check_delimiter, features_and_class_labels, read_csv_text
from datamodules.synthetic import week04_blobs


class Week04DataModule(TensorDataModule):
    """Reads ``train_path`` and ``test_path`` (both, or neither); with neither it generates the
    notebook's fallback (400 train / 200 test rows of two Gaussian blobs, ``default_rng(data_seed)``)
    and says so. A named file that does not exist is an error, never a silent fallback.

    The notebook has no validation split, so by default validation tracks the test split
    (``validate_on_test``); nothing is selected on it. Prediction runs on the test rows.
    """

    def __init__(
        self,
        train_path: str | None = None,
        test_path: str | None = None,
        batch_size: int = 1,
        shuffle: bool = True,
        seed: int = 0,
        data_seed: int = 0,
        validate_on_test: bool = True,
        encoding: str = "utf-8-sig",
        delimiter: str = ",",
    ) -> None:
        """``seed`` orders the training rows each epoch; ``data_seed`` draws the synthetic fallback."""
        super().__init__(batch_size, eval_batch_size=max(batch_size, 256), shuffle=shuffle, seed=seed, on_device=False)
        check_delimiter(delimiter)
        self.save_hyperparameters()
        self.source = ""  # where the rows came from, said once at setup
        self.x_train = self.y_train = self.x_test = self.y_test = torch.empty(0)

    def prepare_arrays(self) -> tuple[np.ndarray, ...]:
        hp = self.hparams
        if hp.train_path is None and hp.test_path is None:
            self.source = (
                "synthetic fallback, because no data.train_path / data.test_path was given: the notebook's two "
                f"Gaussian blobs, default_rng({hp.data_seed})"
            )
            return week04_blobs(hp.data_seed)
        if hp.train_path is None or hp.test_path is None:
            given, missing = ("train_path", "test_path") if hp.test_path is None else ("test_path", "train_path")
            raise DataError(
                f"data.{given} is set but data.{missing} is not: the week-4 data needs both files. Set data.{missing}, "
                "or neither for the notebook's synthetic blobs."
            )
        tables = [read_csv_text(path, hp.encoding, hp.delimiter) for path in (hp.train_path, hp.test_path)]
        (x_train, y_train), (x_test, y_test) = (features_and_class_labels(table) for table in tables)
        if x_train.shape[1] != x_test.shape[1]:
            raise DataError(
                f"{hp.test_path}: {x_test.shape[1]} feature columns but {hp.train_path} has {x_train.shape[1]}; "
                "both files need the same columns."
            )
        if len(np.unique(y_train)) < 2:
            raise DataError(f"{hp.train_path}: the label column holds one class only; a classifier cannot learn.")
        self.source = f"CSV files {hp.train_path} and {hp.test_path}"
        return x_train, y_train, x_test, y_test

    def setup(self, stage: str | None = None) -> None:
        if self.source:
            return
        x_train, y_train, x_test, y_test = self.prepare_arrays()
        self.x_train, self.y_train = torch.from_numpy(x_train), torch.from_numpy(y_train)
        self.x_test, self.y_test = torch.from_numpy(x_test), torch.from_numpy(y_test)
        announce(
            f"week-4 data: {self.source}; train {tuple(self.x_train.shape)}, test {tuple(self.x_test.shape)}, "
            f"classes {sorted(set(y_train.tolist()))}"
        )

    def check_files(self, stage: str) -> None:
        self.setup(stage)

    @property
    def num_classes(self) -> int:
        self.setup()
        return int(self.y_train.max()) + 1

    def build_tensors(self, split: str) -> tuple[Tensor, ...] | None:
        self.setup()
        if split == "train":
            return self.x_train, self.y_train
        if split == "val" and not self.hparams.validate_on_test:
            return None
        return (self.x_test,) if split == "predict" else (self.x_test, self.y_test)

    def prediction_inputs(self) -> tuple[list[str], list[list[str]]]:
        self.setup()
        header = [f"x{j + 1}" for j in range(self.x_test.shape[1])] + ["label"]
        return header, [[repr(v) for v in row] + [str(c)] for row, c in zip(self.x_test.tolist(), self.y_test.tolist())]
