"""Networks (plain nn.Modules), their hand-derived math (models.layers), and the LightningModules that train them."""

from models.lightning_modules import ManualModule, MLPModule, NativeModule
from models.manual_net import ManualMLP
from models.native_net import NativeMLP
from models.spec import MLPSpec

__all__ = ["ManualMLP", "ManualModule", "MLPModule", "MLPSpec", "NativeMLP", "NativeModule"]
