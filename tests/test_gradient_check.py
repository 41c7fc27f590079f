"""The gradient check: passes on both correct nets, catches a deliberately wrong gradient, skips kinks."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from callbacks.gradient_check import (
    WORST_ERROR_TAG,
    GradientCheck,
    GradientCheckError,
    ParameterError,
    check_gradients,
    format_check,
    kink_free_rows,
    markdown_check,
)
from datamodules.week04 import Week04DataModule
from models import ManualMLP, ManualModule, MLPSpec, NativeMLP, NativeModule
from tests.conftest import quiet_trainer

WEEK04 = dict(input_size=2, hidden_sizes=[3, 3], output_size=2, activation="sigmoid", bias=False, init_std=0.2)
SPECS = {
    "week04": WEEK04,
    "tanh_bias_l2_3class": dict(input_size=4, hidden_sizes=[6, 5], output_size=3, activation="tanh", l2=0.01),
    "leaky_relu_bce": dict(input_size=3, hidden_sizes=[8], output_size=1, activation="leaky_relu", head="sigmoid_bce"),
    "mse_sigmoid_sum": dict(
        input_size=3, hidden_sizes=[4], output_size=2, head="mse_sigmoid", reduction="sum", init="uniform"
    ),
    # checked in eval mode: the dropout masks would make the loss random
    "relu_dropout": dict(input_size=3, hidden_sizes=[6, 5], output_size=3, activation="relu", dropout=0.5),
    "conv_relu": dict(
        input_size=64,
        image_shape=[1, 8, 8],
        conv_channels=[2],
        conv_kernel_size=3,
        conv_padding=1,
        hidden_sizes=[4],
        output_size=3,
        activation="relu",
        init="he_normal",
    ),
}


class WrongManualMLP(ManualMLP):
    """The second layer's weight gradient is off by 1 %, the size of a typical algebra slip."""

    def backward(self):
        grads = super().backward()
        grads[1] = grads[1] * 1.01
        return grads


class WrongManualModule(ManualModule):
    def build_net(self, spec: MLPSpec) -> ManualMLP:
        return WrongManualMLP(spec)


def examples(spec: MLPSpec, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n, spec.input_size, generator=generator, dtype=torch.float64)
    if spec.is_classifier:
        return x, torch.randint(0, spec.num_classes, (n,), generator=generator)
    return x, torch.rand(n, spec.output_size, generator=generator, dtype=torch.float64)


# the conv net's finite differences take seconds: in the full run only
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if "conv" in n else n for n in sorted(SPECS)])
@pytest.mark.parametrize("net_class", [ManualMLP, NativeMLP])
def test_correct_gradients_pass(name: str, net_class) -> None:
    spec = MLPSpec(**SPECS[name])
    x, y = examples(spec)
    net = net_class(spec)
    keep = kink_free_rows(net.double(), x, 1e-3)
    errors = check_gradients(net, x[keep], y[keep])
    assert {e.grade() for e in errors} == {"pass"}, errors
    references = {e.reference for e in errors}
    assert references == ({"finite differences", "autograd"} if net_class is ManualMLP else {"finite differences"})


def test_wrong_gradient_fails_against_finite_differences_and_autograd() -> None:
    spec = MLPSpec(**WEEK04)
    errors = check_gradients(WrongManualMLP(spec), *examples(spec))
    failed = {(e.reference, e.name) for e in errors if e.grade() == "fail"}
    assert failed == {("finite differences", "W2"), ("autograd", "W2")}  # the notebooks' name of layers.1.weight
    assert all(e.grade() == "pass" for e in errors if e.name != "W2")


def test_parameters_are_named_as_in_the_notebooks() -> None:
    week07 = MLPSpec(input_size=2, hidden_sizes=[5], output_size=2, activation="relu")  # the notebook's 2-5-2 check
    x, y = examples(week07, 10)
    errors = check_gradients(ManualMLP(week07), x, y)
    assert [e.name for e in errors] == ["W1", "b1", "W2", "b2"] * 2  # vs finite differences, then vs autograd
    conv = MLPSpec(**SPECS["conv_relu"])
    errors = check_gradients(ManualMLP(conv), *examples(conv, 1), finite_differences_too=False)
    assert [e.name for e in errors] == ["K1", "c1", "W1", "b1", "W2", "b2"]


