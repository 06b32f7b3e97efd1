"""Akida 2.0 quantized layers: the worked examples of conversion-v2.md §3 and akida2-layers.md §4,
computed by the Keras twins with frozen integer variables."""
import inspect

import keras
import numpy as np
import pytest

from quantizeml.errors import QuantizationConfigError
from quantizeml.v2 import QuantizationParams
from quantizeml.v2 import layers as ql
from quantizeml.v2.fixed_point import aligned_frac_bits, frac_bits, output_scale


def _neural(layer, input_shape, kernel, bias=None, input_shift=None, bias_shift=None,
            scale=None, shift=None):
    """Build ``layer`` and give it integer kernel/bias (scales 1) and frozen shifts."""
    layer.build(input_shape)
    weights = [np.asarray(kernel, np.float64)] + ([np.asarray(bias, np.float64)]
                                                  if layer.use_bias else [])
    layer.set_weights(weights + layer.get_weights()[len(weights):])
    channels = layer.weight_scale.shape[0]
    layer.weight_scale.assign(np.ones(channels))
    layer.set_bias_alignment(np.ones(channels), np.zeros(channels) if bias_shift is None
                             else bias_shift)
    layer.set_input_shift(0 if input_shift is None else input_shift)
    if layer.output_bits is not None:
        layer.set_output_quantizer(1 if scale is None else scale, 0 if shift is None else shift)
    return layer


def test_worked_example_conv_relu_block_and_add():
    # conversion-v2.md §3: block convB, 8-bit per-axis, then the Add.
    conv = _neural(ql.QuantizedConv2D(2, 1), (1, 1, 1, 2), [[[[-127, 127], [33, -13]]]],
                   [-99, -123], input_shift=[1, 0], bias_shift=[4, 3])
    relu = ql.QuantizedReLU(3.0, output_bits=8)
    relu.build((1, 1, 1, 2))
    relu.set_ceiling([220, 229], [8, 6])
    relu.set_output_quantizer([223, 214], [-15, -15])
    x = np.array([50, 0], np.float64).reshape(1, 1, 1, 2)
    potentials = conv(x).numpy().ravel()
    assert potentials.tolist() == [-14284, 11716]
    out = relu(conv(x)).numpy().ravel()
    assert out.tolist() == [0, 77]
    add = ql.QuantizedAdd(output_bits=8)
    add.build([(1, 1, 1, 2), (1, 1, 1, 2)])
    add.set_shifts([1, 0], [0, 2], [-1, -2])
    assert add([x, out.reshape(1, 1, 1, 2)]).numpy().ravel().tolist() == [50, 77]


def test_worked_example_bias_alignment_and_output_scales():
    # b = -0.2004, s = 0.026165, f_acc = 7 -> fb = 4, q = -123, bias_shift = 3
    fb = aligned_frac_bits(np.array([-0.2004]), np.array([0.026165]), 8, True, np.array([7.0]))
    assert fb.tolist() == [4.0]
    assert np.round(-0.2004 / 0.026165 * 2.0**4) == -123
    scale, f_s = output_scale(np.array([1.0, 0.75]))
    assert scale.tolist() == [255, 192] and f_s.tolist() == [8, 8]
    assert frac_bits([0.9, 0.0, 130.0], 8, True).tolist() == [7, 7, -1]


