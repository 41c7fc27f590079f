"""In-memory data sets drawn with a seed."""

from __future__ import annotations

import numpy as np


def week04_blobs(seed: int = 0, n_train: int = 400, n_test: int = 200) -> tuple[np.ndarray, ...]:
    """The week-4 notebook's fallback data, bit for bit.

    Two Gaussian blobs at (-1, -1) (class 0) and (1, 1) (class 1), covariance 0.5 I, drawn from one
    ``default_rng(seed)`` in the notebook's order: train class 0, train class 1, test class 0, test
    class 1, then a permutation of the training rows and one of the test rows.
    Returns ``x_train (n_train, 2), y_train (n_train,), x_test, y_test``; labels are int64.
    """
    rng = np.random.default_rng(seed)
    mu0, mu1 = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    cov = 0.5 * np.eye(2)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = np.vstack([rng.multivariate_normal(mu0, cov, size=n // 2), rng.multivariate_normal(mu1, cov, size=n // 2)])
        y = np.hstack([np.zeros(n // 2, dtype=np.int64), np.ones(n // 2, dtype=np.int64)])
        return x, y

    x_train, y_train = draw(n_train)
    x_test, y_test = draw(n_test)
    train_order = rng.permutation(n_train)
    test_order = rng.permutation(n_test)
    return x_train[train_order], y_train[train_order], x_test[test_order], y_test[test_order]


def mnist_week_blobs(seed: int = 42, n_per_class: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST-week notebook's 2-D toy data, bit for bit: after ``np.random.seed(42)``, 80 points
    around (-1, -1) (class 0) then 80 around (1, 1) (class 1), covariance 0.3 I, unshuffled."""
    rng = np.random.RandomState(seed)  # the notebook draws from NumPy's legacy global generator
    cov = 0.3 * np.eye(2)
    x0 = rng.multivariate_normal(np.array([-1.0, -1.0]), cov, size=n_per_class)
    x1 = rng.multivariate_normal(np.array([1.0, 1.0]), cov, size=n_per_class)
    y = np.concatenate([np.zeros(n_per_class, dtype=np.int64), np.ones(n_per_class, dtype=np.int64)])
    return np.vstack([x0, x1]), y


def xor(n_samples: int = 300, noise: float = 0.2, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four Gaussian clusters at (+-1, +-1); the class is 1 where the coordinates' signs differ.
    No line separates the classes, so it needs a hidden layer."""
    rng = np.random.default_rng(random_state)
    corners = rng.choice(np.array([-1.0, 1.0]), size=(n_samples, 2))
    x = corners + noise * rng.standard_normal((n_samples, 2))
    return x, (corners[:, 0] != corners[:, 1]).astype(np.int64)
