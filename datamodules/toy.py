"""Small classification sets made in memory with a seed (week 7, MNIST week, week 4) or shipped with
scikit-learn (the 8x8 digits), so they work fully offline."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from sklearn.datasets import load_digits, make_circles, make_classification, make_moons
from sklearn.model_selection import train_test_split
from torch import Tensor

from datamodules.base import TensorDataModule, announce
from datamodules.normalize import NormalizeKind, Normalizer
from datamodules.synthetic import mnist_week_blobs, week04_blobs, xor

ToyName = Literal["moons", "circles", "classification", "xor", "blobs", "week04_blobs", "digits"]
DEFAULT_SIZES = {
    "moons": 300,
    "circles": 300,
    "classification": 300,
    "xor": 300,
    "blobs": 160,
    "week04_blobs": 600,
    "digits": 1797,
}


def generate(name: ToyName, n_samples: int, noise: float, random_state: int, n_features: int, n_classes: int):
    """``(x, y)`` of the named set; ``blobs`` is the MNIST-week notebook's (80 per class with seed 42)."""
    if name == "moons":
        return make_moons(n_samples=n_samples, noise=noise, random_state=random_state)
    if name == "circles":
        return make_circles(n_samples=n_samples, noise=noise, factor=0.5, random_state=random_state)
    if name == "classification":
        return make_classification(
            n_samples=n_samples,
            n_features=n_features,
            n_informative=n_features,
            n_redundant=0,
            n_classes=n_classes,
            n_clusters_per_class=1,
            random_state=random_state,
        )
    if name == "xor":
        return xor(n_samples, noise, random_state)
    if name == "blobs":
        return mnist_week_blobs(random_state, n_samples // 2)
    if name == "digits":  # 1797 images of 8x8 pixels valued 0..16, flattened to 64 features
        x, y = load_digits(return_X_y=True)
        return x.astype(np.float64), y.astype(np.int64)
    raise ValueError(f"unknown toy data set {name!r}; choose one of {', '.join(DEFAULT_SIZES)}")


class ToyDataModule(TensorDataModule):
    """``dataset`` drawn with ``random_state``, split ``test_size`` with ``split_seed`` by
    scikit-learn's ``train_test_split`` (week 7: moons, n=300, noise 0.2, 70/30, both seeds 42).

    ``week04_blobs`` keeps the week-4 notebook's own 400/200 split; ``digits`` is scikit-learn's
    ``load_digits`` (64 features, 10 classes). With ``val_size`` 0 the
    notebooks have no validation split, so validation tracks the test split (nothing is selected on it).
    ``test_size`` 0 is no split at all, as in the MNIST-week notebook: every row trains, the test runs on
    the training rows, and there is no validation split (Lab 4's arrangement; set
    ``trainer.limit_val_batches: 0``).
    """

    def __init__(
        self,
        dataset: ToyName = "moons",
        n_samples: int | None = None,
        noise: float = 0.2,
        random_state: int = 42,
        test_size: float = 0.3,
        val_size: float = 0.0,
        split_seed: int = 42,
        n_features: int = 2,
        n_classes: int = 2,
        normalize: NormalizeKind = "none",
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        on_device: bool = False,
    ) -> None:
        """``n_samples`` defaults per set: 300, 160 for ``blobs`` (MNIST week), 600 for ``week04_blobs``."""
        super().__init__(batch_size, eval_batch_size, shuffle, seed, on_device)
        if not 0 <= test_size < 1 or not 0 <= val_size < 1:
            raise ValueError(f"data.test_size and data.val_size are fractions in [0, 1), got {test_size}, {val_size}")
        self.save_hyperparameters()
        self.arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.normalizer_state: dict[str, object] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.arrays:
            return
        hp = self.hparams
        no_split = hp.test_size == 0 and hp.dataset != "week04_blobs"
        if hp.dataset == "week04_blobs":
            x_train, y_train, x_test, y_test = week04_blobs(hp.random_state)
        else:
            n = hp.n_samples or DEFAULT_SIZES[hp.dataset]
            x_train, y_train = x_test, y_test = generate(
                hp.dataset, n, hp.noise, hp.random_state, hp.n_features, hp.n_classes
            )
            if not no_split:
                split = train_test_split(x_train, y_train, test_size=hp.test_size, random_state=hp.split_seed)
                x_train, x_test, y_train, y_test = split
        if hp.val_size > 0:
            x_train, x_val, y_train, y_val = train_test_split(
                x_train, y_train, test_size=hp.val_size, random_state=hp.split_seed
            )
            self.arrays["val"] = (x_val, y_val)
        elif not no_split:
            self.arrays["val"] = (x_test, y_test)
        self.arrays["train"] = (x_train, y_train)
        self.arrays["test"] = self.arrays["predict"] = self.arrays["train"] if no_split else (x_test, y_test)
        if not self.normalizer_state:
            names = [f"x{j + 1}" for j in range(x_train.shape[1])]
            self.normalizer_state = Normalizer.fit(hp.normalize, x_train, names, hp.dataset).state()
        if "val" not in self.arrays:
            val = "no validation split"
        else:
            val = f"val {len(self.arrays['val'][0])}{' (the test split)' if hp.val_size == 0 else ''}"
        test = "test on the training rows (test_size 0: no split)" if no_split else f"test {len(x_test)} rows"
        announce(f"toy data {hp.dataset}: train {len(x_train)} rows, {val}, {test}; normalize {hp.normalize}")

    def state_dict(self) -> dict[str, object]:
        return {"normalizer": dict(self.normalizer_state)} if self.normalizer_state else {}

    def load_state_dict(self, state_dict: dict[str, object]) -> None:
        self.normalizer_state = dict(state_dict["normalizer"])
        self.forget_tensors()

    @property
    def num_classes(self) -> int:
        self.setup()
        return int(self.arrays["train"][1].max()) + 1

    def build_tensors(self, split: str) -> tuple[Tensor, ...] | None:
        self.setup()
        if split not in self.arrays:  # no validation split when there is no split at all
            return None
        x, y = self.arrays[split]
        x = torch.from_numpy(Normalizer.from_state(self.normalizer_state).apply(x))
        return (x,) if split == "predict" else (x, torch.from_numpy(y.astype(np.int64)))

    def prediction_inputs(self) -> tuple[list[str], list[list[str]]]:
        self.setup()
        x, y = self.arrays["predict"]
        header = [f"x{j + 1}" for j in range(x.shape[1])] + ["label"]
        return header, [[repr(float(v)) for v in row] + [str(int(c))] for row, c in zip(x, y)]