def test_runtime_examples_conv_input_conv_dense():
    # akida2-layers.md §4: Conv2D x=[100,-50], input_shift [1,0], w=[2,3], bb=8, bias 10<<2,
    # NoActivation, shift -1 -> 72.
    conv = _neural(ql.QuantizedConv2D(1, 1, buffer_bits=8, output_bits=8), (1, 1, 1, 2),
                   [[[[2], [3]]]], [10], input_shift=[1, 0], bias_shift=[2], shift=[-1])
    assert conv(np.array([100, -50.0]).reshape(1, 1, 1, 2)).numpy().ravel().tolist() == [72]
    # InputConv2D [200, 100], k=1, w=3, bias=-5, bias_shift=4, ReLU, scale 3, shift -4, bb=9.
    first = _neural(ql.QuantizedConv2D(1, 1, buffer_bits=9, input_conv=True), (1, 1, 2, 1),
                    [[[[3]]]], [-5], bias_shift=[4])
    relu = ql.QuantizedReLU(output_bits=8)
    relu.build((1, 1, 2, 1))
    relu.set_output_quantizer([3], [-4])
    out = relu(first(np.array([200, 100.0]).reshape(1, 1, 2, 1)))
    assert out.numpy().ravel().tolist() == [48, 41]
    # Conv2D(ob=4, NoActivation) on [-5, 7, 100] -> unsigned [0, 7, 15]
    four = _neural(ql.QuantizedConv2D(1, 1, use_bias=False, output_bits=4), (1, 1, 3, 1),
                   [[[[1]]]])
    assert four(np.array([-5, 7, 100.0]).reshape(1, 1, 3, 1)).numpy().ravel().tolist() == \
        [0, 7, 15]
    # Dense1D row-major: (2,1,2) [[1,2],[3,4]] -> [1,2,3,4] . [1,2,4,8] = 49
    dense = _neural(ql.QuantizedDense(1, use_bias=False), (1, 4), [[1], [2], [4], [8]])
    flat = ql.QuantizedFlatten()(np.array([[1, 2], [3, 4.0]]).reshape(1, 2, 1, 2))
    assert dense(flat).numpy().ravel().tolist() == [49]


def test_runtime_examples_relu_ceiling_gap_depthwise_transpose():
    # ReLU max_value 3, shift 6 (ceiling 192), acc 255 (x=85, w=3), scale 2, ob 16 -> 384
    conv = _neural(ql.QuantizedConv2D(1, 1, use_bias=False), (1, 1, 1, 1), [[[[3]]]])
    relu = ql.QuantizedReLU(6.0, output_bits=16)
    relu.build((1, 1, 1, 1))
    relu.set_ceiling([3], [6])
    relu.set_output_quantizer([2], [0])
    assert relu(conv(np.full((1, 1, 1, 1), 85.0))).numpy().ravel().tolist() == [384]
    # GAP with ReLU and bias -30 over [100, -50, -20, 5] -> 70 (per pixel, then summed)
    conv = _neural(ql.QuantizedConv2D(1, 1), (1, 2, 2, 1), [[[[1]]]], [-30])
    gap = ql.QuantizedGlobalAveragePooling2D(nonnegative_inputs=True, output_bits=16)
    gap.build((1, 2, 2, 1))
    gap.set_output_quantizer([1], [0])
    x = np.array([100, -50, -20, 5.0]).reshape(1, 2, 2, 1)
    assert gap(ql.QuantizedReLU()(conv(x))).numpy().ravel().tolist() == [70]
    # Depthwise 3x3 'same' over 1..9 (Keras correlation with w[2,1] = Akida's flipped w[0,1])
    kernel = np.zeros((3, 3, 1, 1))
    kernel[2, 1] = 1
    dw = _neural(ql.QuantizedDepthwiseConv2D(3, padding="same", use_bias=False), (1, 3, 3, 1),
                 kernel)
    out = dw(np.arange(1, 10.0).reshape(1, 3, 3, 1)).numpy()[0, :, :, 0]
    assert out.tolist() == [[4, 5, 6], [7, 8, 9], [0, 0, 0]]
    # Conv2DTranspose 1x1 input 5: k=3 (w 1..9) -> [[5,10],[20,25]]; k=4 (w 1..16) -> [[30,35],
    # [50,55]]
    for k, expected in ((3, [[5, 10], [20, 25]]), (4, [[30, 35], [50, 55]])):
        kernel = np.arange(1, k * k + 1.0).reshape(k, k, 1, 1)
        layer = _neural(ql.QuantizedConv2DTranspose(1, k, strides=2, padding="same",
                                                    use_bias=False), (1, 1, 1, 1), kernel)
        assert layer(np.full((1, 1, 1, 1), 5.0)).numpy()[0, :, :, 0].tolist() == expected


