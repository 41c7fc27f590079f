"""Networks (plain nn.Modules), their hand-derived math (models.layers), and the LightningModules that train them.

The LightningModules are imported on first use (``models.ManualModule``, as configs name them), so that the
nets and layers (``from models.layers import Dense``) load without Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

DEFINED_IN = {
    "MLPModule": "models.lightning_modules",
    "ManualModule": "models.lightning_modules",
    "NativeModule": "models.lightning_modules",
    "ManualMLP": "models.manual_net",
    "NativeMLP": "models.native_net",
    "MLPSpec": "models.spec",
}
__all__ = sorted(DEFINED_IN)


def __getattr__(name: str) -> Any:
    if name not in DEFINED_IN:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    return getattr(importlib.import_module(DEFINED_IN[name]), name)
