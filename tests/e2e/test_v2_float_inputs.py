"""Akida 2.0, float Keras inputs: MetaTF's InputQuantizer of ``input_dtype`` (uint8 with a
zero point by default, conversion-v2.md §1-2), converted to a Quantizer (+ InputConv2D), exact."""
import keras
import numpy as np
import pytest

import akida_core
from cnn2snn import ConversionError, convert
from quantizeml.errors import QuantizationError
from quantizeml.models import QuantizationParams, quantize
from quantizeml.transforms import QuantizationWarning
from quantizeml.v2 import layers as ql
from quantizeml.v2 import strip_float_tail
from quantizeml.v2.inputs import choose_input_quantizer, padding_values


def _stats(low, high):
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    return {"channel_min": low, "channel_max": high, "abs": np.maximum(-low, high)}


def test_the_sheets_minus_one_to_one_example_by_hand():
    # f = min(8 - cl2(1 - (-1)), 8) = 7; zp = rne(1 * 2**7) = 128; padding: 1.0 quantized by a
    # signed 8-bit aligned quantizer at f = 7 is 128, saturated to 127 (measured in MetaTF).
    frac, zero = choose_input_quantizer(_stats([-1.0], [1.0]), 8, False, True, True)
    assert frac.tolist() == [7] and zero.tolist() == [128]
    assert padding_values(frac, zero, 8) == [127]
    # 4-bit input weights: 1.0 at 3 fractional bits is 8 -> 7, aligned to f = 7: 7 * 2**4
    assert padding_values(frac, zero, 4) == [112]
    # int8 (signed, no zero point): f = 7 - cl2(1) = 7
    frac, zero = choose_input_quantizer(_stats([-1.0], [1.0]), 8, True, True, False)
    assert frac.tolist() == [7] and zero.tolist() == [0]


def test_per_axis_ranges_and_a_zero_point_that_would_not_fit():
    stats = _stats([-1.0, -0.25], [0.5, 3.0])
    # ranges 1.5 -> cl2 1 -> f 7, zp 128; 3.25 -> cl2 2 -> f 6, zp rne(0.25 * 64) = 16
    frac, zero = choose_input_quantizer(stats, 8, False, False, False)
    assert frac.tolist() == [7, 6] and zero.tolist() == [128, 16]
    # before an input convolution (no input shift): one f, zero points per channel
    frac, zero = choose_input_quantizer(stats, 8, False, False, True)
    assert frac.tolist() == [6, 6] and zero.tolist() == [64, 16]
    # per tensor: [-1, 3]: range 4 -> f 6, zp 64
    frac, zero = choose_input_quantizer(stats, 8, False, True, False)
    assert frac.tolist() == [6, 6] and zero.tolist() == [64, 64]
    # [-1, 0]: f = 8 - cl2(1) = 8 gives zp 256 > 255: one bit less
    frac, zero = choose_input_quantizer(_stats([-1.0], [0.0]), 8, False, True, True)
    assert frac.tolist() == [7] and zero.tolist() == [128]
    # uint16 / int16: 16 value bits / 15
    assert choose_input_quantizer(_stats([-1.0], [1.0]), 16, False, True, False)[0][0] == 15
    assert choose_input_quantizer(_stats([-1.0], [1.0]), 16, True, True, False)[0][0] == 15


