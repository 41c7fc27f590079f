"""Batch normalisation: the hand-derived layer against autograd (1e-10 relative) and central differences
(1e-6) in float64, in training and evaluation mode, for every activation x bias x head x depth; its running
statistics against torch.nn.BatchNorm1d's; the member dimension; checkpoints; and where it is refused."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import torch

from callbacks.weights_export import layout_text, notebook_weights
from commands.compare import compare_main
from commands.sweep import run_sweep
from commands.sweep_grid import SweepError
from datamodules.week04 import Week04DataModule
from models import ManualModule, MLPSpec, NativeModule
from models.layers import BatchNorm
from models.manual_net import LayerChain, ManualMLP
from models.native_net import NativeMLP
from tests.conftest import ROOT, quiet_trainer
from tests.test_conv_dropout_gradients import conv_problem
from tests.test_divergence_and_resume import fit as resumable_fit
from tests.test_gradients import ACTIVATIONS, HEAD_OUTPUTS, HEADS, central_differences, relative_error, targets
from train import make_cli

COMBINATIONS = list(itertools.product(ACTIVATIONS, [False, True], HEADS, [1, 2, 3]))
MODES = ["train", "eval"]


def bn_problem(activation: str, bias: bool, head: str, depth: int, rows: int = 7, **changes: object):
    outputs = HEAD_OUTPUTS[head]
    spec = MLPSpec(
        input_size=4,
        hidden_sizes=[5, 4, 3][:depth],
        output_size=outputs,
        activation=activation,
        bias=bias,
        head=head,
        init="xavier_normal",
        bias_init="like_weights",
        init_seed=depth + 10 * len(activation),
        batch_norm=True,
        batch_norm_momentum=0.3,
        **changes,
    )
    gen = torch.Generator().manual_seed(13)
    x = 2.0 * torch.randn(rows, 4, generator=gen, dtype=torch.float64) + 0.5  # off-centre: mu, var matter
    return spec, x, targets(head, outputs, rows, gen)


def moved_norms(net: torch.nn.Module) -> None:
    """Gamma, beta and running statistics away from their initial 1, 0, 0, 1, so every term is exercised."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for norm in net.norms:
            features = norm.num_features
            norm.weight.copy_(1.0 + 0.5 * torch.randn(features, generator=gen, dtype=torch.float64))
            norm.bias.copy_(0.3 * torch.randn(features, generator=gen, dtype=torch.float64))
            norm.running_mean.copy_(0.4 * torch.randn(features, generator=gen, dtype=torch.float64))
            norm.running_var.copy_(0.5 + torch.rand(features, generator=gen, dtype=torch.float64))


def nets(spec: MLPSpec, mode: str) -> tuple[ManualMLP, NativeMLP]:
    manual = ManualMLP(spec).double()
    moved_norms(manual)
    native = NativeMLP(spec).double()
    native.load_state_dict(manual.state_dict())
    return manual.train(mode == "train"), native.train(mode == "train")


def zero_in_training(spec: MLPSpec, mode: str) -> set[str]:
    """Names of the parameters whose gradient is exactly 0: in training, a batch norm subtracts the batch mean,
    so a constant shift of its input cannot change the loss. The hidden dense biases shift it, and so, through
    an identity activation and the next dense layer, does the previous norm's beta."""
    if mode != "train":
        return set()
    depth = len(spec.hidden_sizes)
    zero = {f"layers.{k}.bias" for k in range(depth)} if spec.bias else set()
    return zero | ({f"norms.{k}.bias" for k in range(depth - 1)} if spec.activation == "identity" else set())


def assert_gradients_agree(spec, mode, names, grads, reference, tolerance) -> None:
    """Per parameter, relative to its own size; a gradient that is exactly 0 in theory is checked against the
    whole gradient's size instead (its computed value is rounding noise on both sides)."""
    whole = torch.cat([g.reshape(-1) for g in reference]).norm().item()
    zero = zero_in_training(spec, mode)
    for name, g, ref in zip(names, grads, reference):
        assert g.shape == ref.shape, name
        if name in zero:
            assert g.norm().item() <= 1e-12 * whole and ref.norm().item() <= tolerance * whole, name
        else:
            assert relative_error(g, ref) <= tolerance, (name, relative_error(g, ref))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("activation,bias,head,depth", COMBINATIONS)
