"""LightningDataModules for the notebooks' data; all end in whole-split tensors and TensorBatchLoader."""

from datamodules.base import TensorDataModule
from datamodules.mnist import MNISTDataModule
from datamodules.tabular import CSVDataModule
from datamodules.toy import ToyDataModule
from datamodules.week04 import Week04DataModule

__all__ = ["CSVDataModule", "MNISTDataModule", "TensorDataModule", "ToyDataModule", "Week04DataModule"]
