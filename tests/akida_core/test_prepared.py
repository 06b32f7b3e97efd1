"""The prepared fast paths (kernels cast once per layer, activation constants once per dtype) equal the
general kernels bit for bit, are computed once, and are skipped where float32 would not be exact."""
import numpy as np
import pytest

import akida_core as ak
from akida_core import kernels
from akida_core.enums import Padding
from akida_core.kernels import shared
from akida_core.layers.base import FC_POTENTIAL_BITS

from bench.models import BENCHMARK_MODELS, random_inputs


@pytest.mark.parametrize("padding", [Padding.Same, Padding.Valid])
@pytest.mark.parametrize("strides", [(1, 1), (2, 2), (2, 1)])
@pytest.mark.parametrize("kernel", [(1, 1), (3, 3), (5, 3)])
def test_prepared_kernels_equal_the_general_ones(padding, strides, kernel):
    rng = np.random.default_rng(kernel[0] * 10 + strides[1])
    x = rng.integers(0, 16, (2, 9, 8, 3)).astype(np.uint8)
    w = rng.integers(-8, 8, (*kernel, 3, 5)).astype(np.int8)
    matrix = w.reshape(-1, 5).astype(np.float32)
    for value in (0, 7):
        np.testing.assert_array_equal(shared.conv2d_prepared(x, matrix, kernel, strides, padding, value),
                                      kernels.conv2d(x, w, strides, padding, value))
    dw = rng.integers(-8, 8, (*kernel, 3)).astype(np.int8)
    pw = rng.integers(-8, 8, (3, 4)).astype(np.int8)
    partial = shared.depthwise_conv2d_prepared(x, dw.astype(np.float32), strides, padding)
    np.testing.assert_array_equal(partial, kernels.depthwise_conv2d(x, dw, strides, padding))
    np.testing.assert_array_equal(shared.pointwise_prepared(partial, pw.astype(np.float32)),
                                  kernels.separable_conv2d(x, dw, pw, strides, padding))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_activation_in_two_steps_equals_threshold_activation(dtype):
    rng = np.random.default_rng(3)
    p = rng.integers(-3000, 3000, (4, 6, 6, 8)).astype(dtype)
    threshold = rng.integers(-50, 50, 8).astype(np.int32)
    act_step = kernels.register_act_step(rng.uniform(1, 300, 8).astype(np.float32))
    for bits in (1, 2, 4):
        step = kernels.v1.activation_step(p.dtype, threshold, act_step, bits)
        np.testing.assert_array_equal(kernels.v1.activate(p, threshold.astype(step.dtype), step, bits),
                                      kernels.threshold_activation(p, threshold, act_step, bits))


def _general_forward(model, x):
    """The model's forward with every prepared path refused: the kernels pick dtypes from the data."""
    for layer in model.layers:
        layer._cache.clear()
        layer._exact_float32 = lambda *args: False
    try:
        return model.forward(x)
    finally:
        for layer in model.layers:
            del layer._exact_float32
            layer._cache.clear()


@pytest.mark.parametrize("name", list(BENCHMARK_MODELS))
def test_benchmark_models_prepared_path_equals_general_path(name):
    model = BENCHMARK_MODELS[name](input_size=32) if name == "akidanet_05" else BENCHMARK_MODELS[name]()
    x = random_inputs(model, 3, seed=5)
    fast = model.forward(x)
    for layer in model.layers:  # the float32 plans were taken
        assert any(key in layer._cache for key in ("kernel_matrix", "kernels", "matrix"))
        assert layer._cache.get("kernel_matrix", layer._cache.get("kernels", layer._cache.get("matrix"))) \
            is not None
    np.testing.assert_array_equal(fast, _general_forward(model, x))


def test_plans_are_computed_once_and_refreshed_on_new_weights():
    model = BENCHMARK_MODELS["mnist_cnn"]()
    x = random_inputs(model, 2)
    conv = model.get_layer("conv_1")
    calls = []
    original = conv._kernel_matrix
    conv._kernel_matrix = lambda: calls.append(1) or original()
    model.forward(x)
    model.forward(x)
    assert len(calls) == 1
    conv.variables["weights"] = -conv.variables["weights"].clip(-7, 7)
    out = model.forward(x)
    assert len(calls) == 2
    del conv._kernel_matrix
    np.testing.assert_array_equal(out, _general_forward(model, x))


def test_no_plan_when_float32_is_not_exact():
    # 8-bit weights on 4-bit inputs over 2**19 inputs: the static bound 128·15·2**19 > 2**24
    model = ak.Model()
    model.add(ak.InputData((1, 1, 2 ** 19), input_bits=4))
    model.add(ak.FullyConnected(2, weights_bits=8, activation=False))
    fc = model.layers[1]
    fc.variables["weights"] = np.full(fc.variables["weights"].shape, -128, np.int8)
    x = np.full((1, 1, 1, 2 ** 19), 15, np.uint8)
    out = model.forward(x)
    assert fc._cache["matrix"] is None
    assert out[0, 0, 0, 0] == max(-128 * 15 * 2 ** 19, -2 ** (FC_POTENTIAL_BITS - 1))  # the saturated register
