"""Exactness: every quantized block's Keras output equals an integer-only numpy evaluation of the
exported integers (export contract), bit for bit, on random layers."""
import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantizeml.export import block_parameters
from quantizeml.layers import (Dequantizer, InputQuantizer, QuantizedConv2D, QuantizedDense,
                               QuantizedDepthwiseConv2D, QuantizedFlatten,
                               QuantizedGlobalAveragePooling2D, QuantizedMaxPool2D, QuantizedReLU,
                               QuantizedSeparableConv2D)
from quantizeml.quantizers import round_act_step

from .integer_reference import block_forward, block_predict


def _randomize(layer, rng, scale):
    for var in layer.trainable_weights:
        var.assign(rng.normal(0.0, scale, var.shape).astype(np.float32))


@st.composite
def block_cases(draw):
    kind = draw(st.sampled_from(["conv", "input_conv", "separable", "depthwise", "dense"]))
    weight_bits = draw(st.sampled_from({"separable": [2, 4], "input_conv": [1, 2, 4, 8]}.get(
        kind, [1, 2, 4, 8])))
    input_bits = 8 if kind == "input_conv" else draw(st.sampled_from([1, 2, 4]))
    channels = 3 if kind == "input_conv" else draw(st.integers(1, 4))
    size = draw(st.integers(3, 7))
    kernel = draw(st.sampled_from([1, 3, 5]))
    case = dict(kind=kind, weight_bits=weight_bits, input_bits=input_bits, channels=channels,
                size=size, kernel=min(kernel, size), filters=draw(st.integers(1, 4)),
                stride=draw(st.sampled_from([1, 2])), padding=draw(st.sampled_from(["same",
                                                                                    "valid"])),
                pool=draw(st.sampled_from(["none", "max", "gap"])) if kind != "dense" else "none",
                pool_padding=draw(st.sampled_from(["same", "valid"])),
                act_bits=draw(st.sampled_from([None, 1, 2, 4])),
                padding_value=draw(st.integers(0, 2**input_bits - 1)),
                per_tensor=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))
    return case


def _build_block(case):
    rng = np.random.default_rng(case["seed"])
    kind, kw = case["kind"], dict(weight_bits=case["weight_bits"],
                                  input_bits=case["input_bits"],
                                  per_tensor_weights=case["per_tensor"])
    conv_kw = dict(kernel_size=case["kernel"], strides=case["stride"], padding=case["padding"])
    if kind in ("conv", "input_conv"):
        neural = QuantizedConv2D(case["filters"], padding_value=case["padding_value"], **conv_kw,
                                 **kw)
    elif kind == "separable":
        neural = QuantizedSeparableConv2D(case["filters"], padding_value=case["padding_value"],
                                          **conv_kw, **kw)
    elif kind == "depthwise":
        neural = QuantizedDepthwiseConv2D(**conv_kw, **kw)
    else:
        neural = QuantizedDense(case["filters"], padding_value=case["padding_value"], **kw)
    shape = (2, case["size"], case["size"], case["channels"])
    x = rng.integers(0, 2**case["input_bits"], shape).astype(np.float32)
    inputs = np.asarray(QuantizedFlatten()(x)) if kind == "dense" else x
    # A functional graph, as in a model: the global pooling finds its neural layer's bias.
    symbolic = keras.Input(inputs.shape[1:])
    q_symbolic = neural(symbolic)
    _randomize(neural, rng, 1.0)
    neural.set_scales(rng.uniform(0.01, 1.0, neural.input_scale.shape))
    pool = None
    if case["pool"] == "max" and q_symbolic.shape[1] >= 2:
        pool = QuantizedMaxPool2D(2, padding=case["pool_padding"])
    elif case["pool"] == "gap":
        pool = QuantizedGlobalAveragePooling2D()
    if pool is not None:
        q_symbolic = pool(q_symbolic)
    q = keras.Model(symbolic, q_symbolic)(inputs)
    sum_size = getattr(pool, "sum_size", 1)
    if case["act_bits"] is None:
        deq = Dequantizer()
        out = keras.Model(symbolic, deq(q_symbolic))
        deq.set_divisor(round_act_step(rng.uniform(1.0, 50.0, q.shape[-1])))
        return x, q, out(inputs), block_parameters(neural, pool, dequantizer=deq)
    relu = QuantizedReLU(activation_bits=case["act_bits"])
    out = keras.Model(symbolic, relu(q_symbolic))
    typical = float(np.abs(np.asarray(q)).mean() + 1.0)
    relu.set_activation_range(rng.uniform(0.5, 3.0, q.shape[-1]) * typical
                              * neural.weight_scale.numpy() / sum_size,
                              neural.weight_scale.numpy(), sum_size)
    return x, q, out(inputs), block_parameters(neural, pool, relu)


@settings(max_examples=60)
@given(block_cases())
def test_block_equals_integer_reference(case):
    x, q, out, block = _build_block(case)
    x_int = x.astype(np.uint8).reshape(x.shape)
    ref = block_forward(block, x_int)
    out = np.asarray(out)
    if block["activation"]:
        assert np.asarray(q).dtype in (np.float32, np.float64)
        np.testing.assert_array_equal(out.astype(np.int64), ref.astype(np.int64))
        assert out.max() <= 2**block["act_bits"] - 1
    else:
        # Akida forward returns p; Keras q = p - threshold (integers), predict is bit-exact.
        np.testing.assert_array_equal(np.asarray(q).astype(np.int64),
                                      ref - block["threshold"].astype(np.int64))
        np.testing.assert_array_equal(out, block_predict(block, ref))


