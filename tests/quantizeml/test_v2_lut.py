"""LUT activations in the Akida 2.0 scheme: the table, the twin's integers, sanitize, QAT and
saving."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from quantizeml.errors import QuantizationConfigError, QuantizationError
from quantizeml.transforms import QuantizationWarning
from quantizeml.models import QuantizationParams, quantize
from quantizeml.v2 import layers as ql
from quantizeml.v2.lut import LUT_ACTIVATIONS, float_activation, lut_table

from .v2_models import images


def test_table_of_a_leaky_relu_by_hand():
    # slope 0.25, f = 10: act(i·2**-10) = i·2**-10 (i >= 0) or i·2**-12; the largest |act| is
    # 1023·2**-10 (the top index), so s_lut = 1023·2**-10 / 8191 and entry = rne(i·8191/1023).
    table, unit = lut_table(float_activation("leaky_relu", 0.25), 10)
    assert unit == pytest.approx(1023 * 2.0**-10 / 8191)
    assert table[1024 + 1023] == 8191 and table[1024] == 0
    assert table[1024 + 1] == np.round(8191 / 1023)  # 8.007 -> 8
    assert table[0] == np.round(-1024 / 4 * 8191 / 1023)  # -2049.75... -> -2050
    assert table.shape == (2048,) and np.all(table == np.round(table))


@pytest.mark.parametrize("name", sorted(LUT_ACTIVATIONS))
def test_tables_fit_14_bits_and_reach_the_top(name):
    for frac in (-3, 0, 7, 12):
        table, _ = lut_table(float_activation(name), frac)
        assert np.abs(table).max() == 8191, (name, frac)


def test_aliases_sample_the_same_function():
    for alias, name in (("silu", "swish"), ("hard_swish", "hard_silu")):
        np.testing.assert_array_equal(lut_table(float_activation(alias), 8)[0],
                                      lut_table(float_activation(name), 8)[0])
    # Keras' Activation('leaky_relu') slope is 0.2; the LeakyReLU layer's default is 0.3
    assert lut_table(float_activation("leaky_relu"), 10)[0][0] == np.round(-0.2 * 1024 / 1023 *
                                                                           8191)


def test_twin_gives_the_runtime_worked_example():
    # akida2-layers.md §4 (LUT): activation_shift -2, scale 2, lut[i] = 3·(i − 1024):
    # x = -3 -> v = R(-6, -2) = -1 -> -3; x = -2 -> -3; x = 127 -> v = R(254, -2) = 64 -> 192.
    layer = ql.QuantizedLeakyReLU(0.3, output_bits=16)
    layer.build((None, 1))
    layer.set_lut([2], [-2], 0, 3 * np.arange(-1024, 1024), 1.0)
    layer.set_output_quantizer([1], [0])
    out = layer(np.array([[-3.0], [-2.0], [127.0]]))
    assert out.numpy().ravel().tolist() == [-3, -3, 192]
    # the index clips at -1024 / 1023 (never wraps)
    assert layer(np.array([[1e6], [-1e6]])).numpy().ravel().tolist() == [3 * 1023, -3 * 1024]


def _conv_model(activation_layer, fused=None):
    keras.utils.set_random_seed(1)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255)(inp)
    x = keras.layers.Conv2D(6, 3, padding="same", activation=fused, name="conv")(x)
    if activation_layer is not None:
        x = activation_layer(x)
    x = keras.layers.Conv2D(4, 1, name="head")(x)
    return keras.Model(inp, x)


def test_fused_gelu_is_split_and_calibrated_close_to_float():
    model = _conv_model(None, fused="gelu")
    x = images(32, size=8)
    qmodel = quantize(model, qparams=QuantizationParams(), samples=x)
    act = qmodel.get_layer("conv_gelu")
    assert isinstance(act, ql.QuantizedActivation) and act.output_bits == 8
    assert qmodel.get_layer("conv").output_bits is None  # the 11-bit index does not end the block
    float_act = keras.Model(model.inputs, model.get_layer("conv").output).predict(x, verbose=0)
    ints = keras.Model(qmodel.inputs, act.output).predict(x, verbose=0)
    info = act.frozen_info
    error = np.abs(ints * info.scale * 2.0**-info.frac - float_act).max()
    assert error < 0.02 * np.abs(float_act).max()
    assert np.abs(act.lut_values.numpy()).max() == 8191


def test_prelu_with_one_alpha_becomes_a_leaky_relu_and_differing_alphas_are_refused():
    x = images(8, size=8)
    shared = keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(0.2), name="prelu")
    qmodel = quantize(_conv_model(shared), qparams=QuantizationParams(), samples=x)
    layer = qmodel.get_layer("prelu")
    assert isinstance(layer, ql.QuantizedLeakyReLU)
    assert layer.negative_slope == pytest.approx(0.2)
    per_channel = keras.layers.PReLU(shared_axes=[1, 2], name="prelu")
    model = _conv_model(per_channel)
    per_channel.set_weights([np.array([[[0.1, 0.2, 0.1, 0.1, 0.1, 0.3]]], np.float32)])
    with pytest.raises(QuantizationError, match=r"'prelu' \(PReLU\): alpha ranges over "
                       r"\[0.1, 0.3\].*one LUT shared by all channels.*Hint"):
        quantize(model, qparams=QuantizationParams(), samples=x)


def test_unknown_activations_stop_quantization_naming_the_quantized_ones():
    # as MetaTF: a Dequantizer before the first unquantizable layer, the rest in float
    model = _conv_model(keras.layers.Activation("tanh", name="tanh"))
    with pytest.warns(QuantizationWarning, match="'tanh'.*quantized: relu, relu6, linear, gelu"):
        qmodel = quantize(model, qparams=QuantizationParams(), samples=images(4, size=8))
    names = [layer.name for layer in qmodel.layers]
    assert names.index("dequantizer") < names.index("tanh")
    with pytest.raises(QuantizationConfigError, match="'act': activation='tanh'"):
        ql.QuantizedActivation("tanh", name="act")


@pytest.fixture(scope="module")
def swish_model():
    model = _conv_model(keras.layers.Activation("swish", name="swish"))
    x = images(32, size=8)
    return model, x, quantize(model, qparams=QuantizationParams(), samples=x)


def test_quantization_aware_training_steps_through_the_table(swish_model):
    model, x, qmodel = swish_model
    before = qmodel.get_layer("conv").kernel.numpy().copy()
    table = qmodel.get_layer("swish").lut_values.numpy().copy()
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(qmodel(x[:8], training=True) - model(x[:8])))
    kernel = qmodel.get_layer("conv").kernel
    grad = tape.gradient(loss, kernel)
    # the first conv reaches the loss only through the LUT: the float swish's slope carries it
    assert grad is not None and np.all(np.isfinite(grad.numpy())) and np.any(grad.numpy() != 0)
    qmodel.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    history = qmodel.fit(x, model.predict(x, verbose=0), epochs=1, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert not np.array_equal(before, qmodel.get_layer("conv").kernel.numpy())
    np.testing.assert_array_equal(table, qmodel.get_layer("swish").lut_values.numpy())


def test_lut_model_saves_and_loads(swish_model, tmp_path):
    _, x, qmodel = swish_model
    path = tmp_path / "lut.keras"
    qmodel.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.get_layer("swish"), ql.QuantizedActivation)
    np.testing.assert_array_equal(loaded.predict(x[:8], verbose=0),
                                  qmodel.predict(x[:8], verbose=0))
