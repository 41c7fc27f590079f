"""W6: what the TensorBoard dashboard costs the week-4 fit.

``dashboard`` is ``python train.py fit --config configs/week04.yaml`` in-process as shipped (no test,
no progress bar): the dashboard with 12,000 per-update scalars, histograms every 3 epochs, the graph,
HParams and three figures, and the gradient check at fit start. ``callbacks_off`` is the same fit with
those callbacks removed (the logger and the module's own epoch metrics stay).
"""

from __future__ import annotations

import tempfile

from benchmarks.timing import interleaved
from benchmarks.w1_week04_sgd import ROOT
from callbacks import F1Comparison, GradientCheck, TensorBoardDashboard
from train import make_cli

DASHBOARD_CALLBACKS = (TensorBoardDashboard, GradientCheck, F1Comparison)


def week04_fit(root: str, dashboard: bool) -> None:
    cli = make_cli(
        args=[
            "--config", str(ROOT / "configs/week04.yaml"),
            "--test_after_fit", "false",
            "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false",
            "--trainer.logger.init_args.save_dir", root,
            "--weights_export.print_final", "false",
        ],
        run=False,
    )  # fmt: skip
    if not dashboard:
        cli.trainer.callbacks[:] = [c for c in cli.trainer.callbacks if not isinstance(c, DASHBOARD_CALLBACKS)]
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)


def run(repeats: int = 5) -> dict[str, object]:
    root = tempfile.mkdtemp(prefix="bench_w6_")
    week04_fit(root, dashboard=True)  # imports, fonts and first-use caches, outside the timings
    timings = interleaved(
        {"callbacks_off": lambda: week04_fit(root, False), "dashboard": lambda: week04_fit(root, True)}, repeats
    )
    return {
        "timings": timings,
        "ratios": {"dashboard / callbacks_off": timings["dashboard"].median / timings["callbacks_off"].median},
    }