def test_activation_hand_worked_table():
    # T=10, act_step=2: 4 bits -> p=11 -> 1, 13 -> 2, 39 -> 15; 2 bits steps of 8; 1 bit: p > T.
    p = np.array([[10.0, 11.0, 13.0, 19.0, 27.0, 39.0, 200.0]], np.float32).T
    expected = {4: [0, 1, 2, 5, 9, 15, 15], 2: [0, 1, 1, 2, 3, 3, 3], 1: [0, 1, 1, 1, 1, 1, 1]}
    for bits, levels in expected.items():
        relu = QuantizedReLU(activation_bits=bits)
        relu.build((None, 1))
        relu.act_step.assign([2.0])
        relu.step_threshold.assign([10.0])
        np.testing.assert_array_equal(np.asarray(relu(p))[:, 0], levels)


def test_input_convolution_pads_with_padding_value():
    conv = QuantizedConv2D(1, 3, padding="same", weight_bits=8, input_bits=8, padding_value=7,
                           use_bias=False)
    conv.build((1, 2, 2, 1))
    conv.kernel.assign(np.ones((3, 3, 1, 1), np.float32))
    conv.set_scales(1.0)
    q = np.asarray(conv(np.zeros((1, 2, 2, 1), np.float32)))
    # Weights quantize to 127. Each output sees 5 padded cells of value 7: p = 35 * 127;
    # bias_int = -7 * 9 * 127 (real zero is the integer 7) -> q = -28 * 127.
    np.testing.assert_array_equal(q[0, ..., 0], [[-28 * 127, -28 * 127], [-28 * 127, -28 * 127]])
    assert conv.akida_parameters()["bias"].tolist() == [-63 * 127]


def test_large_bound_switches_to_float64():
    dense = QuantizedDense(2, weight_bits=4, input_bits=4)
    dense.build((None, 60000))
    assert dense.potential_bound() > 2**24
    assert dense(np.full((1, 60000), 15, np.float32)).dtype.name == "float64"
    small = QuantizedDense(2, weight_bits=4, input_bits=4)
    small.build((None, 64))
    assert small(np.ones((1, 64), np.float32)).dtype.name == "float32"


@pytest.mark.parametrize("bits,expected", [(1, [0, 1]), (2, [-1, 1]), (4, [-7, 7]),
                                           (8, [-127, 127])])
def test_weight_ranges(bits, expected):
    from quantizeml.quantizers import quantize_weights, weight_range
    assert list(weight_range(bits)) == expected
    ints = np.asarray(quantize_weights(np.linspace(-3, 3, 61, dtype=np.float32), 0.01, bits))
    assert ints.min() == expected[0] and ints.max() == expected[1]
    assert np.array_equal(ints, np.round(ints))


def test_input_quantizer_numpy_twin():
    layer = InputQuantizer(bits=4, scale=0.3, zero_point=2)
    x = np.random.default_rng(0).normal(0, 2, (50, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(layer(x)).astype(np.uint8), layer.numpy(x))
    assert layer.numpy(x).max() <= 15


@settings(max_examples=80)
@given(st.integers(1, 3).map(lambda i: [1, 2, 4][i - 1]),
       st.floats(1.0 / 16, 2.0**20, allow_nan=False, width=32),
       st.integers(-2**20, 2**20), st.integers(0, 2**16))
def test_activation_tf_equals_numpy_twin_on_boundaries(bits, act_step, threshold, seed):
    from quantizeml.quantizers import activation_boundaries_np, threshold_activation_np
    bounds = activation_boundaries_np([threshold], [act_step], bits)[:, 0]
    rng = np.random.default_rng(seed)
    # Potentials on, just below and just above every boundary, plus random ones.
    p = np.concatenate([bounds, bounds - 1, bounds + 1,
                        rng.integers(bounds[0] - 50, bounds[-1] + 50, 20)]).astype(np.int64)
    relu = QuantizedReLU(activation_bits=bits)
    relu.build((None, 1))
    relu.act_step.assign([act_step])
    relu.step_threshold.assign([float(threshold)])
    keras_levels = np.asarray(relu(p.astype(np.float64)[:, None]))[:, 0]
    reference = threshold_activation_np(p[:, None], [threshold], [act_step], bits)[:, 0]
    np.testing.assert_array_equal(keras_levels.astype(np.int64), reference)
    # Monotone, saturating, and the ceil formula in exact rational arithmetic.
    order = np.argsort(p)
    assert np.all(np.diff(reference[order].astype(int)) >= 0)
    assert reference.max() <= 2**bits - 1
    # Akida's act_step register keeps 4 fractional bits: floor(act_step * 16) / 16.
    step = np.floor(np.float64(np.float32(act_step)) * 16) / 16 * 2.0 ** (4 - bits)
    expected = np.clip(np.ceil((p - threshold) / step), 0, 2**bits - 1)
    np.testing.assert_array_equal(reference, expected)
