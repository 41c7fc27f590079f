"""Command line: ``python train.py {fit,validate,test,predict,compare} --config configs/week04.yaml``.

Pick the module with ``--model models.ManualModule`` (hand-derived gradients, the default in the
configs) or ``--model models.NativeModule`` (autograd); the network description is shared.
A mistake the user can fix (data, config value, checkpoint) prints one message and exits 2 with nothing
written (:mod:`commands.errors`); options must be spelled out in full (no abbreviations).
"""

from __future__ import annotations

import commands.ctrl_c  # noqa: F401  first: Ctrl-C during the imports below is one line, not a traceback

# isort: split

import gc
import logging
import sys
import warnings
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_warn

from callbacks.checkpoint_fit import check_checkpoint_fits
from callbacks.checkpoints import check_checkpoint
from callbacks.disk import check_writable
from callbacks.interrupt_report import InterruptReport
from callbacks.progress import PlainProgress
from callbacks.weights_export import WeightsExport
from commands.errors import as_config_error, report_and_exit
from commands.frozen_gc import long_lived_objects_frozen
from commands.optimizer_values import check_optimization
from commands.resume import keep_module_settings, module_settings_to_keep
from commands.sweep_grid import SweepOptions
from datamodules.base import TensorDataModule
from models.console import SAID, say, set_verbose, verbose
from models.lightning_modules import MLPModule

# Run directories this process was about to create, removed again if the run fails with nothing in them.
PLANNED_RUN_DIRS: list[Path] = []
EVALUATIONS = ("validate", "test", "predict")


def log_into_checkpoint_run(config: Namespace, stage: str, ckpt_path: Path) -> None:
    """``validate``/``test``/``predict`` of ``<run>/checkpoints/x.ckpt`` log into ``<run>/<stage>/version_<k>``,
    beside the run they evaluate, instead of starting a new ``version_<n>`` of the config's name. The logger's
    ``save_dir`` stays when the run lies in it, so tables kept there (the F1 comparison) stay in one place."""
    logger = config.get("trainer", {}).get("logger")
    init_args = logger.get("init_args") if isinstance(logger, Namespace) else None
    if ckpt_path.parent.name != "checkpoints" or not isinstance(init_args, Namespace) or "save_dir" not in init_args:
        return
    run, save_dir = ckpt_path.parent.parent, Path(init_args.save_dir or ".")
    try:
        name = run.resolve().relative_to(save_dir.resolve()) / stage
    except ValueError:  # a checkpoint from another runs folder: log under its run
        save_dir, name = run, Path(stage)
    init_args.save_dir, init_args.name, init_args.version = str(save_dir), str(name), None


def continue_checkpoint_run(config: Namespace, ckpt_path: Path) -> bool:
    """``fit --ckpt_path <run>/checkpoints/x.ckpt`` logs into ``<run>`` itself, so one run's history (TensorBoard
    curves, checkpoints, final weights) stays in one folder. False when the checkpoint is not in a run's
    ``checkpoints/`` or the logger has no ``save_dir``: the resumed fit then starts a new version."""
    logger = config.get("trainer", {}).get("logger")
    init_args = logger.get("init_args") if isinstance(logger, Namespace) else None
    if ckpt_path.parent.name != "checkpoints" or not isinstance(init_args, Namespace) or "save_dir" not in init_args:
        return False
    run = ckpt_path.parent.parent
    init_args.save_dir, init_args.name, init_args.version = str(run.parent.parent), run.parent.name, run.name
    return True


def next_free(folder: Path, stem: str) -> str:
    """``<stem>.yaml``, or ``<stem>_<k>.yaml`` with the first k not yet in ``folder``."""
    names = (f"{stem}.yaml", *(f"{stem}_{k}.yaml" for k in range(1, 10_000)))
    return next(name for name in names if not (folder / name).exists())


def first_new_dir(log_dir: Path) -> Path:
    """The directory a run creates: its log dir, or the parent too when that is new (``<run>/test/``)."""
    return log_dir if log_dir.parent.exists() else log_dir.parent


