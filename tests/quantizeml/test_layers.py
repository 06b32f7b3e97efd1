"""Quantized layers: Keras signature parity, config round trips, params validation, STE."""
import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

from quantizeml import Akida1QuantizationParams
from quantizeml import layers as q
from quantizeml.errors import QuantizationConfigError
from quantizeml.params import PRESETS
from quantizeml.v2.layers.neural import QuantizedDense as QuantizedDenseV2

TWINS = [
    (q.QuantizedConv2D, keras.layers.Conv2D), (q.QuantizedSeparableConv2D,
                                               keras.layers.SeparableConv2D),
    (q.QuantizedDepthwiseConv2D, keras.layers.DepthwiseConv2D),
    (q.QuantizedDense, keras.layers.Dense), (q.QuantizedReLU, keras.layers.ReLU),
    (q.QuantizedMaxPool2D, keras.layers.MaxPooling2D),
    (q.QuantizedGlobalAveragePooling2D, keras.layers.GlobalAveragePooling2D),
    (q.QuantizedFlatten, keras.layers.Flatten), (q.QuantizedReshape, keras.layers.Reshape),
    (q.QuantizedRescaling, keras.layers.Rescaling),
]
QUANTIZATION_ARGS = {"weight_bits", "input_bits", "padding_value", "per_tensor_weights",
                     "activation_bits", "per_tensor_activations"}


@pytest.mark.parametrize("ours,parent", TWINS, ids=lambda c: c.__name__)
def test_signature_keeps_parent_and_adds_only_quantization_args(ours, parent):
    mine = list(inspect.signature(ours.__init__).parameters.values())
    theirs = list(inspect.signature(parent.__init__).parameters.values())
    theirs_named = [p for p in theirs if p.kind is not p.VAR_KEYWORD]
    assert [(p.name, p.default) for p in mine[:len(theirs_named)]] == \
        [(p.name, p.default) for p in theirs_named]
    extra = mine[len(theirs_named):]
    assert extra[-1].kind is extra[-1].VAR_KEYWORD
    for param in extra[:-1]:
        assert param.kind is param.KEYWORD_ONLY and param.name in QUANTIZATION_ARGS


def _instances():
    return [q.QuantizedConv2D(4, 3, weight_bits=2, input_bits=8, padding_value=5),
            q.QuantizedSeparableConv2D(4, 3, weight_bits=2), q.QuantizedDepthwiseConv2D(3),
            q.QuantizedDense(3, weight_bits=1), q.QuantizedReLU(activation_bits=2),
            q.QuantizedMaxPool2D(), q.QuantizedGlobalAveragePooling2D(), q.QuantizedFlatten(),
            q.QuantizedReshape((1, 1, 4)), q.QuantizedRescaling(0.5, 1.0),
            q.InputQuantizer(4, 0.5, 3), q.Dequantizer()]


