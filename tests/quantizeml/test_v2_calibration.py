"""Akida 2.0 calibration as MetaTF's (conversion-v2.md §2 "Calibration"): moving averages per
channel and per tensor, equalization of neural block ends, random samples. Expected values are
worked by hand in the comments."""
import keras
import numpy as np
import pytest

from quantizeml.models import QuantizationParams, quantize
from quantizeml.v2.equalize import equalized_range
from quantizeml.v2.observe import observe_ranges

L = keras.layers


def test_equalized_range_worked_examples():
    # r = 5.3, 8 bits: fl2 = 2, new = 255 * 2**(2 - 8) = 3.984375, rate = new / r
    # r = 4.0: fl2 = 2, new = 3.984375, rate = 0.99609375 (exact)
    # r = 0.3, 4 bits: fl2 = -2, new = 15 * 2**-6 = 0.234375, rate = 0.78125
    # r = 0: a dead channel keeps its range, rate 1
    new, rate = equalized_range([5.3, 4.0, 0.0], 8)
    np.testing.assert_array_equal(new, np.float32([3.984375, 3.984375, 0.0]))
    np.testing.assert_array_equal(rate, np.float32([3.984375 / np.float32(5.3), 0.99609375, 1.0]))
    new, rate = equalized_range(0.3, 4)
    assert new == np.float32(0.234375) and rate == np.float32(0.234375) / np.float32(0.3)
    # just below a power of two: fl2(3.9999998) = 1, new = 255 * 2**(1 - 8)
    below = np.nextafter(np.float32(4.0), np.float32(0.0))
    assert equalized_range(below, 8)[0] == np.float32(255 * 2.0**-7)


def test_moving_average_per_channel_and_per_tensor():
    inputs = keras.Input((1, 1, 2))
    conv = L.Conv2D(2, 1, use_bias=False, name="c")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.eye(2, dtype=np.float32)[None, None]])
    first = np.float32([[[[4.0, 1.0]]], [[[-2.0, 0.5]]]])   # batch max|x|: [4, 1], tensor 4
    second = np.float32([[[[1.0, -4.0]]]])                    # batch max|x|: [1, 4], tensor 4
    stats = observe_ranges(model, ["c"], [first])
    np.testing.assert_array_equal(stats["ranges"]["c"], [4.0, 1.0])  # first batch assigned
    stats = observe_ranges(model, ["c"], [first, second])
    # r <- r - 0.1 (r - m): [4 - 0.3, 1 + 0.3]; the tensor average stays 4 (not max = 3.7)
    np.testing.assert_allclose(stats["ranges"]["c"], [3.7, 1.3], rtol=1e-12)
    assert stats["tensor_ranges"]["c"] == 4.0


def _conv_relu_conv():
    inputs = keras.Input((2, 2, 1))
    x = L.Conv2D(2, 1, use_bias=False, name="conv1")(inputs)
    x = L.ReLU(name="relu1")(x)
    x = L.Conv2D(1, 1, use_bias=False, name="conv2")(x)
    model = keras.Model(inputs, x)
    model.get_layer("conv1").set_weights([np.float32([1.0, 0.3]).reshape(1, 1, 1, 2)])
    model.get_layer("conv2").set_weights([np.float32([0.5, 0.25]).reshape(1, 1, 2, 1)])
    return model


def test_next_conv_weights_are_divided_by_the_rescaling_rate():
    model = _conv_relu_conv()
    x = np.zeros((1, 2, 2, 1), np.float32)
    x[0, 0, 0, 0] = 200.0
    qmodel = quantize(model, qparams=QuantizationParams(), samples=x)
    # ReLU ranges [200, 60]; 8 bits: new = [255 * 2**(7-8), 255 * 2**(5-8)] = [127.5, 31.875],
    # rates [0.6375, 0.53125]; conv2 float weights [0.5 / 0.6375, 0.25 / 0.53125]
    # = [0.7843, 0.4706]: quantized [127, rne(0.6 * 127 = 76.2)] = [127, 76] (not [127, 64])
    conv2 = qmodel.get_layer("conv2")
    np.testing.assert_array_equal(np.ravel(conv2.integer_weights()), [127.0, 76.0])
    ranges = np.float32(200.0) * np.float32([1.0, 0.3])  # float32 sums, as observed
    rates = np.float32([127.5, 31.875]) / ranges
    divided = np.float32([0.5, 0.25]) / rates
    np.testing.assert_array_equal(np.ravel(conv2.kernel.numpy()), divided)
    np.testing.assert_array_equal(np.ravel(conv2.integer_weights()),
                                  np.round(divided / (divided.max() / 127)))
    # ReLU output quantizer, channel 0: s' = (1/127) * 0.6375, c = cl2(s') = -7,
    # S = rne(s' * 2**15) = rne(164.48) = 164; f_out = 7 - cl2(127.5) = 0: shift = 0 - 0 - 15
    relu = qmodel.get_layer("relu1")
    assert relu.output_scale.numpy()[0] == 164 and relu.output_shift.numpy()[0] == -15
    # the pixel 200: A = 200 * 127 = 25400, floor(25400 * 164 / 2**15 + 0.5) = 127 = x * rate
    probe = keras.Model(qmodel.inputs, relu.output)
    assert probe.predict(x, verbose=0)[0, 0, 0, 0] == 127.0
    # the float function is kept: the output is about 200 * 0.5 + 60 * 0.25 = 115
    np.testing.assert_allclose(qmodel.predict(x, verbose=0)[0, 0, 0, 0], 115.0, rtol=0.02)


def test_flatten_passes_a_per_tensor_rate_only():
    inputs = keras.Input((2, 2, 1))
    x = L.ReLU(name="relu1")(L.Conv2D(2, 1, use_bias=False, name="conv1")(inputs))
    model = keras.Model(inputs, L.Dense(1, use_bias=False, name="dense")(L.Flatten()(x)))
    model.get_layer("conv1").set_weights([np.float32([1.0, 0.3]).reshape(1, 1, 1, 2)])
    kernel = np.linspace(0.1, 0.8, 8, dtype=np.float32).reshape(8, 1)
    model.get_layer("dense").set_weights([kernel])
    x = np.zeros((1, 2, 2, 1), np.float32)
    x[0, 0, 0, 0] = 200.0
    per_axis = quantize(model, qparams=QuantizationParams(), samples=x)
    np.testing.assert_array_equal(per_axis.get_layer("dense").kernel.numpy(), kernel)
    per_tensor = quantize(model, qparams=QuantizationParams(per_tensor_activations=True),
                          samples=x)
    # tensor range 200: one rate 127.5 / 200 for every flattened input
    np.testing.assert_array_equal(per_tensor.get_layer("dense").kernel.numpy(),
                                  kernel / np.float32(127.5 / 200.0))


def test_no_samples_warns_and_uses_random_integers_of_the_input_dtype():
    model = _conv_relu_conv()
    with pytest.warns(UserWarning, match="random inputs of dtype int8"):
        qmodel = quantize(model, qparams=QuantizationParams(input_dtype="int8"), num_samples=8)
    # int8 inputs (signed) reach about -128: the first conv sees negative and positive values
    assert qmodel.get_layer("relu1").output_scale.numpy().min() > 0
