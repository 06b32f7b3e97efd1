"""Akida 2.0 LUT activations end to end: quantized Keras and akida_core give identical integers for
every LUT activation kind after every neural kind (conversion-v2.md §3 "LUT", §6 "LUT (Conv >
gelu) 1280/1280"); Dense > LUT is refused as MetaTF does; a LUT model survives .fbz."""
import keras
import numpy as np
import pytest

import akida_core
from cnn2snn import ConversionError, convert
from quantizeml.models import QuantizationParams, quantize

from ..quantizeml.v2_models import images
from .test_v2_conversion import assert_exact

#: One model per Keras entry point ("silu" and "hard_swish" name the same functions as "swish" and
#: "hard_silu": tests/quantizeml/test_v2_lut.py checks their tables are equal).
KINDS = {
    "gelu": lambda name: keras.layers.Activation("gelu", name=name),
    "swish": lambda name: keras.layers.Activation("swish", name=name),
    "hard_silu": lambda name: keras.layers.Activation("hard_silu", name=name),
    "leaky_relu": lambda name: keras.layers.Activation("leaky_relu", name=name),
    "LeakyReLU": lambda name: keras.layers.LeakyReLU(0.1, name=name),
    "PReLU": lambda name: keras.layers.PReLU(
        alpha_initializer=keras.initializers.Constant(0.15), name=name),
}


def lut_model(make_activation, seed=0):
    """InputConv2D > LUT, Conv2D > MaxPool > LUT, DepthwiseConv2D > LUT, Conv2DTranspose > LUT,
    Conv2D > LUT > GAP, Dense."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255)(inp)
    x = keras.layers.Conv2D(6, 3, padding="same", name="conv0")(x)
    x = make_activation("act0")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv1")(x)
    x = keras.layers.MaxPooling2D(padding="same", name="pool")(x)
    x = make_activation("act1")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = make_activation("act2")(x)
    x = keras.layers.Conv2DTranspose(6, 4, strides=2, padding="same", name="up")(x)
    x = make_activation("act3")(x)
    x = keras.layers.Conv2D(8, 1, name="conv2")(x)
    x = make_activation("act4")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(4, name="dense")(x)
    return keras.Model(inp, x)


def _inputs():
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (16, 8, 8, 3)).astype(np.float32)
    return np.concatenate([images(16, size=8, seed=1), noise])


@pytest.mark.parametrize("per_tensor", [False, True], ids=["per-axis", "per-tensor"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_lut_blocks_are_bit_exact(kind, per_tensor):
    model = lut_model(KINDS[kind])
    # calibrated on dimmed images: the test inputs also drive the LUT index past ±1024 (clipped)
    calibration = np.round(images(16, size=8) * 0.5)
    qmodel = quantize(model, qparams=QuantizationParams(per_tensor_activations=per_tensor),
                      samples=calibration)
    akida_model = assert_exact(qmodel, _inputs())
    layers = [layer for layer in akida_model.layers if "lut_values" in layer.variables.names]
    assert [layer.layer_type.name for layer in layers] == \
        ["InputConv2D", "Conv2D", "DepthwiseConv2D", "Conv2DTranspose", "Conv2D"]
    for layer in layers:
        assert layer.parameters.activation == akida_core.ActivationType.LUT
        assert np.abs(layer.variables["lut_values"]).max() == 8191
    assert _clipped_indices(qmodel, _inputs()) > 0


def _clipped_indices(qmodel, x):
    """How many LUT indices of the Keras model fall outside −1024..1023 on ``x``."""
    luts = [layer for layer in qmodel.layers if hasattr(layer, "lut_values")]
    sums = keras.Model(qmodel.inputs, [layer.input for layer in luts]).predict(x, verbose=0)
    count = 0
    for layer, values in zip(luts, sums):
        scaled = np.clip(values * layer.activation_scale.numpy(), -2.0**31, 2.0**31 - 1)
        index = np.floor(scaled * 2.0 ** layer.activation_shift.numpy() + 0.5)
        count += int(np.sum((index < -1024) | (index > 1023)))
    return count


@pytest.mark.parametrize("fused", [False, True], ids=["Activation", "Dense(activation)"])
def test_dense_gelu_is_refused_as_metatf_does(fused):
    keras.utils.set_random_seed(0)
    inp = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(8, activation="gelu" if fused else None, name="dense")(x)
    if not fused:
        x = keras.layers.Activation("gelu", name="gelu")(x)
    x = keras.layers.Dense(2, name="head")(x)
    qmodel = quantize(keras.Model(inp, x), qparams=QuantizationParams(),
                      samples=images(8, size=4))
    with pytest.raises(ConversionError, match="Dense1D takes no LUT activation") as err:
        convert(qmodel)
    assert [issue.rule for issue in err.value.issues] == ["dense_lut"]
    assert "Invalid block found" in str(err.value) and "Hint" in str(err.value)


def test_converted_lut_model_round_trips_through_fbz(tmp_path):
    qmodel = quantize(lut_model(KINDS["gelu"]), qparams=QuantizationParams(),
                      samples=images(16, size=8))
    akida_model = convert(qmodel)
    x = _inputs().astype(np.uint8)
    path = tmp_path / "lut.fbz"
    akida_model.save(str(path))
    loaded = akida_core.Model(str(path))
    for ours, theirs in zip(akida_model.layers, loaded.layers):
        assert vars(ours.params) == vars(theirs.params)
        for name in ours.variables.names:
            np.testing.assert_array_equal(ours.variables[name], theirs.variables[name])
    np.testing.assert_array_equal(loaded.forward(x), akida_model.forward(x))
