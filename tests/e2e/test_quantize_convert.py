"""Float Keras model -> quantizeml.quantize -> cnn2snn.convert: bit-exact on random and digits
inputs, for the float-only features (BatchNormalization before/after pooling, Rescaling input,
Dropout, final Softmax) that quantize() folds away."""
import numpy as np
import pytest
from keras import layers as L

import cnn2snn

from ..cnn2snn.models import seq
from .test_parity import digits_like

pytestmark = pytest.mark.akida_version("v1")  # Akida 1.0 flows; the default is Akida 2.0

quantize_module = pytest.importorskip("quantizeml.models")
if not hasattr(quantize_module, "quantize"):  # pragma: no cover - quantizeml not landed yet
    pytest.skip("quantizeml.models.quantize is not available", allow_module_level=True)
from quantizeml import Akida1QuantizationParams  # noqa: E402


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for w in layer.weights:
            if "moving_variance" in w.path or "gamma" in w.path:
                w.assign(rng.uniform(0.5, 1.5, w.shape))
            else:
                w.assign(rng.normal(0.0, 0.5, w.shape))
    return model


FLOAT_MODELS = {
    "rescaling-bn-before-and-after-pool": (lambda: seq(
        (8, 8, 1), L.Rescaling(1 / 255.0), L.Conv2D(4, 3, padding="same"), L.BatchNormalization(),
        L.MaxPooling2D(), L.BatchNormalization(), L.ReLU(6.0), L.Dropout(0.2),
        L.SeparableConv2D(6, 3, padding="same"), L.BatchNormalization(), L.ReLU(6.0),
        L.Flatten(), L.Dense(3), L.Softmax()), Akida1QuantizationParams(), 8),
    "gap-2bit": (lambda: seq(
        (8, 8, 3), L.Conv2D(8, 3, strides=2, padding="same"), L.ReLU(6.0),
        L.Conv2D(8, 3, padding="same"), L.BatchNormalization(), L.GlobalAveragePooling2D(),
        L.ReLU(6.0), L.Dense(4)), Akida1QuantizationParams(weight_bits=2, activation_bits=2), 8),
    "fused-relu6-softmax": (lambda: seq(
        (8, 8, 3), L.Conv2D(4, 3, padding="same", activation="relu6"), L.MaxPooling2D(),
        L.SeparableConv2D(6, 3, padding="same", activation="relu6"), L.Flatten(),
        L.Dense(3, activation="softmax")), Akida1QuantizationParams(), 8),
    "inputdata-dense": (lambda: seq(
        (6, 6, 2), L.Flatten(), L.Dense(8), L.ReLU(6.0), L.Dense(3)),
        Akida1QuantizationParams(output_bits=4), 4),
    # MetaTF's AkidaNet head: GAP > BN > ReLU > Reshape(1,1,C) > Dropout > Conv 1x1 > softmax >
    # Reshape((classes,)): the trailing softmax and size-1 reshape only lay out the output.
    "metatf-head-softmax-reshape": (lambda: seq(
        (8, 8, 3), L.Rescaling(1 / 127.5, -1), L.Conv2D(8, 3, strides=2, padding="same"),
        L.BatchNormalization(), L.ReLU(6.0), L.SeparableConv2D(8, 3, padding="same"),
        L.GlobalAveragePooling2D(), L.BatchNormalization(), L.ReLU(6.0), L.Reshape((1, 1, 8)),
        L.Dropout(0.1), L.Conv2D(5, 1), L.Activation("softmax"), L.Reshape((5,))),
        Akida1QuantizationParams(), 8),
    "final-flatten-of-1x1": (lambda: seq(
        (8, 8, 3), L.Conv2D(8, 3, padding="same"), L.ReLU(6.0), L.Conv2D(6, 3, padding="same"),
        L.GlobalAveragePooling2D(keepdims=True), L.ReLU(6.0), L.Conv2D(4, 1), L.Flatten(),
        L.Softmax()), Akida1QuantizationParams(), 8),
    # Activation("relu6") is ReLU(6); tf-keras writes BatchNormalization(axis=[1]) after a Dense.
    "relu6-activation-bn-axis-1": (lambda: seq(
        (8, 8, 1), L.Conv2D(4, 3, padding="same"), L.Activation("relu6"), L.Flatten(),
        L.Dense(8), L.BatchNormalization(axis=1), L.ReLU(6.0), L.Dense(3)),
        Akida1QuantizationParams(), 8),
    # keras.applications-style explicit padding: ZeroPadding2D > Valid conv == 'same' conv
    "zero-padding-folded": (lambda: seq(
        (16, 16, 3), L.Rescaling(1 / 255.0), L.ZeroPadding2D(1), L.Conv2D(8, 3), L.ReLU(6.0),
        L.ZeroPadding2D(((0, 1), (0, 1))), L.Conv2D(8, 3, strides=2), L.BatchNormalization(),
        L.ReLU(6.0), L.ZeroPadding2D(1), L.SeparableConv2D(8, 3), L.ReLU(6.0), L.Flatten(),
        L.Dense(3)), Akida1QuantizationParams(), 8),
    "flat-input": (lambda: seq(
        (20,), L.Dense(8), L.BatchNormalization(axis=1), L.ReLU(6.0), L.Dense(3)),
        Akida1QuantizationParams(output_bits=4), 4),
}