def _model(channels, padding, seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((8, 8, channels))
    x = keras.layers.Conv2D(8, 3, padding=padding, name="conv")(inp)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_1")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inp, keras.layers.Dense(4, name="dense")(x))


def _inputs(channels, n=24, seed=0):
    # channel c in [-1 - c/4, 1 + c/2]: per-axis ranges differ; the extremes are hit exactly
    rng = np.random.default_rng(seed)
    low = -1.0 - np.arange(channels) / 4
    high = 1.0 + np.arange(channels) / 2
    x = rng.uniform(low, high, (n, 8, 8, channels))
    x[0, 0, 0], x[0, 0, 1] = low, high
    return x.astype(np.float32)


def _akida_codes(akida_model, x):
    """The codes of the Akida model's Quantizer alone."""
    quantizer = akida_model.layers[0]
    probe = akida_core.Model()
    probe.add(akida_core.Quantizer(quantizer.input_dims, quantizer.output_bits,
                                   quantizer.output_signed))
    for name, value in quantizer.variables.items():
        probe.layers[0].set_variable(name, value)
    return probe.forward(x)


def _assert_exact(qmodel, akida_model, x):
    """Same float32 outputs (the Dequantizer's nonzero scales times equal integers) from
    ``predict`` and ``forward``, and the same input codes."""
    keras_outputs = strip_float_tail(qmodel).predict(x, verbose=0)
    for akida_outputs in (akida_model.predict(x), akida_model.forward(x)):
        assert akida_outputs.dtype == np.float32
        np.testing.assert_array_equal(keras_outputs, akida_outputs.reshape(keras_outputs.shape))
    assert np.all(qmodel.get_layer("dequantizer").scales.numpy() != 0)
    keras_codes = keras.Model(qmodel.inputs, qmodel.layers[1].output).predict(x, verbose=0)
    np.testing.assert_array_equal(keras_codes, _akida_codes(akida_model, x))


CASES = [(3, "same", False), (3, "valid", False), (1, "same", True), (3, "same", True),
         (8, "valid", False), (8, "valid", True)]


@pytest.mark.parametrize("channels, padding, per_tensor", CASES)
def test_default_uint8_input_quantizer_is_bit_exact(channels, padding, per_tensor):
    model, x = _model(channels, padding), _inputs(channels)
    params = QuantizationParams(per_tensor_activations=per_tensor)
    qmodel = quantize(model, qparams=params, samples=x[:16])
    quantizer = qmodel.get_layer("input_quantizer")
    assert (quantizer.bits, quantizer.signed) == (8, False)
    zero = quantizer.zero_point.numpy()
    assert np.all(zero > 0) and (len(set(zero)) == 1) == (per_tensor or channels == 1)
    akida_model = convert(qmodel)
    kinds = [layer.layer_type.name for layer in akida_model.layers]
    assert kinds[:2] == ["Quantizer", "InputConv2D" if channels in (1, 3) else "Conv2D"]
    first = akida_model.layers[0]
    assert first.output_bits == 8 and not first.output_signed
    np.testing.assert_array_equal(first.variables["zero_points"], zero.astype(np.uint8))
    np.testing.assert_array_equal(first.variables["scales"],
                                  2.0 ** quantizer.frac_bits.numpy().astype(np.float32))
    if kinds[1] == "InputConv2D":
        pads = akida_model.layers[1].variables["padding_value"]
        assert list(pads) == padding_values(quantizer.frac_bits.numpy(), zero, 8)
    # inputs far below and above the calibrated range saturate alike in Keras and Akida
    wide = np.concatenate([x, 3.0 * x[:4], x[:4] - 5.0]).astype(np.float32)
    _assert_exact(qmodel, akida_model, wide)
    # the zero point is folded into the first bias: the quantized model follows the float one
    reference, quantized = model.predict(x, verbose=0), qmodel.predict(x, verbose=0)
    assert np.abs(quantized - reference).max() < 0.05 * np.abs(reference).max()


def test_a_padded_conv2d_on_the_input_gets_signed_codes_with_a_warning():
    # Akida 2.0 Conv2D pads with code 0: with a zero point that would be the input minimum
    model, x = _model(8, "same"), _inputs(8)
    with pytest.warns(QuantizationWarning, match="'conv' pad the float input .* quantized as "
                      "int8 \\(signed, no zero point\\)"):
        qmodel = quantize(model, qparams=QuantizationParams(), samples=x[:16])
    quantizer = qmodel.get_layer("input_quantizer")
    assert quantizer.signed and not np.any(quantizer.zero_point.numpy())
    akida_model = convert(qmodel)
    assert [layer.layer_type.name for layer in akida_model.layers][:2] == ["Quantizer", "Conv2D"]
    _assert_exact(qmodel, akida_model, x)


def test_ties_round_half_away_and_codes_saturate_at_zero():
    model = _model(3, "same")
    x = _inputs(3)
    qmodel = quantize(model, qparams=QuantizationParams(per_tensor_activations=True),
                      samples=x)
    quantizer = qmodel.get_layer("input_quantizer")
    frac, zero = quantizer.frac_bits.numpy()[0], quantizer.zero_point.numpy()[0]
    assert (frac, zero) == (6, 96)   # [-1.5, 2]: range 3.5 -> f 6; zp = rne(1.5 * 64) = 96
    halves = np.array([-2.5, -0.5, 0.5, 2.5, 40.5, -96.5, -200.0, 200.0])
    tie = np.zeros((1, 8, 8, 3), np.float32)
    tie[0, 0, :, 0] = halves * 2.0**-frac
    # half away from zero: -3, -1, 1, 3, 41, -97 (+96, then 0..255); -200 -> 0, 200 -> 255
    expected = np.clip(np.array([-3, -1, 1, 3, 41, -97, -200, 200]) + 96, 0, 255)
    codes = keras.Model(qmodel.inputs, quantizer.output).predict(tie, verbose=0)
    np.testing.assert_array_equal(codes[0, 0, :, 0], expected)
    akida_model = convert(qmodel)
    np.testing.assert_array_equal(_akida_codes(akida_model, tie)[0, 0, :, 0], expected)
    _assert_exact(qmodel, akida_model, np.concatenate([tie, x[:3]]))


def test_fbz_round_trip_keeps_the_quantizer_and_input_conv(tmp_path):
    model, x = _model(3, "same"), _inputs(3)
    qmodel = quantize(model, qparams=QuantizationParams(), samples=x[:16])
    qmodel.save(tmp_path / "float_input.keras")  # zero points and per-channel padding values
    qmodel = keras.models.load_model(tmp_path / "float_input.keras")
    assert isinstance(qmodel.get_layer("conv").padding_value, list)
    akida_model = convert(qmodel)
    path = tmp_path / "float_input.fbz"
    akida_model.save(str(path))
    loaded = akida_core.Model(str(path))
    assert [layer.layer_type.name for layer in loaded.layers][:2] == ["Quantizer", "InputConv2D"]
    assert loaded.layers[1].inbounds[0].name == loaded.layers[0].name
    np.testing.assert_array_equal(loaded.predict(x), akida_model.predict(x))
    _assert_exact(qmodel, loaded, x)


def test_int8_keeps_a_signed_quantizer_before_a_conv2d():
    model, x = _model(3, "same"), _inputs(3)
    qmodel = quantize(model, qparams=QuantizationParams(input_dtype="int8"), samples=x[:16])
    quantizer = qmodel.get_layer("input_quantizer")
    assert quantizer.signed and not np.any(quantizer.zero_point.numpy())
    akida_model = convert(qmodel)
    assert [layer.layer_type.name for layer in akida_model.layers][:2] == ["Quantizer", "Conv2D"]
    assert akida_model.layers[0].output_signed
    _assert_exact(qmodel, akida_model, x)


@pytest.mark.parametrize("dtype", ["int16", "uint16"])
def test_sixteen_bit_dtypes_quantize_but_do_not_convert(dtype):
    model, x = _model(8, "valid"), _inputs(8)
    qmodel = quantize(model, qparams=QuantizationParams(input_dtype=dtype), samples=x[:8])
    quantizer = qmodel.get_layer("input_quantizer")
    assert (quantizer.bits, quantizer.signed) == (16, dtype == "int16")
    codes = keras.Model(qmodel.inputs, quantizer.output).predict(x, verbose=0)
    assert codes.max() > 255 and codes.min() >= (-2**15 if dtype == "int16" else 0)
    with pytest.raises(ConversionError, match=f"16-bit .* codes \\(input_dtype='{dtype}'\\); the "
                       "Akida 2.0 Quantizer outputs 4 or 8 bits") as info:
        convert(qmodel)
    assert "input_dtype='uint8'" in str(info.value)


def test_a_zero_point_reaching_an_add_is_refused_with_a_hint():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(3, 1, name="conv")(inp)
    model = keras.Model(inp, keras.layers.Add(name="add")([inp, y]))
    x = _inputs(3)
    with pytest.raises(QuantizationError, match="Layer 'add' \\(Add\\) reads the float input"
                       ".*input_dtype='int8'"):
        quantize(model, qparams=QuantizationParams(), samples=x)
    # non-negative inputs need no zero point: nothing to fold, the Add is fine
    qmodel = quantize(model, qparams=QuantizationParams(), samples=np.abs(x))
    assert not np.any(qmodel.get_layer("input_quantizer").zero_point.numpy())


def test_integer_images_with_a_rescaling_keep_no_input_quantizer():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255)(inp)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
    model = keras.Model(inp, keras.layers.Conv2D(2, 1, name="conv_1")(x))
    images = np.random.default_rng(0).integers(0, 256, (8, 8, 8, 3)).astype(np.float32)
    qmodel = quantize(model, qparams=QuantizationParams(), samples=images)
    assert not any(isinstance(layer, ql.InputQuantizer) for layer in qmodel.layers)
    akida_model = convert(qmodel)
    assert akida_model.layers[0].layer_type.name == "InputConv2D"
    outputs = qmodel.predict(images, verbose=0)
    np.testing.assert_array_equal(akida_model.predict(images.astype(np.uint8)).reshape(
        outputs.shape), outputs)