def test_batch_norm_gradients_match_autograd(activation, bias, head, depth, mode) -> None:
    spec, x, y = bn_problem(activation, bias, head, depth)
    manual, native = nets(spec, mode)
    loss, grads = manual.loss_and_gradients(x, y)
    native_loss = native.loss(native(x), y)
    native_loss.backward()
    names = [name for name, _ in native.named_parameters()]
    assert names[-2 * depth :] == [f"norms.{k}.{p}" for k in range(depth) for p in ("weight", "bias")]
    assert abs(loss.item() - native_loss.item()) <= 1e-12 * max(1.0, abs(loss.item()))
    assert_gradients_agree(spec, mode, names, grads, [p.grad for p in native.parameters()], 1e-10)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("activation,bias,head,depth", COMBINATIONS)
def test_batch_norm_gradients_match_finite_differences(activation, bias, head, depth, mode) -> None:
    spec, x, y = bn_problem(activation, bias, head, depth)
    net, _ = nets(spec, mode)
    _, grads = net.loss_and_gradients(x, y)
    statistics = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    numeric = central_differences(net, x, y)
    names = [name for name, _ in net.named_parameters()]
    assert_gradients_agree(spec, mode, names, grads, numeric, 1e-6)
    moved = any(not torch.equal(statistics[k], net.state_dict()[k]) for k in statistics)
    assert moved == (mode == "train")  # evaluation reads the running statistics and leaves them alone


def test_running_statistics_follow_torch_batchnorm1d_over_many_updates() -> None:
    """The layer alone, over several batches of different sizes: torch's momentum rule, unbiased running
    variance, biased normalisation, num_batches_tracked; then evaluation on the running statistics."""
    torch_norm = torch.nn.BatchNorm1d(3, momentum=0.2).double()
    state = {k: v.clone() for k, v in torch_norm.state_dict().items()}
    parameters_and_statistics = [state[k] for k in ("weight", "bias", "running_mean", "running_var")]
    layer = BatchNorm(*parameters_and_statistics, 0.2, 1e-5, state["num_batches_tracked"])
    gen = torch.Generator().manual_seed(1)
    for rows in (5, 2, 9, 4, 16):
        z = 3.0 * torch.randn(rows, 3, generator=gen, dtype=torch.float64) - 1.0
        expected = torch_norm(z)
        torch.testing.assert_close(layer.forward(z), expected.detach(), rtol=1e-13, atol=1e-14)
    for key, value in torch_norm.state_dict().items():
        torch.testing.assert_close(state[key], value, rtol=1e-13, atol=1e-15, msg=key)
    assert int(state["num_batches_tracked"]) == 5
    torch_norm.eval()
    layer.training = False
    z = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(layer.forward(z), torch_norm(z).detach(), rtol=1e-13, atol=1e-14)
    with pytest.raises(ValueError, match="at least 2 rows per update while training"):
        BatchNorm(*[t.clone() for t in parameters_and_statistics]).forward(z[:1])


def test_both_modules_train_to_the_same_weights_and_running_statistics(tmp_path) -> None:
    """Forty SGD updates of 10 rows (the last of each epoch 10 too) in block mode; the hand-derived module's
    state_dict, running statistics and batch counts included, equals the autograd module's."""
    spec = MLPSpec(input_size=2, hidden_sizes=[6, 5], output_size=2, activation="tanh", batch_norm=True, init_std=0.5)
    modules = {}
    for cls in (ManualModule, NativeModule):
        modules[cls] = cls(spec, rows_per_update=10, optimizer=lambda p: torch.optim.SGD(p, lr=0.2, momentum=0.9))
        trainer = quiet_trainer(tmp_path / cls.__name__, max_epochs=1, limit_val_batches=0, limit_train_batches=4)
        trainer.fit(modules[cls], datamodule=Week04DataModule(batch_size=100))
        assert modules[cls].numpy_path is None  # the NumPy path carries no running statistics
    manual, native = (modules[c].net.state_dict() for c in (ManualModule, NativeModule))
    assert int(manual["norms.0.num_batches_tracked"]) == 40 == int(native["norms.1.num_batches_tracked"])
    assert not torch.equal(manual["norms.0.running_var"], torch.ones(6, dtype=torch.float64))
    for key in manual:
        torch.testing.assert_close(manual[key], native[key], rtol=1e-12, atol=1e-13, msg=key)