def test_gap_running_saturation_without_relu():
    # signed values: the 32-bit register saturates after every addition (row-major)
    gap = ql.QuantizedGlobalAveragePooling2D(output_bits=32)
    gap.build((1, 1, 3, 1))
    gap.set_output_quantizer([1], [0])
    x = np.array([2.0**31 - 10, 100, -100]).reshape(1, 1, 3, 1)
    assert gap(x).numpy().ravel().tolist() == [2**31 - 1 - 100]


def test_input_quantizer_rounds_half_away_and_clips():
    # The Akida 2.0 Quantizer rounds ties away from zero and saturates (MetaTF: half to even,
    # and inputs below the calibrated range give codes the runtime clips: conversion-v2.md §6).
    layer = ql.InputQuantizer(8, True)
    layer.build((1, 5))
    layer.set_quantizer(1)
    x = np.array([[1.25, -1.25, 0.75, 100.0, -100.0]], np.float32)
    assert layer(x).numpy().ravel().tolist() == [3, -3, 2, 127, -128]
    unsigned = ql.InputQuantizer(8, False)
    unsigned.build((1, 2))
    unsigned.set_quantizer(0)
    assert unsigned(np.array([[-3.0, 300.0]], np.float32)).numpy().ravel().tolist() == [0, 255]


def test_unsigned_input_quantizer_adds_its_zero_point_per_channel_then_saturates():
    layer = ql.InputQuantizer(8, False)
    layer.build((1, 4))
    layer.set_quantizer([7, 7, 6, 6], [128, 128, 16, 16])
    # 0.5·128 = 64 + 128; -1.5·128 = -192 + 128 -> 0; 0.5·64 + 16 = 48; 4.0·64 + 16 -> 255
    x = np.array([[0.5, -1.5, 0.5, 4.0]], np.float32)
    assert layer(x).numpy().ravel().tolist() == [192, 0, 48, 255]
    # a tie -2.5 rounds away from zero to -3, then + 128
    layer.set_quantizer(0, 128)
    assert layer(np.full((1, 4), -2.5, np.float32)).numpy().ravel().tolist() == [125] * 4


@pytest.mark.parametrize("bits, signed, zero_point, fragment", [
    (8, True, 3, "0 on a signed one"), (8, False, 256, "integers 0...255"),
    (4, False, -1, "integers 0...15"), (8, False, 1.5, "integers 0...255")])
def test_input_quantizer_zero_point_checks(bits, signed, zero_point, fragment):
    layer = ql.InputQuantizer(bits, signed, name="iq")
    layer.build((1, 2))
    with pytest.raises(QuantizationConfigError, match=f"Layer 'iq': zero_point=.*{fragment}"):
        layer.set_quantizer(0, zero_point)


def test_input_quantizer_bits_are_the_quantizer_ones_or_sixteen():
    assert ql.InputQuantizer(16, False).bits == 16
    with pytest.raises(QuantizationConfigError, match="bits=6; allowed: 4, 8 .* or 16"):
        ql.InputQuantizer(6, True)


def test_input_conv_pads_each_channel_with_its_padding_value():
    # 1x1 input, k3 'same': the 8 padded cells of channel c hold padding_value[c]
    conv = _neural(ql.QuantizedConv2D(1, 3, padding="same", use_bias=False, input_conv=True,
                                      padding_value=[10, 20], output_bits=16),
                   (1, 1, 1, 2), np.ones((3, 3, 2, 1)))
    out = conv(np.array([1.0, 2.0]).reshape(1, 1, 1, 2)).numpy().ravel().tolist()
    assert out == [1 + 2 + 8 * (10 + 20)]
    clone = ql.QuantizedConv2D.from_config(conv.get_config())
    assert clone.padding_value == [10, 20]
    with pytest.raises(QuantizationConfigError, match="padding_value has 2 values for 3 input"):
        ql.QuantizedConv2D(1, 3, input_conv=True, padding_value=[1, 2]).build((1, 4, 4, 3))
    with pytest.raises(QuantizationConfigError, match="padding_value=\\[1, 300\\]; allowed"):
        ql.QuantizedConv2D(1, 3, input_conv=True, padding_value=[1, 300])
    with pytest.raises(QuantizationConfigError, match="on an input convolution"):
        ql.QuantizedConv2D(1, 3, padding_value=[1, 0])