@pytest.mark.parametrize("name", sorted(FLOAT_MODELS))
def test_quantize_then_convert_is_exact(name):
    build, qparams, bits = FLOAT_MODELS[name]
    model = _randomize(build(), len(name))
    # What the checker accepts on the float model, quantize + convert must accept too.
    assert cnn2snn.check_model_compatibility(model) == []
    shape = tuple(model.inputs[0].shape[1:])
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (32, *shape)).astype(np.float32)
    qmodel = quantize_module.quantize(model, qparams=qparams, samples=x, verbose=0)
    # bits < 8: 8-bit data re-quantized to a 4-bit InputData, an explicit opt-in (issue 13).
    akida_model = cnn2snn.convert(qmodel, allow_input_narrowing=bits < 8)
    assert_act_steps_on_grid(akida_model)
    for data in (x[:16], digits_like(shape, 8).astype(np.float32)):
        x_int = cnn2snn.akida_inputs(qmodel, data)
        assert x_int.dtype == np.uint8 and int(x_int.max()) < 2 ** bits
        assert_parity_float(qmodel, akida_model, data, x_int)


def assert_act_steps_on_grid(akida_model):
    """Every act_step is a multiple of 1/16 (Akida's register: 4 fractional bits), >= 1/16."""
    for layer in akida_model.layers:
        if "act_step" in layer.variables.names:
            step = layer.variables["act_step"].astype(np.float64)
            assert np.all(step * 16 == np.floor(step * 16)) and step.min() >= 1 / 16, layer.name


def assert_parity_float(qmodel, akida_model, x_float, x_int):
    """Parity where the Keras model takes float inputs and Akida their quantized integers."""
    from .qbuild import integer_model
    keras_int = np.asarray(integer_model(qmodel)(x_float), np.float64)
    forward = akida_model.forward(x_int).astype(np.float64).reshape(keras_int.shape)
    last = akida_model.layers[-1]
    if not last.params.activation:
        keras_int = keras_int + last.variables["threshold"].astype(np.float64)
        out = np.asarray(qmodel(x_float))
        np.testing.assert_array_equal(akida_model.predict(x_int).reshape(out.shape), out)
    assert int(np.sum(forward != keras_int)) == 0


def test_blocks_beyond_the_registers_are_fitted_exactly():
    """A global average pooling over 256 positions sums potentials past the 20-bit CNP threshold
    register: quantize() coarsens that layer's weight grid (with a warning) instead of leaving
    a model that cannot convert, and conversion stays bit-exact."""
    from quantizeml.registers import register_excess
    from quantizeml.transforms import QuantizationWarning
    from bench.convert import randomize  # N(0, 1/fan_in) weights, BN statistics near 1 / 0
    model = randomize(seq(
        (16, 16, 1), L.Conv2D(32, 3, padding="same"), L.BatchNormalization(), L.ReLU(6.0),
        L.SeparableConv2D(32, 3, padding="same"), L.BatchNormalization(),
        L.GlobalAveragePooling2D(), L.ReLU(6.0), L.Dense(4)), 1)
    x = np.random.default_rng(0).integers(0, 256, (32, 16, 16, 1)).astype(np.float32)
    with pytest.warns(QuantizationWarning, match="'separable_conv2d.*coarser.*registers"):
        qmodel = quantize_module.quantize(model, samples=x, verbose=0)
    from quantizeml.export import export_blocks
    for params in export_blocks(qmodel)["blocks"]:
        assert np.all(register_excess(params, params["is_input_layer"]) < 1.0)
    akida_model = cnn2snn.convert(qmodel)
    assert_parity_float(qmodel, akida_model, x, cnn2snn.akida_inputs(qmodel, x))


def test_register_excess_matches_the_converter_limits():
    from quantizeml.registers import register_excess
    fits = {"threshold": np.array([2 ** 19 - 1, -2 ** 19 + 1]), "act_step": np.array([65535.9, 1.0])}
    assert np.all(register_excess(fits, False) < 1.0)
    over = {"threshold": np.array([0, 2 ** 20]), "act_step": np.array([2.0 ** 16, 1.0])}
    assert np.all(register_excess(over, False) >= 1.0)
    assert np.all(register_excess(over, True) < 1.0)  # the HRC's registers are wider
