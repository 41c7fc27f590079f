"""Notebook procedures restated independently in plain Python/NumPy (and torch for the week-4 torch run),
as test oracles: the week-4 data recipe (its training loop is :func:`benchmarks.baselines.week04_numpy_sgd`,
shared with the benchmarks) and its torch loop, week 7's moons data, seeded start and full-batch loop, the
flower notebook's seeded scalar loop and the MNIST week's Day-29 NumPy net."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import make_moons
from sklearn.model_selection import train_test_split


def notebook_data(seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    cov = np.array([[0.5, 0.0], [0.0, 0.5]])
    parts = []
    for n in (400, 200):
        a = rng.multivariate_normal([-1.0, -1.0], cov, size=n // 2)
        b = rng.multivariate_normal([1.0, 1.0], cov, size=n // 2)
        parts.append((np.vstack([a, b]), np.r_[np.zeros(n // 2, int), np.ones(n // 2, int)]))
    (xtr, ytr), (xte, yte) = parts
    i, j = rng.permutation(400), rng.permutation(200)
    return xtr[i], ytr[i], xte[j], yte[j]


# ---- week 4 notebook (000): its torch run, restated ----------------------------------------------------


def week04_torch_run(
    x: np.ndarray, y: np.ndarray, seed: int, epochs: int, lr: float = 0.1, hidden: tuple[int, int] = (3, 3)
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The notebook's PyTorch comparison with its global generator seeded: three bias-free float64 linear
    layers built in order (torch's default initialisation), then per epoch one ``randperm`` of the rows and
    one SGD step per row on cross-entropy. Returns the initial and the final weights, torch layout
    (out, in), and leaves the caller's generator state as it was."""
    sizes = [x.shape[1], *hidden, int(y.max()) + 1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        linears = [torch.nn.Linear(a, b, bias=False, dtype=torch.float64) for a, b in zip(sizes[:-1], sizes[1:])]
        start = [layer.weight.detach().numpy().copy() for layer in linears]
        inputs, labels = torch.from_numpy(x), torch.from_numpy(y).long()
        optimiser = torch.optim.SGD([layer.weight for layer in linears], lr=lr)
        for _ in range(epochs):
            for row in torch.randperm(len(x)):
                hidden_out = inputs[row : row + 1]
                for layer in linears[:-1]:
                    hidden_out = torch.sigmoid(layer(hidden_out))
                loss = torch.nn.functional.cross_entropy(linears[-1](hidden_out), labels[row : row + 1])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
    return start, [layer.weight.detach().numpy().copy() for layer in linears]


# ---- week 7 notebook (001): moons, its seeded start and its full-batch loop, restated ---------------


def moons_split(seed: int = 42) -> tuple[np.ndarray, ...]:
    """300 noisy moons (noise 0.2) and a 70/30 split, both drawn with ``random_state=seed``:
    ``x_train, y_train, x_test, y_test``."""
    x, y = make_moons(n_samples=300, noise=0.2, random_state=seed)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=seed)
    return x_train, y_train, x_test, y_test


def moons_start(seed: int = 42, sizes: tuple[int, int, int] = (2, 10, 2), std: float = 0.1) -> dict[str, np.ndarray]:
    """The notebook's first cell seeds the global legacy generator; nothing draws from it until the net
    is built, which draws its input weights (n_in, n_hidden), then its output weights, each a standard
    normal block times ``std``. Biases start at zero."""
    n_in, n_hidden, n_out = sizes
    np.random.seed(seed)
    first = np.random.randn(n_in, n_hidden) * std
    second = np.random.randn(n_hidden, n_out) * std
    return {"W1": first, "b1": np.zeros(n_hidden), "W2": second, "b2": np.zeros(n_out)}


def moons_full_batch(
    x: np.ndarray, y: np.ndarray, params: dict[str, np.ndarray], epochs: int, lr: float = 0.5
) -> dict[str, np.ndarray]:
    """``epochs`` gradient-descent steps on the whole training split: ReLU hidden layer, softmax output,
    mean cross-entropy; the derivative of the ReLU is taken as 0 at 0."""
    p = {name: value.copy() for name, value in params.items()}
    targets = np.zeros((len(y), p["W2"].shape[1]))
    targets[np.arange(len(y)), y] = 1.0
    for _ in range(epochs):
        pre = x @ p["W1"] + p["b1"]
        hidden = np.maximum(pre, 0.0)
        logits = hidden @ p["W2"] + p["b2"]
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        error = (shifted / shifted.sum(axis=1, keepdims=True) - targets) / len(y)  # d(mean CE)/d(logits)
        back = (error @ p["W2"].T) * (pre > 0)
        step = {"W2": hidden.T @ error, "b2": error.sum(0), "W1": x.T @ back, "b1": back.sum(0)}
        for name, grad in step.items():
            p[name] -= lr * grad
    return p


# ---- flower notebook (003): its per-flower scalar loop, restated ------------------------------------

