"""Hand-derived convolution and max pooling (models/layers/conv.py) against torch's own ops and autograd
(1e-10 / 1e-12 relative) and, composed into a small LeNet-style stack, against central differences
(1e-6 relative), in float64."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from models.layers.conv import Conv2d, MaxPool2d, col2im, im2col

DTYPE = torch.float64


def max_relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |actual - expected| / max |expected| (absolute when expected is all zeros)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(expected.abs().max().item(), 1e-300)
    return (actual - expected).abs().max().item() / scale


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)


CONV_CASES = list(itertools.product([1, 3], [3, 5], [0, 2], [False, True]))  # C_in, k, padding, bias


def conv_problem(c_in: int, k: int, padding: int, bias: bool, seed: int = 0):
    x = randn(4, c_in, 9, 10, seed=seed)  # H != W catches a swapped output shape
    weight = randn(5, c_in, k, k, seed=seed + 1)
    b = randn(5, seed=seed + 2) if bias else None
    return x, weight, b


@pytest.mark.parametrize("c_in,k,padding,bias", CONV_CASES)
def test_conv2d_forward_matches_torch(c_in: int, k: int, padding: int, bias: bool) -> None:
    x, weight, b = conv_problem(c_in, k, padding, bias)
    layer = Conv2d(weight, b, padding)
    with torch.no_grad():
        z = layer.forward(x)
    expected = F.conv2d(x, weight, b, padding=padding)
    assert z.shape == expected.shape
    assert layer.cols.shape == (4, c_in * k * k, expected.shape[-2] * expected.shape[-1])
    assert max_relative_error(z, expected) < 1e-12


@pytest.mark.parametrize("c_in,k,padding,bias", CONV_CASES)
def test_conv2d_backward_matches_autograd(c_in: int, k: int, padding: int, bias: bool) -> None:
    x, weight, b = conv_problem(c_in, k, padding, bias, seed=10)
    x_ag, w_ag = x.clone().requires_grad_(), weight.clone().requires_grad_()
    b_ag = b.clone().requires_grad_() if bias else None
    z_ag = F.conv2d(x_ag, w_ag, b_ag, padding=padding)
    dz = randn(*z_ag.shape, seed=11)  # upstream gradient dL/dZ
    z_ag.backward(dz)

    layer, first_layer = Conv2d(weight, b, padding), Conv2d(weight, b, padding, need_input_grad=False)
    with torch.no_grad():
        layer.forward(x)
        dx = layer.backward(dz)
        first_layer.forward(x)
        dx_skipped = first_layer.backward(dz)
    assert dx is not None and dx.shape == x.shape
    assert max_relative_error(dx, x_ag.grad) < 1e-10
    assert max_relative_error(layer.grads[0], w_ag.grad) < 1e-10
    if bias:
        assert len(layer.grads) == 2 and max_relative_error(layer.grads[1], b_ag.grad) < 1e-10
    else:
        assert len(layer.grads) == 1
    assert dx_skipped is None
    assert torch.equal(first_layer.grads[0], layer.grads[0])


def test_conv2d_forward_rejects_mismatched_weight() -> None:
    with pytest.raises(ValueError, match=r"\(4, 3, 5, 5\)"):
        Conv2d(randn(4, 3, 5, 5, seed=1), None, 0).forward(randn(2, 1, 8, 8, seed=0))


def relu_with_ties(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Half the entries exactly 0 after ReLU, positive values drawn from {1, 2} (many tied maxima),
    and the first example's first channel all zeros (every window a 4-way tie)."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.relu(torch.randn(*shape, generator=gen, dtype=DTYPE))
    a = torch.where(torch.rand(*shape, generator=gen, dtype=DTYPE) < 0.3, a.ceil().clamp(max=2.0), a)
    a[0, 0] = 0.0
    return a


POOL_INPUTS = {
    "random": lambda: randn(3, 2, 8, 6, seed=20),
    "relu_ties": lambda: relu_with_ties((3, 2, 8, 6), seed=21),
    "all_zeros": lambda: torch.zeros(2, 3, 6, 6, dtype=DTYPE),
}


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("name", list(POOL_INPUTS))
def test_max_pool2d_matches_autograd(name: str, size: int) -> None:
    a = POOL_INPUTS[name]()
    if size == 3:
        a = a[..., :6, :6].contiguous()
    a_ag = a.clone().requires_grad_()
    out_ag = F.max_pool2d(a_ag, size)
    dout = randn(*out_ag.shape, seed=22)
    out_ag.backward(dout)

    pool = MaxPool2d(size)
    with torch.no_grad():
        pooled = pool.forward(a)
        da = pool.backward(dout)
    assert torch.equal(pooled, out_ag.detach())
    assert da.shape == a.shape
    assert max_relative_error(da, a_ag.grad) < 1e-12
    # every window sends its whole gradient to exactly one position, ties included
    nonzero_per_window = F.avg_pool2d((da != 0).to(DTYPE), size) * size * size
    assert torch.equal(nonzero_per_window, torch.ones_like(nonzero_per_window))


def test_max_pool2d_ties_go_to_first_element_in_row_major_order() -> None:
    # window [[0, 5], [5, 5]]: three tied maxima, autograd (and we) pick the top-right one
    a = torch.tensor([[[[0.0, 5.0], [5.0, 5.0]]]], dtype=DTYPE)
    pool = MaxPool2d(2)
    pooled = pool.forward(a)
    da = pool.backward(torch.ones_like(pooled))
    assert pool.index.item() == 1
    assert torch.equal(da, torch.tensor([[[[0.0, 1.0], [0.0, 0.0]]]], dtype=DTYPE))


@pytest.mark.parametrize("shape", [(2, 3, 7, 8), (2, 3, 8, 5), (3, 8, 8)])
def test_max_pool2d_rejects_bad_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=", ".join(str(s) for s in shape)):
        MaxPool2d(2).forward(torch.zeros(*shape, dtype=DTYPE))


# conv(1->3, k3, p1) -> relu -> pool -> conv(3->4, k3, p0) -> relu -> pool -> flatten -> sum of squares
def lenet_loss(x: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    w1, b1, w2, b2 = params
    a = F.max_pool2d(torch.relu(F.conv2d(x, w1, b1, padding=1)), 2)
    a = F.max_pool2d(torch.relu(F.conv2d(a, w2, b2)), 2)
    return (a.flatten(1) ** 2).sum()


def lenet_hand_gradients(x: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    w1, b1, w2, b2 = params
    conv1, pool1 = Conv2d(w1, b1, padding=1, need_input_grad=False), MaxPool2d(2)
    conv2, pool2 = Conv2d(w2, b2, padding=0), MaxPool2d(2)
    z1 = conv1.forward(x)  # (N, 3, 12, 12)
    p1 = pool1.forward(torch.relu(z1))  # (N, 3, 6, 6)
    z2 = conv2.forward(p1)  # (N, 4, 4, 4)
    p2 = pool2.forward(torch.relu(z2))  # (N, 4, 2, 2)
    dp2 = 2.0 * p2  # d(sum p^2)/dp
    dz2 = pool2.backward(dp2) * (z2 > 0)  # ReLU' with 0 at the kink
    dz1 = pool1.backward(conv2.backward(dz2)) * (z1 > 0)
    conv1.backward(dz1)
    return [*conv1.grads, *conv2.grads]


def test_lenet_stack_matches_central_differences() -> None:
    x = randn(2, 1, 12, 12, seed=30)
    params = [randn(3, 1, 3, 3, seed=31), 0.1 * randn(3, seed=32), randn(4, 3, 3, 3, seed=33), 0.1 * randn(4, seed=34)]
    with torch.no_grad():
        hand = lenet_hand_gradients(x, params)
        h = 1e-6
        for p, g in zip(params, hand):
            numeric = torch.empty_like(p)
            flat, flat_numeric = p.view(-1), numeric.view(-1)
            for i in range(flat.numel()):
                saved = flat[i].item()
                flat[i] = saved + h
                up = lenet_loss(x, params).item()
                flat[i] = saved - h
                down = lenet_loss(x, params).item()
                flat[i] = saved
                flat_numeric[i] = (up - down) / (2 * h)
            assert g.abs().max() > 0  # the check is not vacuous: gradient flows to every layer
            assert max_relative_error(g, numeric) < 1e-6


@pytest.mark.parametrize("channels,k,padding", [(1, 5, 2), (3, 3, 0), (6, 5, 2), (2, 3, 1)])
def test_im2col_and_col2im_are_torchs_unfold_and_fold(channels: int, k: int, padding: int) -> None:
    """The strided-view im2col and the slice-adding col2im give F.unfold / F.fold's results (col2im up to
    summation order)."""
    x = randn(3, channels, 10, 12, seed=channels + k)
    cols = im2col(x, k, padding)
    assert torch.equal(cols, F.unfold(x, k, padding=padding))
    dcols = randn(*cols.shape, seed=k)
    assert max_relative_error(col2im(dcols, (10, 12), k, padding), F.fold(dcols, (10, 12), k, padding=padding)) < 1e-14
