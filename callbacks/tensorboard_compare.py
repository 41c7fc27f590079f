"""What ``compare`` adds to TensorBoard: how close the two runs are, and one chart per curve pair.

The compare parent directory holds no run of its own: these summaries go into the ``manual`` run
(the one under test), next to its curves. The custom-scalars layout puts the manual and native
curves of each quantity in one chart, and ``compare/max_weight_difference`` shows their agreement
per epoch as one line (about 1e-15 in float64) rather than two curves hiding each other.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from torch.utils.tensorboard import SummaryWriter

from callbacks.tensorboard_dashboard import UPDATE_LOSS_TAG

WEIGHT_DIFFERENCE_TAG = "compare/max_weight_difference"
LAYOUT_CATEGORY = "manual vs native"


def comparison_layout(is_classifier: bool) -> dict[str, dict[str, list[object]]]:
    """Custom-scalars charts; each tag regex draws one line per run that has the tag."""
    score = "f1" if is_classifier else "mse"
    return {
        LAYOUT_CATEGORY: {
            "training loss per optimiser update": ["Multiline", [f"^{UPDATE_LOSS_TAG}$"]],
            "loss per epoch (train and val)": ["Multiline", ["^train/loss_epoch$", "^val/loss_epoch$"]],
            f"{score} per epoch (val) and after training (test)": [
                "Multiline",
                [f"^val/{score}_epoch$", f"^test/{score}_epoch$"],
            ],
            "max |w_manual - w_native| per epoch": ["Multiline", [f"^{WEIGHT_DIFFERENCE_TAG}$"]],
        }
    }


def write_comparison(
    run_dir: Path,
    weight_differences: list[float],
    summary_markdown: str,
    loss_figure: Figure | None,
    is_classifier: bool,
) -> None:
    """Into ``run_dir`` (the manual run): the per-epoch weight difference (epoch 0 = the initial
    weights), the side-by-side summary, the overlaid loss curves and the custom-scalars layout."""
    epochs = len(weight_differences) - 1
    with SummaryWriter(str(run_dir)) as writer:
        for epoch, difference in enumerate(weight_differences):
            writer.add_scalar(WEIGHT_DIFFERENCE_TAG, difference, epoch)
        writer.add_text("compare/summary", summary_markdown, epochs)
        if loss_figure is not None:
            writer.add_figure("compare/loss_curves", loss_figure, epochs)
        writer.add_custom_scalars(comparison_layout(is_classifier))
