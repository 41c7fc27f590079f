"""Command line: ``python train.py {fit,validate,test,predict} --config configs/week04.yaml``.

Pick the module with ``--model models.ManualModule`` (hand-derived gradients, the default in the
configs) or ``--model models.NativeModule`` (autograd); the network description is shared.
"""

from __future__ import annotations

import warnings

from lightning.pytorch import LightningDataModule
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from callbacks.weights_export import WeightsExport
from models.lightning_modules import MLPModule

# The modules cast batches to their own dtype in on_after_batch_transfer, on purpose.
warnings.filterwarnings("ignore", message=".*overridden `on_after_batch_transfer`.*")


class BackpropCLI(LightningCLI):
    """LightningCLI with the weights export always on and an optional test right after fit."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(WeightsExport, "weights_export")
        parser.add_argument("--test_after_fit", type=bool, default=False, help="Run test on the fitted weights.")

    def after_fit(self) -> None:
        if self.config[self.subcommand].get("test_after_fit"):
            self.trainer.test(self.model, datamodule=self.datamodule, verbose=False)


def cli_main() -> None:
    BackpropCLI(
        MLPModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        auto_configure_optimizers=False,
    )


if __name__ == "__main__":
    cli_main()