FLOWER_PARAMETERS = ("w1", "w2", "w3", "w4", "w5", "w6", "b1", "b2", "b3")


def flower_rows(path: Path) -> tuple[list[tuple[float, float]], list[int]]:
    """(sun, water) per row in file order, and outcome 'Thrived' as 1, anything else as 0."""
    with path.open(newline="") as f:
        records = list(csv.DictReader(f))
    return [(float(r["sun"]), float(r["water"])) for r in records], [int(r["outcome"] == "Thrived") for r in records]


def flower_initial(seed: int = 42) -> dict[str, float]:
    """Global legacy seed, then one uniform scalar per parameter in the notebook's order."""
    np.random.seed(seed)
    return {name: float(np.random.rand()) for name in FLOWER_PARAMETERS}


def _logistic(z: float) -> float:
    return 1.0 / (1.0 + np.exp(-z))


def flower_scalar_sgd(
    points: list[tuple[float, float]], outcomes: list[int], epochs: int, lr: float = 0.1, seed: int = 42
) -> dict[str, float]:
    """The notebook's training: every epoch visits the rows in order and updates all nine scalars
    after each row, with the BCE derivative taken through the output as the notebook does."""
    p = flower_initial(seed)
    for _ in range(epochs):
        for (sun, water), target in zip(points, outcomes):
            z1 = p["w1"] * sun + p["w2"] * water + p["b1"]
            z2 = p["w3"] * sun + p["w4"] * water + p["b2"]
            h1, h2 = _logistic(z1), _logistic(z2)
            z3 = p["w5"] * h1 + p["w6"] * h2 + p["b3"]
            out = _logistic(z3)
            d_out = -(target / out - (1 - target) / (1 - out))  # dL/d(out) of -[y log out + (1-y) log(1-out)]
            slope3 = _logistic(z3) * (1 - _logistic(z3))
            slope1 = _logistic(z1) * (1 - _logistic(z1))
            slope2 = _logistic(z2) * (1 - _logistic(z2))
            via_h1 = d_out * p["w5"] * slope3 * slope1  # uses w5, w6 from before this row's update
            via_h2 = d_out * p["w6"] * slope3 * slope2
            step = {
                "w1": via_h1 * sun, "w2": via_h1 * water, "b1": via_h1,
                "w3": via_h2 * sun, "w4": via_h2 * water, "b2": via_h2,
                "w5": d_out * h1 * slope3, "w6": d_out * h2 * slope3, "b3": d_out * slope3,
            }  # fmt: skip
            for name, grad in step.items():
                p[name] -= lr * grad
    return p


# ---- MNIST week (002): Day 29's NumPy 2-layer net, trained on its toy blobs ------------------------------


def mnist_week_toy_data(seed: int = 42, n_per_class: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """``np.random.seed(42)`` at the top of the notebook, then ``make_toy_data(80)``: class 0, then class 1."""
    np.random.seed(seed)
    cov = np.array([[0.3, 0.0], [0.0, 0.3]])
    x0 = np.random.multivariate_normal(np.array([-1.0, -1.0]), cov, size=n_per_class)
    x1 = np.random.multivariate_normal(np.array([1.0, 1.0]), cov, size=n_per_class)
    return np.vstack([x0, x1]), np.concatenate([np.zeros(n_per_class, dtype=int), np.ones(n_per_class, dtype=int)])


def mnist_day29_training(
    x: np.ndarray, y: np.ndarray, hidden: int = 8, lr: float = 0.5, epochs: int = 200, weight_scale: float = 0.1
) -> tuple[dict[str, np.ndarray], list[float]]:
    """``TwoLayerMLP(2, hidden, 2, "relu", weight_scale)`` with seed 42, then ``train_numpy``: one full-batch
    step per epoch, each epoch's loss taken before its step (with the notebook's 1e-12 inside the log)."""
    rng = np.random.default_rng(42)
    p = {
        "W1": weight_scale * rng.standard_normal((x.shape[1], hidden)),
        "b1": np.zeros((1, hidden)),
        "W2": weight_scale * rng.standard_normal((hidden, 2)),
        "b2": np.zeros((1, 2)),
    }
    n, losses = len(x), []
    for _ in range(epochs):
        z1 = x @ p["W1"] + p["b1"]
        a1 = np.maximum(0, z1)
        scores = a1 @ p["W2"] + p["b2"]
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        probs = e / e.sum(axis=1, keepdims=True)
        losses.append(float(-np.log(probs[np.arange(n), y] + 1e-12).mean()))
        dscores = probs.copy()
        dscores[np.arange(n), y] -= 1.0
        dscores /= n
        dz1 = (dscores @ p["W2"].T) * (z1 > 0)
        grads = {"W1": x.T @ dz1, "b1": dz1.sum(0), "W2": a1.T @ dscores, "b2": dscores.sum(0)}
        for name, grad in grads.items():
            p[name] -= lr * grad  # the biases (1, H) take their (H,) gradients by broadcasting
    return p, losses
