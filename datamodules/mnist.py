"""MNIST, Fashion-MNIST and KMNIST as whole-split tensors, normalised once.

Files come from, in order: torchvision's own layout under ``data_dir`` (read by the torchvision
dataset class), raw IDX files (``.gz`` or not) in ``data_dir`` or a system directory such as
Debian's ``/usr/share/datasets/fashion-mnist``, and finally a torchvision download when online.
There is no per-item PIL image, ToTensor or collate: batches are index slices of one tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.error import URLError

import numpy as np
import torch
import torchvision
from torch import Tensor
from torchvision.transforms import v2

from datamodules.base import TensorDataModule, announce
from datamodules.csv_table import DataError
from datamodules.idx import IDX_NAMES, find_idx_files, read_idx

DatasetName = Literal["mnist", "fashion_mnist", "kmnist"]
Normalization = Literal["standard", "train", "none"]

TORCHVISION_CLASSES = {
    "mnist": torchvision.datasets.MNIST,
    "fashion_mnist": torchvision.datasets.FashionMNIST,
    "kmnist": torchvision.datasets.KMNIST,
}
# Mean and std of the 60,000 training images scaled to [0, 1]. MNIST's are the usual constants;
# Fashion-MNIST's were computed here from the official training file (0.28604, 0.35302). KMNIST
# has none stated: they are computed from its 60,000 training images when loaded, and logged.
STANDARD_STATS = {"mnist": (0.1307, 0.3081), "fashion_mnist": (0.2860, 0.3530)}
SYSTEM_DIRS = {"fashion_mnist": [Path("/usr/share/datasets/fashion-mnist")]}
HOW_TO_GET = {
    "mnist": "run once online (torchvision downloads it into data_dir)",
    "fashion_mnist": "`apt-get install dataset-fashion-mnist` (files land in /usr/share/datasets/fashion-mnist), "
    "or run once online",
    "kmnist": "run once online (torchvision downloads it into data_dir)",
}


class MNISTDataModule(TensorDataModule):
    """28x28 grey images, 10 classes; 10% of train held out for validation with ``split_seed``,
    exactly the members and order of the MNIST-week notebook's ``random_split`` (seed 42).

    ``flatten`` gives 784 features for the MLPs, else ``(1, 28, 28)`` images. ``normalize``:
    ``standard`` (the constants above), ``train`` (mean/std of this run's training split) or
    ``none`` (pixels / 255). Tensors are float32; ``on_device`` moves them to the training device once.

    ``augment`` shifts and rotates every training image at random, afresh in every batch
    (``v2.RandomAffine``: up to ``augment_degrees`` degrees and ``augment_translate`` of the width and
    height); validation, test and predict images are left alone.
    """

    def __init__(
        self,
        dataset: DatasetName = "mnist",
        data_dir: str = "data",
        download: bool = True,
        val_fraction: float = 0.1,
        split_seed: int = 42,
        flatten: bool = True,
        normalize: Normalization = "standard",
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        on_device: bool = False,
        augment: bool = False,
        augment_degrees: float = 10.0,
        augment_translate: float = 0.1,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, shuffle, seed, on_device)
        if dataset not in TORCHVISION_CLASSES:
            raise ValueError(f"data.dataset must be one of {list(TORCHVISION_CLASSES)}, got {dataset!r}")
        if augment_degrees < 0 or not 0 <= augment_translate <= 1:
            raise ValueError(
                f"data.augment_degrees must be >= 0 and data.augment_translate in [0, 1], got {augment_degrees} "
                f"and {augment_translate}"
            )
        self.save_hyperparameters()
        self.images: dict[str, tuple[Tensor, Tensor]] = {}
        self.stats: tuple[float, float] | None = None
        self.source = ""

    # ---- files ---------------------------------------------------------------------------------
    @property
    def torchvision_class(self) -> type:
        return TORCHVISION_CLASSES[self.hparams.dataset]

    def search_dirs(self) -> list[Path]:
        root = Path(self.hparams.data_dir)
        name = self.hparams.dataset
        dirs = [root / self.torchvision_class.__name__ / "raw", root, root / name, root / name.replace("_", "-")]
        return list(dict.fromkeys(dirs + SYSTEM_DIRS.get(name, [])))

    def _read_local(self) -> dict[str, tuple[Tensor, Tensor]] | None:
        cls, root = self.torchvision_class, self.hparams.data_dir
        raw = Path(root) / cls.__name__ / "raw"
        if all((raw / stem).is_file() for pair in IDX_NAMES.values() for stem in pair):
            self.source = f"torchvision {cls.__name__} in {raw}"
            return {split: self._from_torchvision(split == "train", download=False) for split in IDX_NAMES}
        files = find_idx_files(self.search_dirs())
        if files is None:
            return None
        self.source = f"IDX files in {files[IDX_NAMES['train'][0]].parent}"
        out = {}
        for split, (images, labels) in IDX_NAMES.items():
            x = torch.from_numpy(read_idx(files[images]).copy())
            y = torch.from_numpy(read_idx(files[labels]).astype("int64"))
            if x.ndim != 3 or len(x) != len(y):
                raise DataError(f"{files[images]}: expected (N, 28, 28) images and N labels, got {tuple(x.shape)}.")
            out[split] = (x, y)
        return out

    def _from_torchvision(self, train: bool, download: bool) -> tuple[Tensor, Tensor]:
        ds = self.torchvision_class(self.hparams.data_dir, train=train, download=download)
        return ds.data, ds.targets.long()

    def _download(self) -> dict[str, tuple[Tensor, Tensor]]:
        cls = self.torchvision_class
        try:
            out = {split: self._from_torchvision(split == "train", download=True) for split in IDX_NAMES}
        except (RuntimeError, URLError, OSError) as err:
            reason = " ".join(str(err).split())[:300]
            raise self._missing_error(f"and the download failed (offline?): {reason}") from None
        self.source = f"torchvision {cls.__name__}, downloaded to {self.hparams.data_dir}"
        return out

    def _missing_error(self, why: str) -> DataError:
        stems = [stem for pair in IDX_NAMES.values() for stem in pair]
        dirs = "\n  ".join(str(d) for d in self.search_dirs())
        return DataError(
            f"{self.hparams.dataset}: no {', '.join(stems)} (plain or .gz) in any of\n  {dirs}\n{why}. "
            f"To get them: {HOW_TO_GET[self.hparams.dataset]}, or copy the four files into data.data_dir."
        )

    def load_images(self) -> dict[str, tuple[Tensor, Tensor]]:
        """``{"train": (uint8 images, int64 labels), "test": ...}`` from disk, or downloaded."""
        found = self._read_local()
        if found is not None:
            return found
        if not self.hparams.download:
            raise self._missing_error("and data.download is false")
        return self._download()

    # ---- tensors -------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.images:
            return
        hp = self.hparams
        loaded = self.load_images()
        x, y = loaded["train"]
        n_val = int(len(x) * hp.val_fraction)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(hp.split_seed))
        self.images["train"] = (x[order[: len(x) - n_val]], y[order[: len(x) - n_val]])
        self.images["val"] = (x[order[len(x) - n_val :]], y[order[len(x) - n_val :]])
        self.images["test"] = self.images["predict"] = loaded["test"]
        if self.stats is None:
            self.stats = self._fit_stats(x)
        announce(
            f"{hp.dataset}: {self.source}; train {len(self.images['train'][0])}, val {n_val}, "
            f"test {len(loaded['test'][0])}; normalize {hp.normalize} "
            f"(mean {self.stats[0]:.4f}, std {self.stats[1]:.4f})"
        )

    def _fit_stats(self, all_train: Tensor) -> tuple[float, float]:
        kind, name = self.hparams.normalize, self.hparams.dataset
        if kind == "none":
            return 0.0, 1.0
        if kind == "standard" and name in STANDARD_STATS:
            return STANDARD_STATS[name]
        pixels = (self.images["train"][0] if kind == "train" else all_train).double() / 255
        return float(pixels.mean()), float(pixels.std(correction=0))

    def state_dict(self) -> dict[str, object]:
        return {"mean": self.stats[0], "std": self.stats[1]} if self.stats else {}

    def load_state_dict(self, state_dict: dict[str, object]) -> None:
        self.stats = (float(state_dict["mean"]), float(state_dict["std"]))
        self.forget_tensors()

    def build_tensors(self, split: str) -> tuple[Tensor, ...] | None:
        self.setup()
        images, labels = self.images[split]
        if len(images) == 0:
            return None
        mean, std = self.stats
        x = (images.to(torch.float32) / 255 - mean) / std
        x = x.reshape(len(x), -1) if self.hparams.flatten else x.unsqueeze(1)
        return (x,) if split == "predict" else (x, labels)

    # ---- augmentation ----------------------------------------------------------------------------
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Augment training batches, once they are on the device; other stages' batches pass unchanged.

        Why this hook: batches are slices of whole-split tensors, so there is no per-item transform to
        add, and this public DataModule hook sees every batch of every stage, knows from the trainer
        whether it is a training batch, and needs nothing from the loader or the LightningModule. Both
        modules therefore train on the same augmented batches.
        """
        if not self.hparams.augment or self.trainer is None or not self.trainer.training:
            return batch
        x, y = batch
        return self.augmented(x, self.trainer.global_step, self.trainer.global_rank), y

    def augmented(self, x: Tensor, step: int, rank: int = 0) -> Tensor:
        """Each image of ``x`` ((N, 784) or (N, 1, 28, 28)) shifted and rotated by its own random draw.

        The draws depend only on the data seed, the optimiser step the batch feeds and the rank: they
        come from torch's generator seeded with those, inside ``fork_rng``, so the run's other random
        streams are untouched and a resumed run draws them again. Images are already normalised, so the
        corners a rotation uncovers are filled with the normalised value of a black pixel.
        """
        mean, std = self.stats
        transform = v2.RandomAffine(
            degrees=self.hparams.augment_degrees,
            translate=(self.hparams.augment_translate,) * 2,
            fill=-mean / std,
        )
        images = x.reshape(len(x), 1, 28, 28)
        batch_seed = int(np.random.SeedSequence([self.seed, step, rank]).generate_state(1)[0])
        threads = torch.get_num_threads()
        # One intra-op thread: on 28x28 images a second one only adds synchronisation (10x slower under load).
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(batch_seed)
                out = torch.stack([transform(image) for image in images])  # RandomAffine draws once per call
        finally:
            torch.set_num_threads(threads)
        return out.reshape(x.shape)

    @property
    def num_classes(self) -> int:
        return 10

    @property
    def class_names(self) -> list[str]:
        return list(self.torchvision_class.classes)

    def prediction_inputs(self) -> tuple[list[str], list[list[str]]]:
        self.setup()
        return ["test_index", "label"], [[str(i), str(int(c))] for i, c in enumerate(self.images["predict"][1])]
