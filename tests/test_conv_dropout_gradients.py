"""The conv front (LeNet-style) and dropout: hand-derived gradients against autograd (1e-10 relative)
and central differences (1e-6 relative) in float64, for every activation x bias x head x conv depth."""

from __future__ import annotations

import itertools

import pytest
import torch

from models.layers import Dropout
from models.layers.dropout import dropout_mask
from models.manual_net import ManualMLP
from models.native_net import NativeMLP
from models.spec import MLPSpec
from tests.test_gradients import ACTIVATIONS, HEAD_OUTPUTS, HEADS, relative_error, targets


def conv_problem(activation: str, bias: bool, head: str, conv_depth: int, l2: float = 0.0):
    outputs = HEAD_OUTPUTS[head]
    spec = MLPSpec(
        input_size=2 * 8 * 8,
        hidden_sizes=[4],
        output_size=outputs,
        activation=activation,
        bias=bias,
        head=head,
        init="xavier_normal",
        bias_init="like_weights",
        init_seed=conv_depth + 10 * len(activation),
        conv_channels=[3, 2][:conv_depth],
        image_shape=[2, 8, 8],
        conv_kernel_size=3,
        conv_padding=1,
        l2=l2,
    )
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(3, 2 * 8 * 8, generator=gen, dtype=torch.float64)
    return spec, x, targets(head, outputs, 3, gen)


