"""Batch normalisation of a dense layer's outputs (torch.nn.BatchNorm1d on rows), and its backward pass.

Shapes, with an optional leading member dimension M (a sweep's stacked nets; absent for one net):
    Z, Y, dY, dZ (M?, N, F)        gamma, beta, running_mean, running_var (M?, F)
Training normalises with the batch's own statistics and moves the running ones toward them:
    mu = mean_n Z,  var = mean_n (Z - mu)^2 (biased),  Zh = (Z - mu) / sqrt(var + eps),  Y = gamma Zh + beta
    running_mean <- (1 - momentum) running_mean + momentum mu
    running_var  <- (1 - momentum) running_var  + momentum var N / (N - 1)   (unbiased, as torch)
Evaluation uses the running statistics instead: a fixed affine map of each row.
Backward (dL/dY -> dL/dZ; mu and var depend on every row in training, the running ones on none):
    dbeta  = sum_n dY                      dgamma = sum_n dY Zh
    train: dZ = gamma / (N sqrt(var + eps)) (N dY - dbeta - Zh dgamma)
    eval:  dZ = gamma / sqrt(running_var + eps) dY
"""

from __future__ import annotations

from models.layers import xp
from models.layers.xp import Array


class BatchNorm:
    """``grads`` = [dgamma, dbeta] after backward; ``training`` is set by the net.

    The running statistics are updated in place, as torch does, so the net's buffers follow; so is
    ``batches_tracked`` (torch's ``num_batches_tracked``) when given.
    """

    def __init__(
        self,
        gamma: Array,
        beta: Array,
        running_mean: Array,
        running_var: Array,
        momentum: float = 0.1,
        eps: float = 1e-5,
        batches_tracked: Array | None = None,
    ) -> None:
        self.gamma, self.beta = gamma, beta
        self.running_mean, self.running_var, self.batches_tracked = running_mean, running_var, batches_tracked
        self.momentum, self.eps = momentum, eps
        self.params = [gamma, beta]
        self.grads: list[Array] = []
        self.training = True

    def forward(self, z: Array) -> Array:
        n = z.shape[-2]
        if self.training:
            if n < 2:
                raise ValueError(
                    f"batch norm needs at least 2 rows per update while training (a variance of one row is 0), got "
                    f"{n}; choose model.rows_per_update and data.batch_size so that no update, not even the last of "
                    "an epoch, gets a single row"
                )
            mu = z.mean(-2)  # (M?, F)
            centered = z - mu[..., None, :]  # (M?, N, F)
            squares = (centered * centered).sum(-2)  # sum_n (Z - mu)^2: (M?, F)
            var = squares / n
            self.running_mean *= 1.0 - self.momentum
            self.running_mean += self.momentum * mu
            self.running_var *= 1.0 - self.momentum
            self.running_var += self.momentum * (squares / (n - 1))
            if self.batches_tracked is not None:
                self.batches_tracked += 1
        else:
            centered = z - self.running_mean[..., None, :]
            var = self.running_var
        self.inv_std = 1.0 / xp.sqrt(var + self.eps)  # (M?, F)
        self.z_hat = centered * self.inv_std[..., None, :]  # (M?, N, F)
        return self.gamma[..., None, :] * self.z_hat + self.beta[..., None, :]

    def backward(self, dy: Array) -> Array:
        dbeta = dy.sum(-2)  # (M?, F)
        dgamma = (dy * self.z_hat).sum(-2)  # (M?, F)
        self.grads = [dgamma, dbeta]
        scale = self.gamma * self.inv_std  # (M?, F)
        if not self.training:
            return dy * scale[..., None, :]
        n = dy.shape[-2]
        return (scale / n)[..., None, :] * (n * dy - dbeta[..., None, :] - self.z_hat * dgamma[..., None, :])