class WithoutCloudTips(logging.Filter):
    """Drops Lightning's "💡 Tip" lines that advertise its cloud services (litlogger, litmodels): this project
    runs offline and logs to TensorBoard, so the tips are noise in every command's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("💡 Tip")


# Lightning prints through Python loggers named after its modules, which its docs invite users to configure
# ("Console logging"); the tips come through rank_zero_info, whose logger is this one.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(WithoutCloudTips())


def one_line_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> str:
    """A warning as one line a user reads, without the file and source line that raised it."""
    return f"warning: {message}\n"


warnings.formatwarning = one_line_warning
# Lightning 2.6 builds torch's LeafSpec whenever it combines data loaders, which torch 2.14 deprecates: printed
# in every run, about code that is not ours (pyproject pins these minors), and nothing a user can change.
warnings.filterwarnings(
    "ignore",
    message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    category=FutureWarning,
    module=r"lightning\.pytorch\.utilities\._pytree",
)


MORE_COMMANDS = """
more commands, each with the same --config and overrides (add --help for its options):
    compare             Fit and test both modules, hand-derived and autograd, side by side.
    sweep               Train a grid of configs at once (--sweep configs/sweeps/<grid>.yaml)."""


class BackpropCLI(LightningCLI):
    """LightningCLI with the weights export always on and an optional test right after fit.

    ``instantiate=False`` parses and validates the config but builds no classes: the sweep builds each
    member's own, and LightningCLI's instantiation (with its hyper-parameter dump) costs more than a tiny member.
    """

    def __init__(self, *args: Any, instantiate: bool = True, command: str | None = None, **kwargs: Any) -> None:
        self.instantiate = instantiate
        self.command = command
        self.resumed_settings: dict[str, Any] = {}  # fit --ckpt_path: the config's module settings, kept
        super().__init__(*args, **kwargs)

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Lightning's subcommands, whose ``verbose`` is the project's own ``--verbose`` (:meth:`test`)."""
        commands = LightningCLI.subcommands()
        return {name: {*skip, "verbose"} if name in ("validate", "test") else skip for name, skip in commands.items()}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(WeightsExport, "weights_export")
        parser.add_argument("--test_after_fit", type=bool, default=False, help="Run test on the fitted weights.")
        parser.add_argument(
            "--verbose",
            type=bool,
            default=False,
            help="Print the details too: Lightning's start-up lines and model summary, full gradient-check tables, "
            "final weights, Lightning's table of test metrics.",
        )
        if self.command == "sweep":  # the sweep's own options, parsed like every other (--sweep FILE, --sweep.resume)
            parser.add_class_arguments(SweepOptions, "sweep")
        if self.command == "compare":
            parser.add_argument(
                "--twin_start",
                type=Literal["same", "torch"],
                default="same",
                help="same: both runs start from the config's weights and data order, and their weights are "
                "compared; torch: the autograd twin starts as a plain PyTorch script does (torch's default "
                "initialisation and torch.randperm order), with no weight verdict.",
            )

    def parse_arguments(self, parser: LightningArgumentParser, args: object) -> None:
        """A ``--ckpt_path`` is checked right after parsing: LightningCLI reads its hyperparameters next."""
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else self.config
        set_verbose(bool(config.get("verbose")))
        if config.get("verbose"):
            config.trainer.enable_model_summary = True
        ckpt_path = config.get("ckpt_path")
        if ckpt_path:
            check_checkpoint(ckpt_path)
            if subcommand in EVALUATIONS:
                log_into_checkpoint_run(self.config[subcommand], subcommand, Path(ckpt_path))
            if subcommand == "fit":
                self.resumed_settings = module_settings_to_keep(self.config[subcommand], ckpt_path)
                if continue_checkpoint_run(self.config[subcommand], Path(ckpt_path)):
                    run = Path(ckpt_path).parent.parent
                    # the run's config.yaml stays; this command's config is saved beside it
                    self.save_config_kwargs["config_filename"] = next_free(run, "config_resumed")
                    # Lightning warns that the checkpoint folder is not empty: it holds the checkpoint resumed from
                    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")

    def before_instantiate_classes(self) -> None:
        """A resumed fit takes its module settings from the config, not from the checkpoint LightningCLI read."""
        if self.resumed_settings:
            keep_module_settings(self.config[self.subcommand], self.resumed_settings)

    def instantiate_classes(self) -> None:
        """A class that refuses a config value fails with its own message, not jsonargparse's union report."""
        if not self.instantiate:
            return
        try:
            super().instantiate_classes()
        except ValueError as error:
            refused = as_config_error(error)
            if refused is error:
                raise
            raise refused from error

    def before_fit(self) -> None:
        self.check_before_run("fit")

    def validate(self, **kwargs: Any) -> object:
        """``train.py validate``: Lightning's table of metrics only with ``--verbose`` (the module prints its own)."""
        return self.trainer.validate(**kwargs, verbose=verbose())

    def test(self, **kwargs: Any) -> object:
        """``train.py test``: the module's notebook-style report, and Lightning's table with ``--verbose``."""
        return self.trainer.test(**kwargs, verbose=verbose())

    def before_validate(self) -> None:
        self.check_before_run("validate")

    def before_test(self) -> None:
        self.check_before_run("test")

    def before_predict(self) -> None:
        self.check_before_run("predict")

    def check_before_run(self, stage: str) -> None:
        """Data are read and checked before the trainer creates the run directory (``compare`` calls this too, on a
        CLI without a subcommand, and always tests)."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.get("ckpt_path"):
            check_checkpoint_fits(config.ckpt_path, self.model, self.datamodule)
        if stage == "fit":
            check_optimization(config.get("model"))
        if isinstance(self.datamodule, TensorDataModule):
            with_test = stage == "fit" and bool(config.get("test_after_fit") or not self.subcommand)
            spec = getattr(self.model, "spec", None)
            self.datamodule.check_before_run(stage, spec, with_test, str(self.trainer.precision))
        # fast_dev_run's logger has no directory (log_dir None): nothing is created, nothing to plan
        log_dir = self.trainer.log_dir if self.trainer.logger is not None else None
        if log_dir is not None and not Path(log_dir).exists():
            PLANNED_RUN_DIRS.append(first_new_dir(Path(log_dir)))
            check_writable(Path(log_dir))
        ckpt_path = config.get("ckpt_path")
        if stage in EVALUATIONS and ckpt_path:
            self.keep_checkpoint_dirpath(ckpt_path)
        if isinstance(self.model, MLPModule):
            self.model.collapse_advice = self.collapse_advice()

    def keep_checkpoint_dirpath(self, ckpt_path: str) -> None:
        """Evaluating writes no checkpoint, so each ModelCheckpoint keeps the folder the checkpoint's own run
        saved into: Lightning then restores its state instead of warning that "the dirpath has changed"."""
        saved = torch.load(ckpt_path, map_location="cpu", weights_only=True).get("callbacks") or {}
        for callback in self.trainer.checkpoint_callbacks:
            state = saved.get(callback.state_key)
            if isinstance(callback, ModelCheckpoint) and isinstance(state, dict) and state.get("dirpath"):
                callback.dirpath = state["dirpath"]

    def collapse_advice(self) -> str:
        config = self.config[self.subcommand] if self.subcommand else self.config
        files = ", ".join(str(path) for path in config.get("config") or []) or "the command line"
        optimizer = (config.get("model", {}).get("init_args", {}).get("optimizer") or {}).get("init_args") or {}
        spec = getattr(self.model, "spec", None)
        return (
            f"Try, in {files} or as overrides: more epochs (--trainer.max_epochs, now {self.trainer.max_epochs}), "
            f"another learning rate (--model.init_args.optimizer.init_args.lr, now {optimizer.get('lr', '?')}), "
            f"wider hidden layers (--model.init_args.net.hidden_sizes, now {getattr(spec, 'hidden_sizes', '?')}), "
            f"or another seed (--model.init_args.net.init_seed, now {getattr(spec, 'init_seed', '?')})."
        )

    def after_fit(self) -> None:
        test_after_fit = self.config[self.subcommand].get("test_after_fit")
        if self.trainer.global_step == 0:
            rank_zero_warn(
                f"nothing was trained: trainer.max_epochs is {self.trainer.max_epochs} and max_steps "
                f"{self.trainer.max_steps}, so the weights are still the initial ones"
                + (" and the test metrics below are theirs." if test_after_fit else ".")
            )
        if test_after_fit:
            self.trainer.test(self.model, datamodule=self.datamodule, verbose=False)
        self.say_where_results_went()

    def say_where_results_went(self) -> None:
        """The run directory and the checkpoints, printed once at the end (rank 0)."""
        if self.trainer.fast_dev_run:
            say("fast_dev_run: nothing was written (no run directory, checkpoints, weights or tables).")
            return
        lines = [f"Run directory: {self.trainer.log_dir or self.trainer.default_root_dir}"]
        checkpoint = self.trainer.checkpoint_callback
        if checkpoint is not None and getattr(checkpoint, "last_model_path", ""):
            lines.append(f"Last checkpoint: {checkpoint.last_model_path}")
        if checkpoint is not None and getattr(checkpoint, "best_model_path", ""):
            lines.append(f"Best checkpoint: {checkpoint.best_model_path}")
        say("\n".join(lines))


def make_cli(
    args: list[str] | None = None, run: bool = True, instantiate: bool = True, command: str | None = None
) -> BackpropCLI:
    """The CLI over every MLPModule and DataModule; ``args``, ``run=False`` and ``instantiate=False`` serve
    in-process use; ``command`` (``compare``, ``sweep``) adds that command's own options."""
    with warnings.catch_warnings():
        if args is not None:  # in-process callers pass their arguments on purpose, whatever sys.argv holds
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended to run from within")
        return BackpropCLI(
            MLPModule,
            LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            auto_configure_optimizers=False,
            # the callbacks are added to the configured ones; the plugin writes every checkpoint whole
            trainer_defaults={
                "callbacks": [InterruptReport(), PlainProgress()],  # added to the configured callbacks
                "plugins": [{"class_path": "callbacks.checkpoints.AtomicCheckpointIO"}],
                "enable_progress_bar": sys.stdout.isatty(),  # a bar in a terminal, a few plain lines elsewhere
                "enable_model_summary": False,  # Lightning's start-up chatter: --verbose brings it back
            },
            # --trainer.max_epoch must not pass for --trainer.max_epochs; a parse error is raised, for commands.errors
            # to print in one line (jsonargparse would print the usage and its nested report, ~80 lines)
            parser_kwargs={"allow_abbrev": False, "exit_on_error": False},
            args=args,
            run=run,
            instantiate=instantiate,
            command=command,
        )


