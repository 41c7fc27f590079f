"""LightningDataModules for the notebooks' data."""

from datamodules.week04 import Week04DataModule

__all__ = ["Week04DataModule"]
