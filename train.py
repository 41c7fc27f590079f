"""Command line: ``python train.py {fit,validate,test,predict,compare} --config configs/week04.yaml``.

Pick the module with ``--model models.ManualModule`` (hand-derived gradients, the default in the
configs) or ``--model models.NativeModule`` (autograd); the network description is shared.
"""

from __future__ import annotations

import logging
import sys
import warnings

from lightning.pytorch import LightningDataModule
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from callbacks.weights_export import WeightsExport
from models.lightning_modules import MLPModule

# The modules cast batches to their own dtype in on_after_batch_transfer, on purpose.
warnings.filterwarnings("ignore", message=".*overridden `on_after_batch_transfer`.*")


class WithoutCloudTips(logging.Filter):
    """Drops Lightning's "💡 Tip" lines that advertise its cloud services (litlogger, litmodels): this project
    runs offline and logs to TensorBoard, so the tips are noise in every command's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("💡 Tip")


# Lightning prints through Python loggers named after its modules, which its docs invite users to configure
# ("Console logging"); the tips come through rank_zero_info, whose logger is this one.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(WithoutCloudTips())


class BackpropCLI(LightningCLI):
    """LightningCLI with the weights export always on and an optional test right after fit."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(WeightsExport, "weights_export")
        parser.add_argument("--test_after_fit", type=bool, default=False, help="Run test on the fitted weights.")

    def after_fit(self) -> None:
        if self.config[self.subcommand].get("test_after_fit"):
            self.trainer.test(self.model, datamodule=self.datamodule, verbose=False)


def make_cli(args: list[str] | None = None, run: bool = True) -> BackpropCLI:
    """The CLI over every MLPModule and DataModule; ``args`` and ``run=False`` serve in-process use."""
    with warnings.catch_warnings():
        if args is not None:  # in-process callers pass their arguments on purpose, whatever sys.argv holds
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended to run from within")
        return BackpropCLI(
            MLPModule,
            LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            auto_configure_optimizers=False,
            args=args,
            run=run,
        )


def cli_main(args: list[str] | None = None) -> None:
    """``compare`` runs :mod:`compare` on the same config and overrides; anything else is LightningCLI's."""
    argv = sys.argv[1:] if args is None else args
    if argv[:1] == ["compare"]:
        from compare import compare_main

        raise SystemExit(compare_main(argv[1:], make_cli))
    make_cli(args)


if __name__ == "__main__":
    cli_main()
