"""MNIST week (notebook 002) on Fashion-MNIST: toy gradient check, ReLU vs sigmoid, the MLP, SGD vs Adam."""

from __future__ import annotations

from pathlib import Path

import torch

from callbacks.figures import new_figure
from callbacks.gradient_check import check_gradients
from experiments.probe import EpochProbe, split_metrics
from experiments.report import Report
from experiments.runner import RunResult, run
from models import ManualModule, MLPSpec
from models.manual_net import ManualMLP
from reporting.tables import markdown_table

ADAM = ["--model.init_args.optimizer.class_path=torch.optim.Adam", "--model.init_args.optimizer.init_args.lr=0.001"]


def with_graph(module: torch.nn.Module) -> None:
    """TensorBoardLogger(log_graph=True) traces the module on this input at fit start."""
    module.example_input_array = torch.zeros(1, module.spec.input_size)


def save_and_check(result: RunResult, path: Path) -> float:
    """Weights-only save, reload into a new module, and its test accuracy (must equal the trained one's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(result.module.net.state_dict(), path)
    fresh = ManualModule(MLPSpec(**result.module.hparams["net"])).to(result.module.dtype)
    fresh.net.load_state_dict(torch.load(path, weights_only=True))
    x, y = result.datamodule.tensors("test")
    with torch.no_grad():
        return split_metrics(fresh, "test", x, y)["test/accuracy"]


def main(report: Report, quick: bool, work_dir: Path) -> None:
    toy_epochs = 30 if quick else 150
    toy = {
        act: run(
            "mnist_toy",
            [f"--model.init_args.net.activation={act}", f"--trainer.max_epochs={toy_epochs}"],
            EpochProbe(every=1),
        )
        for act in ("relu", "sigmoid")
    }
    x, y = toy["relu"].datamodule.tensors("train")
    net = ManualMLP(MLPSpec(2, [5], 2, activation="relu", init="normal", init_std=0.01, init_seed=0)).double()
    errors = check_gradients(net, x[:5], y[:5])
    grad_rows = [[f"{e.name} vs {e.reference}", f"{e.max_rel:.2e}", f"{e.mean_rel:.2e}"] for e in errors]
    figure = new_figure()
    ax = figure.add_subplot()
    for act, r in toy.items():
        ax.plot([rec["epoch"] for rec in r.records], [rec["train/loss"] for rec in r.records], label=act)
    ax.set_xlabel("epoch (one full-batch update)")
    ax.set_ylabel("training loss")
    ax.set_title("toy blobs: ReLU vs sigmoid, 2-16-2, lr 0.3")
    ax.legend()
    toy_image = report.figure(figure, "mnist_week_toy_activations", "ReLU vs sigmoid on toy data")
    toy_rows = [[a, r.last["train/loss"], r.last["train/accuracy"], r.last["test/accuracy"]] for a, r in toy.items()]

    limit = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2"] if quick else []
    probe_epochs = range(1, 6)
    sgd = run(
        "fashion_mnist_mlp",
        [
            *limit,
            "--trainer.logger.init_args.log_graph=true",
            "--trainer.enable_progress_bar=false",
            "--weights_export.print_final=false",
        ],
        EpochProbe(epochs=probe_epochs, splits=("val", "test")),
        quiet=False,
        before_fit=with_graph,
    )
    saved = work_dir / "fashion_mnist_mlp.pt"
    reloaded_acc = save_and_check(sgd, saved)
    adam = run("fashion_mnist_mlp", [*limit, *ADAM], EpochProbe(epochs=probe_epochs, splits=("val", "test")))
    figure = new_figure(10, 3.8)
    for i, (key, label) in enumerate((("val/loss", "validation loss"), ("val/accuracy", "validation accuracy"))):
        ax = figure.add_subplot(1, 2, i + 1)
        for name, r in (("SGD lr 0.1", sgd), ("Adam lr 1e-3", adam)):
            ax.plot([rec["epoch"] for rec in r.records], [rec[key] for rec in r.records], marker="o", label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
    opt_image = report.figure(figure, "mnist_week_sgd_vs_adam", "SGD vs Adam on Fashion-MNIST")
    opt_rows = [
        [name, r.last["val/accuracy"], r.last["test/accuracy"], r.last["test/loss"], r.seconds]
        for name, r in (("SGD lr 0.1, batches of 128", sgd), ("Adam lr 1e-3, batches of 128", adam))
    ]
    log_dir = Path(sgd.trainer.log_dir).resolve().relative_to(Path.cwd().resolve())
    report.add(
        "## MNIST week (notebook 002), on Fashion-MNIST",
        "Offline, Fashion-MNIST from Debian's `dataset-fashion-mnist`; `--data.init_args.dataset mnist` runs "
        "MNIST where it can be downloaded. The notebook leaves its accuracies blank (`__%`), so there is nothing "
        "of its own to compare with.",
        f"### Toy data (the notebook's two blobs, {toy_epochs} full-batch updates)",
        "Gradient check of a fresh 2-5-2 ReLU net (weights N(0, 0.01)) on 5 rows:",
        markdown_table(["parameter", "max rel. error", "mean rel. error"], grad_rows),
        "`python train.py fit --config configs/experiments/mnist_toy.yaml [--model.init_args.net.activation sigmoid]`",
        markdown_table(["activation", "final train loss", "train accuracy", "test accuracy"], toy_rows, digits=4),
        toy_image,
        "### 784-256-256-10 ReLU MLP, 5 epochs",
        "`python train.py fit --config configs/experiments/fashion_mnist_mlp.yaml` (Adam: add "
        "`--model.init_args.optimizer.class_path torch.optim.Adam --model.init_args.optimizer.init_args.lr 0.001`).",
        markdown_table(["optimizer", "val accuracy", "test accuracy", "test loss", "fit s"], opt_rows, digits=4),
        opt_image,
        f"TensorBoard run with the model graph (Graphs tab): `tensorboard --logdir {log_dir}`. Weights saved "
        f"weights-only to `{saved.name}` and reloaded with `torch.load(weights_only=True)` into a new module: "
        f"test accuracy {reloaded_acc:.4f} (trained module: {sgd.last['test/accuracy']:.4f}).",
    )