@pytest.mark.parametrize("layer", _instances(), ids=lambda l: type(l).__name__)
def test_config_round_trip_and_registration(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    registered = keras.saving.get_registered_name(type(layer))
    assert registered == f"quantizeml>{type(layer).__name__}"
    assert layer.dtype_policy.name == "float32"


def test_mixed_precision_policy_is_ignored():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = q.QuantizedConv2D(2, 3)
        assert layer.compute_dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("kwargs,match", [
    (dict(weight_bits=3), "weight_bits=3"), (dict(weight_bits=True), "weight_bits=True"),
    (dict(input_bits=8, padding_value=300), "padding_value=300"),
    (dict(dilation_rate=2), "dilation_rate"), (dict(data_format="channels_first"),
                                               "channels_first"),
    (dict(activation="relu"), "fused activation"),
])
def test_layer_argument_errors(kwargs, match):
    with pytest.raises(QuantizationConfigError, match=match):
        q.QuantizedConv2D(2, 3, **kwargs)


def test_relu_rejects_leaky_and_bad_bits():
    with pytest.raises(QuantizationConfigError, match="negative_slope"):
        q.QuantizedReLU(negative_slope=0.1)
    with pytest.raises(QuantizationConfigError, match="activation_bits=8"):
        q.QuantizedReLU(activation_bits=8)
    with pytest.raises(QuantizationConfigError, match="allowed: 2, 4"):
        q.QuantizedSeparableConv2D(2, 3, weight_bits=8)


@pytest.mark.parametrize("field,value", [
    ("weight_bits", 0), ("weight_bits", -4), ("weight_bits", 4.5), ("weight_bits", True),
    ("weight_bits", 3), ("activation_bits", 8), ("activation_bits", False),
    ("input_weight_bits", 16), ("output_bits", 8), ("buffer_bits", 64),
    ("input_dtype", "float32"), ("input_dtype", "int8"), ("input_dtype", "nonsense"),
    ("per_tensor_activations", 1), ("last_output_bits", 3),
])
def test_quantization_params_rejects(field, value):
    with pytest.raises(QuantizationConfigError, match=field):
        Akida1QuantizationParams(**{field: value})


def test_quantization_params_is_frozen_and_presets():
    params = Akida1QuantizationParams()
    with pytest.raises(Exception):
        params.weight_bits = 2
    assert params.replace(weight_bits=2).weight_bits == 2
    assert params == PRESETS["Int8InputInt4WeightUint4ActPerTensor"]
    assert PRESETS["Int8InputBinaryWeightUint1ActPerTensor"].activation_bits == 1
    assert "weight_bits=4" in repr(params)


def test_straight_through_gradients():
    relu = q.QuantizedReLU(activation_bits=4)
    relu.build((None, 1))
    relu.act_step.assign([1.0])
    relu.step_threshold.assign([0.0])
    p = tf.constant([[-5.0], [3.0], [100.0]])
    with tf.GradientTape() as tape:
        tape.watch(p)
        out = relu(p)
    grad = tape.gradient(out, p).numpy()[:, 0]
    assert grad[1] == 1.0 and grad[0] == 0.0 and grad[2] == 0.0
    dense = q.QuantizedDense(2)
    dense.build((None, 3))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(dense(tf.ones((1, 3))))
    kernel_grad, bias_grad = tape.gradient(loss, [dense.kernel, dense.bias])
    assert np.all(np.isfinite(kernel_grad.numpy())) and np.any(kernel_grad.numpy() != 0)
    assert np.all(bias_grad.numpy() != 0)


def test_all_zero_kernel_channel_gets_a_finite_scale():
    from quantizeml.quantizers import compute_weight_scale
    kernel = np.zeros((3, 3, 2, 3), np.float32)
    kernel[..., 0] = 0.7
    scale = compute_weight_scale(kernel, 4)
    assert np.all(np.isfinite(scale)) and np.all(scale > 0)
    assert np.all(compute_weight_scale(np.zeros((2, 2)), 4) == 1.0)
    with pytest.raises(QuantizationConfigError, match="NaN"):
        compute_weight_scale(np.full((2, 2), np.nan), 4)


def test_weight_scale_search_never_worse_than_max_scaling():
    from quantizeml.quantizers import compute_weight_scale, weight_range
    rng = np.random.default_rng(0)
    kernel = rng.standard_t(3, (3, 3, 4, 6))
    for bits in (2, 4, 8):
        low, high = weight_range(bits)
        searched = compute_weight_scale(kernel, bits).astype(np.float64)
        plain = np.abs(kernel).reshape(-1, 6).max(axis=0) / high

        def error(scale):
            return ((kernel - np.clip(np.round(kernel / scale), low, high) * scale) ** 2).sum(
                axis=(0, 1, 2))
        assert np.all(error(searched) <= error(plain) * (1 + 1e-5))
        assert np.all(searched <= plain * (1 + 1e-6))
    # 2 bits on heavy tails: clipping the largest weights wins (scale below max/high).
    assert np.any(compute_weight_scale(kernel, 2) < np.abs(kernel).reshape(-1, 6).max(axis=0))


def test_weight_scale_search_in_column_blocks_gives_the_same_scales(monkeypatch):
    from quantizeml import quantizers
    kernel = np.random.default_rng(5).standard_t(3, (3, 3, 40, 70))
    whole = quantizers.compute_weight_scale(kernel, 4)
    blocks = []
    search = quantizers._search_columns

    def spy(flat, magnitude, bits):
        blocks.append(flat.shape)
        return search(flat, magnitude, bits)

    monkeypatch.setattr(quantizers, "_search_columns", spy)
    monkeypatch.setattr(quantizers, "SEARCH_BLOCK_VALUES", 360 * 16)
    np.testing.assert_array_equal(quantizers.compute_weight_scale(kernel, 4), whole)
    assert blocks == [(360, 16)] * 4 + [(360, 6)]


def test_activation_range_search_hand_example():
    from quantizeml.calibrate import HISTOGRAM_BINS, search_range
    # Channel 0: mass spread on [0, 1] plus one outlier at 10 -> the range shrinks near 1.
    counts = np.zeros((2, HISTOGRAM_BINS))
    counts[0, :int(0.1 * HISTOGRAM_BINS)] = 1000
    counts[0, -1] = 1
    counts[1, -1] = 50  # channel 1: everything at its max -> keep the max
    upper = np.array([10.0, 2.0])
    per_channel = search_range(counts, upper, levels=15, per_tensor=False)
    assert per_channel[0] < 2.0 and abs(per_channel[1] - 2.0) < 0.05
    per_tensor = search_range(counts, upper, levels=15, per_tensor=True)
    assert per_tensor[0] == per_tensor[1] <= 10.0


@pytest.mark.parametrize("dense", [q.QuantizedDense, QuantizedDenseV2])
@pytest.mark.parametrize("features", [{"lora_rank": 2}, {"quantization_config": object()}])
def test_keras_float_features_are_refused_by_both_generations(dense, features):
    with pytest.raises(QuantizationConfigError, match="lora_rank/quantization_config"):
        dense(3, name="head", **features)
