"""One DataModule for any numeric table in CSV files (flower, Lab 4, week 4, your own).

Everything fitted from data (feature columns, class mapping, normalisation) comes from the
training rows only and lives in :meth:`CSVDataModule.state_dict`, which Lightning saves in each
checkpoint. Test and predict files are read at loader time, after a checkpoint's state is
restored, so they are transformed exactly as training was.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from datamodules.base import TensorDataModule, announce
from datamodules.csv_table import (
    CellKind,
    CsvTable,
    DataError,
    check_delimiter,
    numeric_columns,
    one_hot_block,
    read_csv_text,
)
from datamodules.labels import ClassMapping
from datamodules.normalize import NormalizeKind, Normalizer

Task = Literal["classification", "regression"]


def require_finite(values: np.ndarray, table: CsvTable, columns: list[str], how: str) -> None:
    """A transformed cell that overflowed names its file, line and column, so no inf/NaN reaches training."""
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        i, j = (int(v) for v in bad[0])
        cell = table.cell(i, table.header.index(columns[j]))
        raise DataError(
            f"{table.path}, line {table.lines[i]}, column '{columns[j]}': {cell!r} becomes {values[i, j]} {how}. "
            "Rescale the column in the file (e.g. divide by a power of 10) or change the normalisation."
        )


class CSVDataModule(TensorDataModule):
    """Train/val/test as separate CSV files, or one training file split with ``split_seed``.

    Columns: ``features`` by name (default: every column but the label and ``drop_columns``);
    ``label`` by name or index (default: the last column, or a trailing one-hot block such as
    ``y_0, y_1``; a list of names is a one-hot block, or several regression targets).
    Classification labels are integers >= 0 or text mapped to classes (sorted, ordered by
    ``classes``, or ``positive_class`` -> 1). Regression targets are divided by ``target_scale``
    (Lab 4: 100), and predictions are multiplied back.
    """

    def __init__(
        self,
        train_path: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        predict_path: str | None = None,
        features: list[str] | None = None,
        label: str | int | list[str] | None = None,
        drop_columns: list[str] | None = None,
        task: Task = "classification",
        classes: list[str] | None = None,
        positive_class: str | None = None,
        target_scale: float = 1.0,
        normalize: NormalizeKind = "none",
        missing: Literal["error", "drop"] = "error",
        encoding: str = "utf-8-sig",
        delimiter: str = ",",
        val_fraction: float = 0.0,
        test_fraction: float = 0.0,
        split_seed: int = 0,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        on_device: bool = False,
        name: str = "csv",
    ) -> None:
        """``seed`` orders training rows per epoch; ``split_seed`` splits one file into train/val/test.
        ``missing: drop`` skips rows with an empty or NaN cell in a used column instead of failing.
        ``encoding`` and ``delimiter`` apply to every file (default UTF-8, with or without a BOM, and ',')."""
        super().__init__(batch_size, eval_batch_size, shuffle, seed, on_device)
        self.save_hyperparameters()
        if not target_scale or not np.isfinite(target_scale):
            raise DataError(
                f"data.target_scale is {target_scale}: regression targets are divided by it, so it must be a "
                "non-zero number. Use 1 for no scaling (Lab 4 uses 100)."
            )
        for frac, key in ((val_fraction, "val_fraction"), (test_fraction, "test_fraction")):
            if not 0 <= frac < 1:
                raise ValueError(f"data.{key} must be in [0, 1), got {frac}")
        if val_fraction and val_path:
            raise ValueError("give data.val_path or data.val_fraction, not both")
        if test_fraction and test_path:
            raise ValueError("give data.test_path or data.test_fraction, not both")
        if val_fraction + test_fraction >= 1:
            raise ValueError("data.val_fraction + data.test_fraction must leave training rows")
        check_delimiter(delimiter)
        self.state: dict[str, object] = {}
        self._tables: dict[str, CsvTable] = {}
        self._predict_table: CsvTable | None = None

    # ---- state fitted on the training rows ----------------------------------------------------
    def state_dict(self) -> dict[str, object]:
        return dict(self.state)

    def load_state_dict(self, state_dict: dict[str, object]) -> None:
        if state_dict.get("task") != self.hparams.task:
            raise DataError(
                f"the checkpoint's data was a {state_dict.get('task')} task but data.task is {self.hparams.task!r}; "
                "use the config the checkpoint was trained with."
            )
        self.state = dict(state_dict)
        self.forget_tensors()

    @property
    def feature_names(self) -> list[str]:
        return list(self._fitted()["features"])

    @property
    def label_names(self) -> list[str]:
        return list(self._fitted()["labels"])

    @property
    def mapping(self) -> ClassMapping | None:
        classes = self._fitted()["classes"]
        return None if classes is None else ClassMapping.from_state(classes)

    @property
    def normalizer(self) -> Normalizer:
        return Normalizer.from_state(self._fitted()["normalizer"])

    @property
    def num_classes(self) -> int | None:
        mapping = self.mapping
        return None if mapping is None else len(mapping.names)

    @property
    def class_names(self) -> list[str] | None:
        mapping = self.mapping
        return None if mapping is None else list(mapping.names)

    @property
    def target_names(self) -> list[str]:
        return self.label_names

    @property
    def num_features(self) -> int:
        """From the fitted state, so predicting from a checkpoint needs no training file."""
        return len(self.feature_names)

    @property
    def target_width(self) -> int:
        return len(self.label_names) if self.state["task"] == "regression" else 1

    @property
    def target_scale(self) -> float:
        return float(self._fitted()["target_scale"])

    def setup(self, stage: str | None = None) -> None:
        """Fitting reads the training file now (once: the CLI's check before the run already may have);
        other stages wait for a checkpoint's state (loaded after setup)."""
        if stage in (None, "fit") and not self.state:
            self.fit_state()

    def _fitted(self) -> dict[str, object]:
        if not self.state:
            self.fit_state()
        return self.state

    def fit_state(self) -> None:
        """Feature columns, class mapping and normalisation from the training rows only."""
        try:
            self._fit_state()
        except Exception:
            self.state = {}
            raise

    def _fit_state(self) -> None:
        hp = self.hparams
        if hp.train_path is None:
            raise DataError(
                "CSVDataModule has no fitted columns, classes or normalisation: pass --ckpt_path of a run trained "
                "with this data, or set data.train_path."
            )
        train = self.table("train")
        labels = self._label_columns(train)
        dropped = list(hp.drop_columns or [])
        unknown = [c for c in dropped + list(hp.features or []) if c not in train.header]
        if unknown:
            raise DataError(
                f"{train.path}: no column(s) {unknown}; the columns are {train.header}. "
                "Fix data.features / data.drop_columns."
            )
        features = list(hp.features) if hp.features else [c for c in train.header if c not in labels + dropped]
        if not features:
            raise DataError(f"{train.path}: no feature columns left after the label {labels} and drop_columns.")
        train = self._tables["train"] = self._drop_missing(train, features + labels)
        if hp.task == "regression":
            mapping = None
        elif len(labels) > 1:
            mapping = ClassMapping([str(k) for k in range(len(labels))], numeric=True)
        else:
            mapping = ClassMapping.fit(train, train.header.index(labels[0]), hp.classes, hp.positive_class)
        self.state = {"task": hp.task, "features": features, "labels": labels, "dropped": dropped}
        self.state["target_scale"] = float(hp.target_scale)
        self.state["classes"] = None if mapping is None else mapping.state()
        x, y = self._arrays(train, "train", normalizer=None)
        if mapping is not None and len(np.unique(y)) < 2:
            raise DataError(
                f"{train.path}, column(s) {labels}: the training rows hold one class only; there is nothing to "
                "learn. Check data.label and the file, or add rows of the other classes."
            )
        normalizer = Normalizer.fit(hp.normalize, x, features, str(train.path))
        self.state["normalizer"] = normalizer.state()
        self.forget_tensors()
        what = f"classes {mapping.describe()}" if mapping else f"regression target {labels} / {hp.target_scale:g}"
        announce(
            f"{hp.name} data: {train.path}, {len(x)} training rows; features {features}; {what}; "
            f"normalize {hp.normalize} (fitted on the training rows)"
        )

    def _label_columns(self, table: CsvTable) -> list[str]:
        label = self.hparams.label
        if isinstance(label, (list, tuple)):
            names = [str(c) for c in label]
        elif isinstance(label, int):
            if not -len(table.header) <= label < len(table.header):
                raise DataError(f"{table.path}: data.label index {label} is outside its {len(table.header)} columns.")
            names = [table.header[label]]
        elif label is not None:
            names = [label]
        else:
            block = one_hot_block(table) if self.hparams.task == "classification" else []
            names = block or [table.header[-1]]
        missing = [c for c in names if c not in table.header]
        if missing:
            raise DataError(f"{table.path}: no label column {missing}; the columns are {table.header}. Set data.label.")
        return names

    # ---- files and splits ---------------------------------------------------------------------
    def table(self, split: str) -> CsvTable:
        """The rows of one split: its own file, or its share of the training file."""
        if split not in self._tables:
            hp = self.hparams
            own = {"val": hp.val_path, "test": hp.test_path, "predict": hp.predict_path}.get(split)
            if own is not None:
                self._tables[split] = read_csv_text(own, hp.encoding, hp.delimiter)
            elif split == "predict":
                raise DataError("nothing to predict: set data.predict_path to a CSV with the training features.")
            else:
                self._split_training_file()
        return self._tables[split]

    def _split_training_file(self) -> None:
        hp = self.hparams
        if hp.train_path is None:
            raise DataError("set data.train_path: there is no training file to fit or split.")
        whole = read_csv_text(hp.train_path, hp.encoding, hp.delimiter)
        n = len(whole)
        order = np.random.default_rng(hp.split_seed).permutation(n)
        n_test, n_val = int(round(n * hp.test_fraction)), int(round(n * hp.val_fraction))
        parts = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
        for name, rows in parts.items():
            if name != "train" and hp.get(f"{name}_path") is not None:
                continue
            if len(rows) == 0 and (name == "train" or hp.get(f"{name}_fraction")):
                raise DataError(
                    f"{whole.path}: {n} rows leave no {name} rows for val_fraction {hp.val_fraction} and "
                    f"test_fraction {hp.test_fraction}. Add rows or change the fractions."
                )
            self._tables[name] = whole.subset(rows)

    def check_files(self, stage: str) -> None:
        """The stage's own files, read now: a missing or unreadable file fails before anything is written."""
        splits = {"validate": ["val"], "test": ["test"], "predict": ["predict"]}.get(stage, [])
        for split in splits:
            if self._has_split(split) and (split == "predict" or self.hparams.get(f"{split}_path") is not None):
                self.table(split)

    def _has_split(self, split: str) -> bool:
        hp = self.hparams
        if split == "train":
            return hp.train_path is not None
        if split == "val":
            return hp.val_path is not None or (hp.val_fraction > 0 and hp.train_path is not None)
        if split == "test":
            return hp.test_path is not None or (hp.test_fraction > 0 and hp.train_path is not None)
        return hp.predict_path is not None

    def _drop_missing(self, table: CsvTable, columns: list[str]) -> CsvTable:
        if self.hparams.missing != "drop":
            return table
        kinds = table.kinds([table.header.index(c) for c in columns if c in table.header])
        if kinds is None:
            return table
        incomplete = (kinds == CellKind.MISSING).any(axis=1)
        if not incomplete.any():
            return table
        dropped = table.lines[incomplete]
        announce(f"{table.path}: dropped {len(dropped)} row(s) with missing cells (lines {dropped[:10].tolist()})")
        if incomplete.all():
            raise DataError(f"{table.path}: every row has a missing cell; nothing is left. Fill in the file.")
        return table.subset(np.flatnonzero(~incomplete))

    def _check_columns(self, table: CsvTable, split: str) -> None:
        """Other files must carry the training features (and the label, except predict files)."""
        features, labels = self.feature_names, self.label_names
        needed = features + (labels if split != "predict" else [])
        missing = [c for c in needed if c not in table.header]
        extra: list[str] = []
        if not self.hparams.features:  # features were "everything else", so extra columns would change them
            ignored = set(labels) | set(self.state.get("dropped", [])) | set(self.hparams.drop_columns or [])
            extra = [c for c in table.header if c not in features and c not in ignored]
        if missing or extra:
            raise DataError(
                f"{table.path}: its columns differ from the training data's (missing {missing}, unexpected {extra}). "
                f"Training used features {features} and label {labels}; give this file the same columns, or list "
                "data.features / data.drop_columns."
            )

    def _arrays(self, table: CsvTable, split: str, normalizer: Normalizer | None) -> tuple[np.ndarray, np.ndarray]:
        """Features (normalised when a normaliser is given) and targets as float64 / int64 arrays."""
        features, labels = self.state["features"], self.state["labels"]
        x = numeric_columns(table, [table.header.index(c) for c in features])
        if normalizer is not None:
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below, naming the cell
                x = normalizer.apply(x, out=x)  # x is this split's own copy
            require_finite(x, table, features, f"after normalize {normalizer.kind}")
        if split == "predict":
            return x, np.empty(0)
        label_cols = [table.header.index(c) for c in labels]
        if self.state["task"] == "regression":
            with np.errstate(over="ignore"):
                y = numeric_columns(table, label_cols, role="Target") / self.state["target_scale"]
            require_finite(y, table, labels, f"divided by target_scale {self.state['target_scale']:g}")
            return x, y
        if len(label_cols) > 1:
            block = numeric_columns(table, label_cols, role="One-hot label")
            return x, block.argmax(1).astype(np.int64)
        return x, ClassMapping.from_state(self.state["classes"]).encode(table, label_cols[0])

    def prepared_table(self, split: str) -> CsvTable:
        table = self.table(split)
        if split != "train":
            self._check_columns(table, split)
        used = self.feature_names + (self.label_names if split != "predict" else [])
        return self._drop_missing(table, used)

    def build_tensors(self, split: str) -> tuple[Tensor, ...] | None:
        if split == "predict" and not self._has_split("predict"):
            if not self._has_split("test"):
                raise DataError("nothing to predict: set data.predict_path to a CSV with the training features.")
            split_table = self.prepared_table("test")  # no predict file: predict the test rows
        elif not self._has_split(split):
            return None
        else:
            split_table = self.prepared_table(split)
        x, y = self._arrays(split_table, split, self.normalizer)
        if split == "predict":
            self._predict_table = split_table
            return (torch.from_numpy(x),)
        return torch.from_numpy(x), torch.from_numpy(y)

    def prediction_inputs(self) -> tuple[list[str], list[list[str]]]:
        self.tensors("predict")
        assert self._predict_table is not None
        return list(self._predict_table.header), self._predict_table.text_rows()
