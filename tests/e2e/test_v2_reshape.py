"""Akida 2.0 Reshape: a relabelling Reshape ((C,) <-> (1, 1, C)) is dropped at conversion, a
flattening one joins its Dense (Dense1D), others are refused at convert; the quantized Keras
model equals akida_core bit for bit (conversion-v2.md §4)."""
import keras
import numpy as np
import pytest

from cnn2snn import ConversionError, convert
from quantizeml.models import QuantizationParams, quantize
from quantizeml.v2 import layers as ql

from ..quantizeml.v2_models import images
from .test_v2_conversion import assert_exact

L = keras.layers
SCHEMES = {"per-axis": QuantizationParams(),
           "per-tensor": QuantizationParams(per_tensor_activations=True)}


def _model(*layers, shape=(8, 8, 3)):
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape)
    x = L.ReLU()(L.Conv2D(8, 3, padding="same", name="stem")(inp))
    for layer in layers:
        x = layer(x)
    return keras.Model(inp, x)


def _kinds(akida_model):
    return [layer.layer_type.name for layer in akida_model.layers]


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_gap_reshape_pointwise_conv_head_is_exact(scheme):
    # MobileNet-style head: the Reshape is no Akida layer (GAP already gives (1, 1, C))
    model = _model(L.Conv2D(8, 3, padding="same"), L.ReLU(), L.GlobalAveragePooling2D(),
                   L.Reshape((1, 1, 8), name="to_map"), L.Conv2D(6, 1), L.ReLU(),
                   L.Flatten(), L.Dense(4))
    x = images(32, size=8)
    qmodel = quantize(model, qparams=SCHEMES[scheme], samples=x)
    assert isinstance(qmodel.get_layer("to_map"), ql.QuantizedReshape)
    akida_model = assert_exact(qmodel, x)
    assert _kinds(akida_model) == ["InputConv2D", "Conv2D", "Conv2D", "Dense1D"]
    assert "to_map" not in [layer.name for layer in akida_model.layers]


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_reshape_minus_one_into_dense_is_a_flatten(scheme):
    model = _model(L.Conv2D(6, 3, strides=2, padding="same", name="conv"), L.ReLU(),
                   L.Reshape((-1,), name="flat"), L.Dense(4, name="dense"))
    conv = model.get_layer("conv")
    kernel, bias = conv.get_weights()
    # channel ranges 1x .. 32x apart: per-axis fractional bits differ, the Dense1D aligns them
    conv.set_weights([kernel * 2.0 ** np.arange(6), bias * 2.0 ** np.arange(6)])
    x = images(32, size=8)
    qmodel = quantize(model, qparams=SCHEMES[scheme], samples=x)
    akida_model = assert_exact(qmodel, x)
    assert _kinds(akida_model) == ["InputConv2D", "Conv2D", "Dense1D"]
    dense = akida_model.get_layer("dense")
    assert dense.variables["input_shift"].shape == (4 * 4 * 6,)
    shifts = dense.variables["input_shift"].reshape(16, 6)
    assert np.all(shifts == shifts[0])  # one shift per channel, repeated per pixel (row-major)
    assert np.any(shifts > 0) == (scheme == "per-axis")


def test_dense_reshape_dense_and_a_final_reshape_are_exact():
    model = _model(L.Conv2D(8, 3, strides=2, padding="same"), L.ReLU(), L.Flatten(),
                   L.Dense(10, name="hidden"), L.ReLU(), L.Reshape((1, 1, 10)),
                   L.Dense(4, name="logits"), L.Reshape((4,), name="out"))
    x = images(32, size=8)
    qmodel = quantize(model, qparams=QuantizationParams(), samples=x)
    # looking back through the final Reshape, the last Dense keeps its raw 28-bit sums (S = 1,
    # shift 0), as MetaTF's last layer has no output quantizer
    logits = qmodel.get_layer("logits")
    assert logits.output_bits == 28
    assert np.all(logits.output_scale.numpy() == 1) and not np.any(logits.output_shift.numpy())
    assert qmodel.get_layer("out").output.shape[1:] == (4,)
    akida_model = assert_exact(qmodel, x)
    assert _kinds(akida_model) == ["InputConv2D", "Conv2D", "Dense1D", "Dense1D"]


def test_a_reshape_mixing_axes_is_refused_at_convert_with_the_shapes_and_a_fix():
    model = _model(L.Reshape((16, 16, 2), name="mix"), L.Conv2D(4, 3, padding="same"))
    x = images(16, size=8)
    for qparams in SCHEMES.values():
        # quantize works (the stem is quantized per tensor, so the reshape relabels in Keras)
        qmodel = quantize(model, qparams=qparams, samples=x)
        stem = qmodel.get_layer(model.layers[2].name).frozen_info.frac
        assert np.all(stem == stem[0])
        with pytest.raises(ConversionError) as info:
            convert(qmodel)
        (issue,) = info.value.issues
        assert issue.rule == "reshape"
        message = str(info.value)
        for fragment in ("'mix' (Reshape)", "(8, 8, 8) -> (16, 16, 2)", "no reshape layer",
                         "(C,) <-> (1, 1, C)", "[through a Flatten]", "Flatten > Dense"):
            assert fragment in message, message


def test_an_input_reshape_is_refused_with_the_host_reshape_hint():
    # keyword-spotting style: (time, features) -> (time, features, 1); the per-axis input
    # quantizer becomes per-tensor so that quantization works
    keras.utils.set_random_seed(0)
    inp = keras.Input((10, 6))
    x = L.Reshape((10, 6, 1), name="to_image")(inp)
    x = L.ReLU()(L.Conv2D(4, 3, padding="same")(x))
    model = keras.Model(inp, L.Dense(3)(L.Flatten()(x)))
    samples = np.random.default_rng(0).normal(0, 1, (16, 10, 6)).astype(np.float32)
    qmodel = quantize(model, qparams=QuantizationParams(input_dtype="int8"), samples=samples)
    frac = qmodel.get_layer("input_quantizer").frac_bits.numpy()
    assert np.all(frac == frac[0])
    with pytest.raises(ConversionError, match=r"'to_image'.*\(10, 6\) -> \(10, 6, 1\)(.|\n)*"
                       r"give the model the input shape \(10, 6, 1\)"):
        convert(qmodel)


def test_a_reshape_into_a_non_flat_dense_is_refused():
    model = _model(L.Reshape((8, 64), name="rows"), L.Dense(4, name="bad"))
    qmodel = quantize(model, qparams=QuantizationParams(), samples=images(16, size=8))
    with pytest.raises(ConversionError, match=r"'bad': input shape \(8, 64\)"):
        convert(qmodel)


def test_a_quantized_reshape_survives_a_keras_save(tmp_path):
    model = _model(L.GlobalAveragePooling2D(), L.Reshape((1, 1, 8), name="to_map"),
                   L.Conv2D(4, 1))
    x = images(8, size=8)
    qmodel = quantize(model, qparams=QuantizationParams(), samples=x)
    path = tmp_path / "reshape.keras"
    qmodel.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.get_layer("to_map"), ql.QuantizedReshape)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), qmodel.predict(x, verbose=0))