def _depthwise_first():
    inp = keras.Input((8, 8, 4))
    x = keras.layers.DepthwiseConv2D(3, name="dw")(inp)
    x = keras.layers.ReLU(name="relu")(x)
    return keras.Model(inp, keras.layers.Conv2D(4, 1, name="conv")(x))


def _dense_first():
    inp = keras.Input((8, 8, 2))
    x = keras.layers.Flatten(name="flatten")(inp)
    return keras.Model(inp, keras.layers.Dense(3, use_bias=False, name="dense")(x))


@pytest.mark.parametrize("build, channels, first", [(_depthwise_first, 4, "DepthwiseConv2D"),
                                                    (_dense_first, 2, "Dense1D")])
def test_zero_point_folds_into_a_depthwise_or_flatten_dense_bias(build, channels, first):
    keras.utils.set_random_seed(0)
    model, x = build(), _inputs(channels)
    qmodel = quantize(model, qparams=QuantizationParams(), samples=x[:16])
    assert np.all(qmodel.get_layer("input_quantizer").zero_point.numpy() > 0)
    akida_model = convert(qmodel)
    assert [layer.layer_type.name for layer in akida_model.layers][:2] == ["Quantizer", first]
    _assert_exact(qmodel, akida_model, np.concatenate([x, x[:4] - 5.0]))
    reference, quantized = model.predict(x, verbose=0), qmodel.predict(x, verbose=0)
    assert np.abs(quantized - reference).max() < 0.05 * np.abs(reference).max()