def run_command(argv: list[str], args: list[str] | None) -> None:
    """``compare`` and ``sweep`` run :mod:`compare` and :mod:`sweep` on the same config and overrides; anything
    else is LightningCLI's, whose help lists those two as well."""
    if argv[:1] == ["compare"]:
        from commands.compare import compare_main

        raise SystemExit(compare_main(argv[1:], make_cli))
    if argv[:1] == ["sweep"]:
        from commands.sweep import sweep_main

        raise SystemExit(sweep_main(argv[1:], make_cli))
    if argv in ([], ["-h"], ["--help"]):
        try:
            make_cli(args)  # LightningCLI prints its help and exits
        finally:
            print(MORE_COMMANDS)
    make_cli(args)


def cli_main(args: list[str] | None = None) -> None:
    """The command line: a mistake the user can fix ends in one message and exit status 2 (see :mod:`commands.errors`),
    and garbage collections skip what the imports left (see :mod:`commands.frozen_gc`)."""
    argv = sys.argv[1:] if args is None else args
    PLANNED_RUN_DIRS.clear()  # this command's only: an in-process caller may have run others before
    SAID.clear()  # a message is said once per command
    try:
        with long_lived_objects_frozen():
            run_command(argv, args)
    except Exception as error:
        report_and_exit(error, PLANNED_RUN_DIRS, argv)
    finally:
        if dist.is_available() and dist.is_initialized():
            # a process group left to the interpreter's exit tears its gloo threads down in static destructors,
            # which can abort the process ("terminate called without an active exception") after a good run
            dist.destroy_process_group()


if __name__ == "__main__":
    try:
        cli_main()
    finally:
        # The process ends here, also after Ctrl-C (Lightning's shutdown has closed the event files and exits
        # through here). Python's exit runs full garbage collections over the millions of objects torch and
        # Lightning created, most of a Ctrl-C's time; frozen objects are skipped, and every file this project
        # writes is closed by then.
        gc.freeze()
