"""MNIST family: IDX reading (gz or not, torchvision layout or flat), the seeded 10% validation
split, normalisation, the offline error, and the real Fashion-MNIST from Debian's package (skipped
with the install command when it is absent)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

import datamodules.mnist as mnist_module
from datamodules import MNISTDataModule
from datamodules.csv_table import DataError
from tests.conftest import DEBIAN_FASHION, needs_debian_fashion


def idx_bytes(array: np.ndarray) -> bytes:
    return struct.pack(f">BBBB{array.ndim}I", 0, 0, 8, array.ndim, *array.shape) + array.astype(np.uint8).tobytes()


def write_idx_set(folder: Path, n_train: int = 50, n_test: int = 20, gz: bool = True, seed: int = 0) -> dict:
    """Small random images and labels in the four MNIST file names."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        data = idx_bytes(array)
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(data) if gz else data)
    return arrays


def test_flat_gz_idx_files_split_normalise_and_flatten(tmp_path) -> None:
    arrays = write_idx_set(tmp_path / "files", gz=True)
    dm = MNISTDataModule("mnist", data_dir=str(tmp_path / "files"), download=False)
    dm.setup("fit")
    assert "IDX files in" in dm.source
    x, y = dm.tensors("train")
    assert x.shape == (45, 784) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert [len(dm.tensors(s)[0]) for s in ("val", "test", "predict")] == [5, 20, 20]
    # the notebook's random_split(generator=manual_seed(42)): same members, same order
    train_idx, val_idx = torch.utils.data.random_split(range(50), [45, 5], generator=torch.Generator().manual_seed(42))
    images = torch.from_numpy(arrays["train-images-idx3-ubyte"]).float()
    expected = ((images / 255 - 0.1307) / 0.3081).reshape(50, -1)
    torch.testing.assert_close(x, expected[list(train_idx)])
    torch.testing.assert_close(dm.tensors("val")[0], expected[list(val_idx)])
    assert dm.tensors("val")[1].tolist() == arrays["train-labels-idx1-ubyte"][list(val_idx)].tolist()
    assert dm.tensors("test")[1].tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert dm.class_names[0] == "0 - zero" and dm.num_classes == 10


def test_torchvision_layout_is_read_by_the_torchvision_class_and_images_keep_their_shape(tmp_path) -> None:
    arrays = write_idx_set(tmp_path / "KMNIST" / "raw", gz=False, n_train=40)
    dm = MNISTDataModule("kmnist", data_dir=str(tmp_path), download=False, flatten=False, normalize="standard")
    dm.setup("fit")
    assert dm.source.startswith("torchvision KMNIST")
    assert dm.tensors("train")[0].shape == (36, 1, 28, 28)
    # KMNIST has no stated constants: mean/std of all its training images, kept in the state
    pixels = arrays["train-images-idx3-ubyte"] / 255
    assert dm.state_dict() == pytest.approx({"mean": pixels.mean(), "std": pixels.std()})
    every = torch.cat([dm.tensors("train")[0], dm.tensors("val")[0]])
    assert abs(float(every.mean())) < 1e-5 and abs(float(every.std(correction=0)) - 1) < 1e-4


def test_state_from_a_checkpoint_replaces_the_fitted_normalisation(tmp_path) -> None:
    arrays = write_idx_set(tmp_path, gz=False)
    dm = MNISTDataModule("mnist", data_dir=str(tmp_path), download=False, normalize="train")
    dm.setup("fit")
    fitted = dm.state_dict()
    train_pixels = torch.from_numpy(arrays["train-images-idx3-ubyte"]).double()[list(dm_train_order(50))] / 255
    assert fitted == pytest.approx({"mean": float(train_pixels.mean()), "std": float(train_pixels.std(correction=0))})
    before = dm.tensors("test")[0].clone()
    dm.load_state_dict({"mean": 0.0, "std": 1.0})
    raw = torch.from_numpy(arrays["t10k-images-idx3-ubyte"]).float() / 255
    torch.testing.assert_close(dm.tensors("test")[0], raw.reshape(20, -1))
    assert not torch.equal(before, dm.tensors("test")[0])


def dm_train_order(n: int) -> list[int]:
    """Training rows of the 10% seeded split: the first 90% of randperm(n, seed 42)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(42))[: n - n // 10].tolist()


def test_offline_without_files_says_what_was_looked_for_and_how_to_get_it(tmp_path, monkeypatch) -> None:
    def offline(self) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried http://x/, got:\n<urlopen error>")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    dm = MNISTDataModule("mnist", data_dir=str(tmp_path / "empty"))
    with pytest.raises(DataError) as err:
        dm.setup("fit")
    message = str(err.value)
    for expected in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "(plain or .gz)", str(tmp_path / "empty")):
        assert expected in message
    assert "download failed (offline?)" in message and "run once online" in message
    monkeypatch.setitem(mnist_module.SYSTEM_DIRS, "fashion_mnist", [tmp_path / "no-debian"])
    fashion = MNISTDataModule("fashion_mnist", data_dir=str(tmp_path / "empty"), download=False)
    with pytest.raises(
        DataError, match=r"data\.download is false\. To get them: `apt-get install dataset-fashion-mnist`"
    ) as err:
        fashion.setup("fit")
    assert str(tmp_path / "no-debian") in str(err.value)


def test_corrupt_idx_file_is_named(tmp_path) -> None:
    write_idx_set(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x09abc"))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: header says shape \(9,\).*truncated"):
        MNISTDataModule("mnist", data_dir=str(tmp_path), download=False).setup("fit")
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: not a readable gzip file"):
        MNISTDataModule("mnist", data_dir=str(tmp_path), download=False).setup("fit")


@pytest.mark.slow
@needs_debian_fashion
def test_real_fashion_mnist_from_the_debian_package(tmp_path) -> None:
    """Its load time is benchmark W10 (benchmarks/w10_fashion_load.py), not an assertion here."""
    dm = MNISTDataModule("fashion_mnist", data_dir=str(tmp_path), download=False)
    dm.setup("fit")
    sizes = [len(dm.tensors(s)[0]) for s in ("train", "val", "test")]
    assert sizes == [54_000, 6_000, 10_000]
    assert str(DEBIAN_FASHION) in dm.source
    x, y = dm.tensors("train")
    assert x.shape == (54_000, 784) and torch.unique(y).tolist() == list(range(10))
    assert dm.class_names[0] == "T-shirt/top" and dm.num_classes == 10
    # the stated constants 0.2860 / 0.3530 make the training pixels ~ zero mean, unit std
    assert abs(float(x.mean())) < 0.01 and abs(float(x.std()) - 1) < 0.01
    batch = next(iter(dm.train_dataloader()))
    assert batch[0].shape == (128, 784) and batch[1].shape == (128,)