def test_grades_are_settable_and_the_table_shows_each_parameters_grade() -> None:
    """The project's grades (pass <= 1e-7, OK <= 1e-4) by default; the week-7 notebook's (1e-5, 1e-3) on request."""
    errors = [ParameterError("finite differences", name, err, err / 2, 10) for name, err in
              (("W1", 3e-9), ("b1", 2e-6), ("W2", 4e-4), ("b2", 0.02))]  # fmt: skip
    assert [e.grade() for e in errors] == ["pass", "OK", "fail", "fail"]
    assert [e.grade(1e-5, 1e-3) for e in errors] == ["pass", "pass", "OK", "fail"]
    table = format_check("check", errors, 1e-5, 1e-3).splitlines()
    assert table[0] == "check" and table[1].startswith("reference") and table[1].endswith("grade")
    assert [line.split()[-1] for line in table[2:]] == ["pass", "pass", "OK", "fail"]
    assert "| finite differences | W2 | 10 | 4.00e-04 | 2.00e-04 | OK |" in markdown_check(errors, 1e-5, 1e-3)


def test_kinks_are_skipped() -> None:
    spec = MLPSpec(input_size=2, hidden_sizes=[2], output_size=2, activation="relu", bias=False)
    net = ManualMLP(spec).double()
    with torch.no_grad():
        net.layers[0].weight.copy_(torch.tensor([[1.0, -1.0], [0.5, 0.5]]))
    x = torch.tensor([[1.0, 1.0], [1.0, 1.0 + 1e-4], [2.0, -1.0]], dtype=torch.float64)  # z = 0, 1e-4 and 3
    assert kink_free_rows(net, x, 1e-3).tolist() == [False, False, True]


def fit(tmp_path, module, check: GradientCheck, **kwargs):
    dm = Week04DataModule()
    trainer = quiet_trainer(tmp_path, callbacks=[check], limit_train_batches=5, limit_val_batches=0, **kwargs)
    trainer.fit(module, datamodule=dm)
    return trainer


@pytest.mark.slow
def test_callback_passes_and_logs_every_n_epochs(tmp_path) -> None:
    check = GradientCheck(every_n_epochs=1, stop_on_failure=True)
    logger = TensorBoardLogger(tmp_path, name="gc")
    fit(tmp_path, ManualModule(MLPSpec(**WEEK04)), check, max_epochs=2, logger=logger)
    assert check.last_grade == "pass"
    events = EventAccumulator(logger.log_dir)
    events.Reload()
    points = events.Scalars(WORST_ERROR_TAG)
    assert [p.step for p in points] == [0, 1, 2]  # fit start and after each of the two epochs
    assert 0 < max(p.value for p in points) <= 1e-7
    assert [t for t in events.Tags()["scalars"] if t.startswith("grad_check/")] == [WORST_ERROR_TAG]
    table = events.Tensors("grad_check/report/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert "| autograd | W3 |" in table and table.count("| pass |") == 6
    native_check = GradientCheck()
    fit(tmp_path / "native", NativeModule(MLPSpec(**WEEK04)), native_check, max_epochs=1)
    assert native_check.last_grade == "pass"


def test_callback_stops_training_on_a_wrong_gradient(tmp_path) -> None:
    module = WrongManualModule(MLPSpec(**WEEK04))
    start = module.net.layers[0].weight.detach().clone()
    with pytest.raises(GradientCheckError, match=r"FAIL \(worst .* in W2 vs"):
        fit(tmp_path, module, GradientCheck(stop_on_failure=True), max_epochs=1)
    torch.testing.assert_close(module.net.layers[0].weight.detach().cpu(), start.to(torch.float64))  # no step taken
    warned = GradientCheck(stop_on_failure=False)
    with pytest.warns(UserWarning, match="disagrees with"):
        fit(tmp_path / "warn", WrongManualModule(MLPSpec(**WEEK04)), warned, max_epochs=1)
    assert warned.last_grade == "fail"


def test_examples_all_at_a_kink_are_still_checked_against_autograd(tmp_path) -> None:
    """A conv net has thousands of ReLU pre-activations per example, so one is nearly always within the
    margin; the manual module is then checked against autograd alone, the native one is skipped."""
    spec = MLPSpec(**{**WEEK04, "activation": "relu", "bias": True})
    everything_kinked = dict(kink_margin=1e9, stop_on_failure=True)
    check = GradientCheck(**everything_kinked)
    fit(tmp_path, ManualModule(spec), check, max_epochs=1)
    assert check.last_grade == "pass"
    assert {e.reference for e in check.last_errors} == {"autograd"} and len(check.last_errors) == 6
    native_check = GradientCheck(**everything_kinked)
    with pytest.warns(UserWarning, match="all 200 examples sit near a ReLU kink; skipped"):
        fit(tmp_path / "native", NativeModule(spec), native_check, max_epochs=1)
    assert native_check.last_grade is None