@pytest.mark.parametrize("cls, parent", [
    (ql.QuantizedConv2D, keras.layers.Conv2D),
    (ql.QuantizedDepthwiseConv2D, keras.layers.DepthwiseConv2D),
    (ql.QuantizedConv2DTranspose, keras.layers.Conv2DTranspose),
    (ql.QuantizedDense, keras.layers.Dense), (ql.QuantizedReLU, keras.layers.ReLU),
    (ql.QuantizedMaxPool2D, keras.layers.MaxPooling2D),
    (ql.QuantizedGlobalAveragePooling2D, keras.layers.GlobalAveragePooling2D),
    (ql.QuantizedConcatenate, keras.layers.Concatenate),
    (ql.QuantizedActivation, keras.layers.Activation),
    (ql.QuantizedLeakyReLU, keras.layers.LeakyReLU)])
def test_signature_keeps_keras_parent(cls, parent):
    ours = [p for p in inspect.signature(cls.__init__).parameters.values()
            if p.kind != p.KEYWORD_ONLY and p.kind != p.VAR_KEYWORD]
    theirs = [p for p in inspect.signature(parent.__init__).parameters.values()
              if p.kind != p.KEYWORD_ONLY and p.kind != p.VAR_KEYWORD]
    assert [(p.name, p.default) for p in ours] == [(p.name, p.default) for p in theirs]


def test_params_defaults_are_metatf_and_any_bits_accepted():
    params = QuantizationParams()
    assert params.to_dict() == {"activation_bits": 8, "per_tensor_activations": False,
                                "weight_bits": 8, "output_bits": 8, "input_weight_bits": 8,
                                "input_dtype": "uint8", "buffer_bits": 32,
                                "last_output_bits": None}
    assert QuantizationParams(2, True, 6, 6).weight_bits == 6
    assert params.neural_buffer_bits == 28
    with pytest.raises(QuantizationConfigError, match="input_dtype"):
        QuantizationParams(input_dtype="float32")
    with pytest.raises(QuantizationConfigError, match="weight_bits"):
        QuantizationParams(weight_bits=1)
    with pytest.raises(QuantizationConfigError, match="activation_bits"):
        QuantizationParams(activation_bits=True)


@pytest.mark.parametrize("kind", ["conv", "depthwise", "dense_4d"])
def test_dilated_and_4d_dense_layers_equal_their_float_layer_on_integers(kind):
    # MetaTF quantizes these (cnn2snn refuses them at convert): integer weights and inputs, scale
    # 1, no shifts -> the quantized sums equal the float layer's on the same integers.
    rng = np.random.default_rng(0)
    x = rng.integers(-20, 20, (2, 7, 7, 3)).astype(np.float64)
    if kind == "conv":
        layer, ref = (cls(2, 3, padding="same", dilation_rate=2)
                      for cls in (ql.QuantizedConv2D, keras.layers.Conv2D))
        kernel = rng.integers(-5, 5, (3, 3, 3, 2))
    elif kind == "depthwise":
        layer, ref = (cls(3, padding="same", dilation_rate=2)
                      for cls in (ql.QuantizedDepthwiseConv2D, keras.layers.DepthwiseConv2D))
        kernel = rng.integers(-5, 5, (3, 3, 3, 1))
    else:
        layer, ref = ql.QuantizedDense(2), keras.layers.Dense(2)
        kernel = rng.integers(-5, 5, (3, 2))
    _neural(layer, x.shape, kernel, np.zeros(3 if kind == "depthwise" else 2))
    ref.build(x.shape)
    ref.set_weights([kernel.astype(np.float32), np.zeros(ref.get_weights()[1].shape)])
    np.testing.assert_array_equal(layer(x).numpy(), ref(x.astype(np.float32)).numpy())