def finite_differences(
    net: ManualMLP, loss_of_net, h: float = 1e-6, entries: int | None = None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Central differences per parameter: (flat indices, values), all entries or ``entries`` random ones."""
    out = []
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            flat = p.view(-1)
            n = flat.numel()
            index = torch.arange(n) if entries is None or n <= entries else torch.randperm(n, generator=gen)[:entries]
            values = torch.empty(len(index), dtype=torch.float64)
            for j, i in enumerate(index.tolist()):
                old = flat[i].item()
                flat[i] = old + h
                plus = loss_of_net()
                flat[i] = old - h
                minus = loss_of_net()
                flat[i] = old
                values[j] = (plus - minus) / (2 * h)
            out.append((index, values))
    return out


CONV_COMBINATIONS = list(itertools.product(ACTIVATIONS, [False, True], HEADS, [1, 2]))


@pytest.mark.slow
@pytest.mark.parametrize("activation,bias,head,conv_depth", CONV_COMBINATIONS)
def test_conv_front_matches_autograd_and_finite_differences(
    activation: str, bias: bool, head: str, conv_depth: int
) -> None:
    spec, x, y = conv_problem(activation, bias, head, conv_depth)
    manual = ManualMLP(spec).double()
    _, grads = manual.loss_and_gradients(x, y)
    native = NativeMLP(spec).double()
    native.loss(native(x), y).backward()
    params = list(native.parameters())
    assert len(params) == len(grads) == (conv_depth + 2) * (2 if bias else 1)
    assert params[0].dim() == 4  # the conv kernels come first
    for p, g in zip(params, grads):
        assert g.shape == p.shape
        assert relative_error(g, p.grad) <= 1e-10
    # Every conv kernel entry is perturbed; the larger dense matrices are sampled (autograd covers them all).
    numeric = finite_differences(manual, lambda: manual.forward_loss(x, y)[0].item(), entries=60)
    for g, (index, fd) in zip(grads, numeric):
        assert relative_error(g.reshape(-1)[index], fd) <= 1e-6


def test_conv_front_with_l2_matches_autograd() -> None:
    spec, x, y = conv_problem("tanh", True, "softmax_ce", 2, l2=0.1)
    manual = ManualMLP(spec).double()
    _, grads = manual.loss_and_gradients(x, y)
    native = NativeMLP(spec).double()
    native.loss(native(x), y).backward()
    for p, g in zip(native.parameters(), grads):
        assert relative_error(g, p.grad) <= 1e-10


def lenet_spec(**changes: object) -> MLPSpec:
    return MLPSpec.lenet(**{"init": "he_normal", "bias_init": "zeros", **changes})


def test_lenet_shapes_and_gradients_match_autograd() -> None:
    spec = lenet_spec(dropout=0.25)
    assert spec.conv_feature_shapes() == [(1, 28, 28), (6, 14, 14), (16, 7, 7)]
    assert spec.layer_sizes == [784, 120, 84, 10]
    gen = torch.Generator().manual_seed(3)
    x, y = torch.rand(5, 784, generator=gen, dtype=torch.float64), torch.randint(0, 10, (5,), generator=gen)
    manual, native = ManualMLP(spec).double(), NativeMLP(spec).double()
    assert [p.shape for p in manual.parameters()] == [p.shape for p in native.parameters()]
    _, grads = manual.loss_and_gradients(x, y)  # both nets' generators draw the same dropout masks
    native.loss(native(x), y).backward()
    for p, g in zip(native.parameters(), grads):
        assert relative_error(g, p.grad) <= 1e-10


DROPOUT_COMBINATIONS = list(itertools.product(ACTIVATIONS, HEADS, [1, 2, 3]))


def dropout_problem(activation: str, head: str, depth: int):
    outputs = HEAD_OUTPUTS[head]
    spec = MLPSpec(
        input_size=4,
        hidden_sizes=[6, 5, 4][:depth],
        output_size=outputs,
        activation=activation,
        head=head,
        init="xavier_normal",
        bias_init="like_weights",
        dropout=0.4,
    )
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(8, 4, generator=gen, dtype=torch.float64)
    return spec, x, targets(head, outputs, 8, gen)


@pytest.mark.parametrize("activation,head,depth", DROPOUT_COMBINATIONS)
def test_dropout_gradients_match_autograd_with_the_same_masks(activation: str, head: str, depth: int) -> None:
    spec, x, y = dropout_problem(activation, head, depth)
    manual, native = ManualMLP(spec).double(), NativeMLP(spec).double()
    manual.forward_loss(x, y)
    masks = [layer.mask for layer in manual.last_pass.layers if isinstance(layer, Dropout)]
    native.loss(native(x), y).backward()  # its own generator, seeded alike, draws the same masks
    assert len(masks) == depth and any(bool((m == 0).any()) for m in masks)  # units were dropped
    for p, g in zip(native.parameters(), manual.backward()):
        assert relative_error(g, p.grad) <= 1e-10


@pytest.mark.parametrize("activation,head,depth", DROPOUT_COMBINATIONS[::4])
def test_dropout_gradients_match_finite_differences_with_fixed_masks(activation: str, head: str, depth: int) -> None:
    spec, x, y = dropout_problem(activation, head, depth)
    net = ManualMLP(spec).double()
    state = net.dropout_generator.get_state()
    _, grads = net.loss_and_gradients(x, y)

    def loss_with_the_same_masks() -> float:
        net.dropout_generator.set_state(state)
        return net.forward_loss(x, y)[0].item()

    numeric = finite_differences(net, loss_with_the_same_masks)
    for g, (index, fd) in zip(grads, numeric):
        assert relative_error(g.reshape(-1)[index], fd) <= 1e-6


def test_dropout_is_off_in_eval_mode_and_keeps_the_expected_mean() -> None:
    spec, x, _ = dropout_problem("tanh", "softmax_ce", 2)
    plain = MLPSpec(**{**spec.__dict__, "dropout": 0.0})
    for cls in (ManualMLP, NativeMLP):
        net = cls(spec).double().eval()
        with torch.no_grad():
            assert torch.equal(net(x), cls(plain).double()(x))
        net.train()
        with torch.no_grad():
            assert not torch.equal(net(x), net(x))  # fresh masks every forward pass
    like = torch.zeros(1, dtype=torch.float64)
    mask = dropout_mask(0.3, torch.Size([200, 1000]), like, torch.Generator().manual_seed(0))
    assert set(torch.unique(mask).tolist()) == {0.0, 1 / 0.7}
    assert abs((mask == 0).double().mean().item() - 0.3) < 0.01
    assert abs(mask.mean().item() - 1.0) < 0.02  # inverted dropout keeps the expected activation


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"image_shape": [1, 28, 27]}, "holds 756 values but input_size is 784"),
        ({"image_shape": None}, "needs image_shape"),
        ({"conv_channels": [6, 16, 8]}, "cannot halve exactly"),
        ({"dropout": 1.0}, "dropout is a drop probability"),
    ],
)
def test_bad_conv_and_dropout_settings_are_explained(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lenet_spec(**changes)


def test_spec_summary_names_the_conv_front_and_dropout() -> None:
    assert lenet_spec(dropout=0.2).summary == "conv 6,16 (5x5) + 784-120-84-10 relu softmax_ce dropout 0.2"
    assert MLPSpec().summary == "2-3-3-2 sigmoid softmax_ce"
