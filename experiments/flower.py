"""Flower (notebook 003): hand-derived per-example SGD against the torch model trained full-batch."""

from __future__ import annotations

from pathlib import Path

from callbacks.figures import new_figure
from callbacks.weights_export import notebook_weights
from experiments.probe import EpochProbe
from experiments.report import Report
from experiments.runner import run
from models.init import initial_parameters
from models.tables import markdown_table

# The notebook's printed BCE over its training rows (its output stops at epoch 340 / 270).
NOTEBOOK_MANUAL = {0: 0.6953976154, 50: 0.6993148162, 100: 0.6955322222, 150: 0.6873939615, 200: 0.6746761329,
                   250: 0.6683477396, 300: 0.6666442385, 340: 0.6649804}  # fmt: skip
NOTEBOOK_TORCH = {0: 0.73137366771698, 50: 0.7181909084320068, 100: 0.7094359993934631, 150: 0.7036639451980591,
                  200: 0.6998772621154785, 250: 0.6974014043807983, 270: 0.6966714262962341}  # fmt: skip
SHOWN = (0, 50, 100, 150, 200, 250, 270, 300, 340, 500, 990)
# np.random.seed(42) then rand() for w1..w6, b1, b2, b3: the notebook's initial weights, printed to 16 digits.
NOTEBOOK_NAMES = ("w1", "w2", "w3", "w4", "w5", "w6", "b1", "b2", "b3")


def as_notebook_names(weights: dict[str, object]) -> list[float]:
    """W1, W2, b1, b2 (fan_in, fan_out) under the notebook's scalar names (h1 = sigmoid(w1 sun + w2 water + b1))."""
    (w1, w3), (w2, w4) = weights["W1"]
    (w5,), (w6,) = weights["W2"]
    (b1, b2), (b3,) = weights["b1"], weights["b2"]
    return [float(v) for v in (w1, w2, w3, w4, w5, w6, b1, b2, b3)]


def main(report: Report, quick: bool, work_dir: Path) -> None:
    epochs = 100 if quick else 1000
    # The hand-derived loop prints after epoch e's updates (our epoch e + 1); the torch loop prints the
    # loss computed before update e, i.e. after e updates (our epoch e, with epoch 0 the initial weights).
    manual = run("flower_manual", [f"--trainer.max_epochs={epochs}"], EpochProbe(every=10, splits=("train",)))
    torch_run = run(
        "flower_torch",
        [f"--trainer.max_epochs={epochs}"],
        EpochProbe(epochs=range(10, epochs + 1, 10), at_start=True, splits=("train",)),
    )
    manual_loss = {int(r["epoch"]) - 1: r["train/loss"] for r in manual.records}
    torch_loss = {int(r["epoch"]): r["train/loss"] for r in torch_run.records}
    rows = [
        [e, manual_loss.get(e), NOTEBOOK_MANUAL.get(e), torch_loss.get(e), NOTEBOOK_TORCH.get(e)]
        for e in SHOWN
        if e in manual_loss or e in torch_loss
    ]
    (layer1, bias1), (layer2, bias2) = initial_parameters(manual.module.spec)
    start = as_notebook_names({"W1": layer1.T, "W2": layer2.T, "b1": bias1, "b2": bias2})
    final = as_notebook_names(notebook_weights(manual.module))
    weights_table = markdown_table(
        ["", *NOTEBOOK_NAMES],
        [["initial (ours = notebook's)", *[f"{v:.16f}" for v in start]], [f"after {epochs} epochs", *final]],
    )
    leaves_plateau = next((e for e in sorted(manual_loss) if manual_loss[e] < 0.65), "more than all")
    every10 = [[e, manual_loss[e], torch_loss.get(e)] for e in sorted(manual_loss) if e % 10 == 0]
    figure = new_figure()
    ax = figure.add_subplot()
    for losses, label in ((manual_loss, "hand-derived, per-example lr 0.1"), (torch_loss, "torch, full batch lr 0.01")):
        ax.plot(sorted(losses), [losses[e] for e in sorted(losses)], label=label)
    ax.plot(list(NOTEBOOK_MANUAL), list(NOTEBOOK_MANUAL.values()), "o", color="tab:blue", label="notebook, hand")
    ax.plot(list(NOTEBOOK_TORCH), list(NOTEBOOK_TORCH.values()), "s", color="tab:orange", label="notebook, torch")
    ax.set_xlabel("epoch")
    ax.set_ylabel("BCE over all rows")
    ax.set_title("flower 2-2-1: loss every 10 epochs")
    ax.legend()
    image = report.figure(figure, "flower_losses", "flower loss every 10 epochs")
    report.add(
        "## Flower (notebook 003)",
        f"2-2-1 sigmoid net with biases, BCE, {epochs} epochs on all 100 rows of the made-up "
        "`data/flower/flower_data_train.csv`. Hand-derived: the notebook's run from the notebook's start, its "
        "initial weights `np.random.seed(42)` then `rand()` for w1..w6, b1, b2, b3 (`init: legacy_numpy` with "
        "that `draw_order`), one SGD update per flower in file order, lr 0.1, features unscaled "
        "(`python train.py fit --config configs/experiments/flower_manual.yaml`). Its weights follow an "
        "independent replay of the notebook's scalar loop to 1e-12 (`tests/test_flower_notebook.py`). "
        "Torch: nn.Linear init, autograd, full-batch SGD lr 0.01 (`... configs/experiments/flower_torch.yaml`).",
        weights_table,
        markdown_table(
            ["epoch", "hand-derived (ours)", "hand-derived (notebook)", "torch (ours)", "torch (notebook)"], rows
        ),
        image,
        f"Final train accuracy: hand-derived {manual.last['train/accuracy']:.3f}, "
        f"torch {torch_run.last['train/accuracy']:.3f}.",
        "Why the numbers differ: the notebook's flower CSV is not public, so ours is made up from a stated rule "
        "(`scripts/make_flower_csv.py`; only its first five rows are the notebook's). The hand-derived run starts "
        "from the notebook's very weights and makes its updates in its order, so with the notebook's own CSV in "
        "`data/flower/` it would print the notebook's losses; the torch notebook's nn.Linear weights come from an "
        "unseeded generator. Both notebooks' runs sit near the 0.69 plateau of an uninformed "
        "classifier; on our data, which a 2-2-1 net separates well, the per-example run leaves it (loss below "
        f"0.65) after {leaves_plateau} epochs, while full-batch SGD "
        "at lr 0.01 (one update per epoch, 100 times fewer than per-example) creeps down as the notebook's does.",
        "<details><summary>Loss every 10 epochs (ours)</summary>\n\n"
        + markdown_table(["epoch", "hand-derived", "torch"], every10)
        + "\n\n</details>",
    )