@pytest.mark.parametrize("module_class", [ManualModule, NativeModule])
def test_a_batch_norm_run_resumed_equals_the_straight_run(tmp_path, module_class) -> None:
    spec = dict(input_size=2, hidden_sizes=[6, 5], output_size=2, activation="relu", batch_norm=True, init_std=0.5)
    straight = module_class(MLPSpec(**spec), rows_per_update=8)
    resumable_fit(straight, tmp_path / "straight", epochs=4)
    checkpoints = resumable_fit(module_class(MLPSpec(**spec), rows_per_update=8), tmp_path / "first", epochs=2)
    resumed = module_class(MLPSpec(**spec), rows_per_update=8)
    resumable_fit(resumed, tmp_path / "resumed", epochs=4, ckpt_path=checkpoints.last_model_path)
    for (key, a), b in zip(straight.net.state_dict().items(), resumed.net.state_dict().values()):
        assert torch.equal(a, b), key  # running statistics and batch counts travel in the checkpoint too


def test_state_dicts_are_interchangeable_and_start_at_torchs_values() -> None:
    spec, x, _ = bn_problem("relu", True, "softmax_ce", 2)
    manual, native = ManualMLP(spec).double(), NativeMLP(spec).double()
    assert manual.state_dict().keys() == native.state_dict().keys()
    for key, value in manual.state_dict().items():
        assert torch.equal(value, native.state_dict()[key]), key
    fresh = torch.nn.BatchNorm1d(5).double().state_dict()
    for key, value in fresh.items():
        assert torch.equal(manual.state_dict()[f"norms.0.{key}"], value), key
    untouched = ManualMLP(spec)
    assert untouched.is_at_initial_values()
    with torch.no_grad():
        untouched.norms[1].running_var[0] = 2.0  # a float64 run would not re-initialise a net that has trained
    assert not untouched.is_at_initial_values()
    moved_norms(manual)
    native.load_state_dict(manual.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(manual.eval()(x), native.eval()(x), rtol=1e-13, atol=1e-14)
        torch.testing.assert_close(manual.train()(x), native.train()(x), rtol=1e-13, atol=1e-14)
    plain = ManualMLP(MLPSpec(**{**spec.__dict__, "batch_norm": False}))
    assert not any(key.startswith("norms.") for key in plain.state_dict())  # older checkpoints still load


@pytest.mark.parametrize("members", [1, 3])
@pytest.mark.parametrize("backend", ["torch", "numpy"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("activation,bias,head,depth", COMBINATIONS[::5])
def test_each_member_equals_its_own_single_net(activation, bias, head, depth, mode, backend, members) -> None:
    """Stacked (M, F) gamma, beta and running statistics: loss, gradients and the updated running statistics
    of each member equal its own net's, on torch and NumPy."""
    base, _, _ = bn_problem(activation, bias, head, depth)
    singles, inputs, labels = [], [], []
    for m in range(members):
        spec = MLPSpec(**{**base.__dict__, "init_seed": base.init_seed + 100 * m})
        net = ManualMLP(spec).double()
        moved_norms(net)
        with torch.no_grad():
            for norm in net.norms:
                norm.weight.mul_(1.0 + 0.1 * m)  # members differ in their norms too
        gen = torch.Generator().manual_seed(60 + m)
        inputs.append(torch.randn(6, 4, generator=gen, dtype=torch.float64))
        labels.append(targets(head, spec.output_size, 6, gen))
        singles.append(net.train(mode == "train"))
    to_array = (lambda t: t.detach().clone().numpy()) if backend == "numpy" else (lambda t: t.detach().clone())

    def stacked(tensors: list[torch.Tensor]) -> object:
        return to_array(torch.stack(tensors))

    weights = [
        (stacked([w for w, _ in layer]), None if layer[0][1] is None else stacked([b for _, b in layer]))
        for layer in zip(*(net.weights() for net in singles))
    ]
    norms = [
        (*(stacked([state[i] for state in states]) for i in range(4)), None)
        for states in zip(*(net.norm_states() for net in singles))
    ]
    chain = LayerChain(base, weights, norms=norms)
    chain.set_training(mode == "train")
    with torch.no_grad():
        loss = chain.loss(to_array(torch.stack(inputs)), to_array(torch.stack(labels)))
        grads = [torch.as_tensor(np.asarray(g)) for g in chain.backward()]
    assert tuple(loss.shape) == (members,)
    names = [name for name, _ in singles[0].named_parameters()]
    for m, (net, x_m, y_m) in enumerate(zip(singles, inputs, labels)):
        single_loss, single_grads = net.loss_and_gradients(x_m, y_m)
        assert abs(float(loss[m]) - single_loss.item()) <= 1e-12 * max(1.0, abs(single_loss.item()))
        assert_gradients_agree(base, mode, names, [g[m] for g in grads], single_grads, 1e-12)
        for k, (_, _, mean, var, _) in enumerate(net.norm_states()):  # each member's own running statistics
            np.testing.assert_allclose(np.asarray(norms[k][2][m]), mean.numpy(), rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(np.asarray(norms[k][3][m]), var.numpy(), rtol=1e-13, atol=1e-15)


def test_batch_norm_after_a_conv_front_and_with_dropout_matches_autograd() -> None:
    spec, x, y = conv_problem("relu", True, "softmax_ce", 1)
    spec = MLPSpec(**{**spec.__dict__, "batch_norm": True, "dropout": 0.3})
    manual, native = ManualMLP(spec).double(), NativeMLP(spec).double()
    _, grads = manual.loss_and_gradients(x, y)  # the nets' generators, seeded alike, draw the same masks
    native.loss(native(x), y).backward()
    names = [name for name, _ in native.named_parameters()]
    assert names[-2:] == ["norms.0.weight", "norms.0.bias"]
    assert_gradients_agree(spec, "train", names, grads, [p.grad for p in native.parameters()], 1e-10)
    assert "batch_norm dropout 0.3" in spec.summary


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"hidden_sizes": []}, "batch_norm normalises hidden layers, and hidden_sizes is empty"),
        ({"batch_norm_momentum": 0.0}, r"batch_norm_momentum must be in \(0, 1\]"),
        ({"batch_norm_eps": -1.0}, "batch_norm_eps > 0"),
    ],
)
def test_bad_batch_norm_settings_are_explained(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MLPSpec(batch_norm=True, **changes)


def test_the_sweep_refuses_batch_norm_in_one_message(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid:\n  model.init_args.optimizer.init_args.lr: [0.1, 0.5]\n")
    args = ["--config", str(ROOT / "configs/week04.yaml"), "--model.init_args.net.batch_norm=true"]
    with pytest.raises(SweepError, match="the sweep stacks dense nets without dropout, batch norm, conv layers"):
        run_sweep(make_cli, args, str(grid))
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_compare_passes_on_the_toy_batch_norm_config(tmp_path, capsys) -> None:
    """Both modules, from the same start and data order, through 100 updates with batch norm: identical weights,
    gamma, beta and running statistics to 1e-9 relative in float64 (measured: 2e-16)."""
    args = [
        *("--config", str(ROOT / "configs" / "experiments" / "mnist_toy_batch_norm.yaml")),
        f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--weights_export.print_final=false",
    ]
    assert compare_main(args, make_cli) == 0
    out = capsys.readouterr().out
    assert "identical initial weights: yes; identical data order (epoch 1): yes" in out
    graded = re.search(r"PASS: largest \|w_manual - w_autograd\| = (\S+), relative to max\(\|w\|, 1\) = (\S+) ", out)
    assert graded and float(graded.group(2)) <= 1e-9, out[-2000:]


def test_weight_files_hold_each_batch_norm_and_say_how_to_read_it() -> None:
    spec = MLPSpec(input_size=2, hidden_sizes=[3, 4], output_size=2, bias=False, batch_norm=True)
    module = ManualModule(spec)
    moved_norms(module.net.double())
    weights = notebook_weights(module)
    assert list(weights) == ["W1", "W2", "W3", *(f"{p}{k}" for k in (1, 2) for p in ("gamma", "beta", "mean", "var"))]
    np.testing.assert_array_equal(weights["var2"], module.net.norms[1].running_var.numpy())
    text = layout_text(weights)
    assert "gamma{k} * (Z_k - mu) / sqrt(var + eps) + beta{k}" in text
    assert "norms.{k-1}.weight, .bias, .running_mean and .running_var" in text
    assert "b{k}" not in text  # beta1 is no dense bias
