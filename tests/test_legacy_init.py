"""init: legacy_numpy replays np.random.seed(s) + one rand()/randn() call per listed parameter or scalar."""

from __future__ import annotations

import re

import numpy as np
import pytest

from models.init import initial_parameters, legacy_numpy_parameters
from models.native_net import NativeMLP
from models.spec import MLPSpec


def spec(**changes: object) -> MLPSpec:
    fields: dict[str, object] = dict(input_size=3, hidden_sizes=[4], output_size=2, init="legacy_numpy", init_seed=7)
    return MLPSpec(**{**fields, **changes})


def test_default_order_is_one_call_per_weight_matrix_then_zero_biases() -> None:
    rng = np.random.RandomState(7)
    w1, w2 = rng.rand(3, 4), rng.rand(4, 2)
    drawn = legacy_numpy_parameters(spec())
    np.testing.assert_array_equal(drawn["W1"], w1)
    np.testing.assert_array_equal(drawn["W2"], w2)
    assert not drawn["b1"].any() and not drawn["b2"].any()
    (layer1, bias1), (layer2, _) = initial_parameters(spec())
    np.testing.assert_array_equal(layer1, w1.T)  # torch layout (fan_out, fan_in)
    np.testing.assert_array_equal(layer2, w2.T)


def test_scalar_calls_in_any_order_land_where_they_are_named() -> None:
    order = ["b2[1]", "W2", "W1", "b1", "b2[0]"]  # a scalar, whole matrices, a whole bias, a scalar
    drawn = legacy_numpy_parameters(spec(draw_order=order, legacy_call="randn"))
    rng = np.random.RandomState(7)
    b2_1, w2, w1, b1, b2_0 = rng.randn(), rng.randn(4, 2), rng.randn(3, 4), rng.randn(4), rng.randn()
    for name, value in (("W1", w1), ("W2", w2), ("b1", b1), ("b2", [b2_0, b2_1])):
        np.testing.assert_array_equal(drawn[name], value)


def test_scalar_by_scalar_equals_one_call_per_matrix_in_row_major_order() -> None:
    scalars = [f"W{k}[{i},{j}]" for k, (n, m) in ((1, (3, 4)), (2, (4, 2))) for i in range(n) for j in range(m)]
    by_scalar = legacy_numpy_parameters(spec(draw_order=scalars))
    whole = legacy_numpy_parameters(spec(draw_order=["W1", "W2"]))
    for name in ("W1", "W2"):
        np.testing.assert_array_equal(by_scalar[name], whole[name])


def test_conv_nets_and_the_global_generator() -> None:
    conv = spec(input_size=16, image_shape=[1, 4, 4], conv_channels=[2], conv_kernel_size=3, conv_padding=1,
                bias_init="like_weights")  # fmt: skip
    np.random.seed(123)
    drawn = legacy_numpy_parameters(conv)
    assert np.random.rand() == np.random.RandomState(123).rand()  # NumPy's global state is left alone
    rng = np.random.RandomState(7)
    np.testing.assert_array_equal(drawn["K1"], rng.rand(2, 1, 3, 3))  # default order: K, W, then c, b
    np.testing.assert_array_equal(drawn["W1"], rng.rand(8, 4))
    np.testing.assert_array_equal(drawn["W2"], rng.rand(4, 2))
    np.testing.assert_array_equal(drawn["c1"], rng.rand(2))
    net = NativeMLP(conv)
    assert net.convs[0].weight.shape == (2, 1, 3, 3)


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (["W1", "W2", "W3"], "'W3' names no parameter"),
        (["W1", "W2", "W1[0,0]"], "a second time"),
        (["W1[3,0]"], "outside W1's shape"),
        (["W1"], "W2[0,0] (and 7 more) is never drawn"),
        (["W1", "W2", "b1[0]"], "b1[1] (and 2 more) is never drawn"),
    ],
)
def test_a_bad_draw_order_names_the_entry(order: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=r"draw_order.*" + re.escape(message)):
        legacy_numpy_parameters(spec(draw_order=order))


def test_no_bias_net_has_no_bias_to_name() -> None:
    with pytest.raises(ValueError, match="'b1' names no parameter"):
        legacy_numpy_parameters(spec(bias=False, draw_order=["W1", "W2", "b1"]))


def test_legacy_scale_multiplies_every_call_as_randn_times_std_does() -> None:
    """Week 7: ``randn(2, 10) * 0.1``; whole-parameter and scalar calls alike, bias zeros untouched."""
    rest_of_w1 = [f"W1[{i},{j}]" for i in range(3) for j in range(4) if (i, j) != (2, 3)]
    drawn = legacy_numpy_parameters(
        spec(legacy_call="randn", legacy_scale=0.1, draw_order=["W2", "W1[2,3]", *rest_of_w1])
    )
    rng = np.random.RandomState(7)
    w2, w1_23 = rng.randn(4, 2) * 0.1, rng.randn() * 0.1
    np.testing.assert_array_equal(drawn["W2"], w2)
    assert drawn["W1"][2, 3] == w1_23 and drawn["W1"][0, 0] == rng.randn() * 0.1
    assert not drawn["b1"].any()
    with pytest.raises(ValueError, match="legacy_scale .* must be > 0, got 0"):
        spec(legacy_scale=0.0)
