"""quantize() with the Akida 2.0 scheme: functional graphs, calibration, QAT, generation choice."""
import keras
import numpy as np
import pytest

from quantizeml import Akida1QuantizationParams as Akida1Params
from quantizeml.errors import QuantizationConfigError, QuantizationError
from quantizeml.models import QuantizationParams, quantize
from quantizeml.v2 import layers as ql

from .v2_models import branches_concat, decoder, images, residual_separable


@pytest.fixture(scope="module")
def residual():
    model = residual_separable()
    x = images(64)
    return model, x, quantize(model, qparams=QuantizationParams(), samples=x)


def _block_outputs(qmodel, x):
    ends = [layer for layer in qmodel.layers if getattr(layer, "output_bits", None) is not None
            and layer is not qmodel.layers[-2]]
    probe = keras.Model(qmodel.inputs, [layer.output for layer in ends])
    return ends, probe.predict(x, verbose=0)


def test_residual_separable_quantizes_close_to_float(residual):
    model, x, qmodel = residual
    names = [layer.name for layer in qmodel.layers]
    # SeparableConv2D split in depthwise + pointwise; Add > ReLU gets an identity conv
    assert "separable_conv2d_dw" in names and "separable_conv2d" in names
    assert "add_identity_conv" in names
    assert isinstance(qmodel.get_layer("separable_conv2d_dw"), ql.QuantizedDepthwiseConv2D)
    float_out, q_out = model.predict(x, verbose=0), qmodel.predict(x, verbose=0)
    error = np.abs(float_out - q_out).max() / np.abs(float_out).max()
    assert error < 0.1
    assert (float_out.argmax(1) == q_out.argmax(1)).mean() >= 0.9


def test_block_outputs_are_integers_in_their_range(residual):
    _, x, qmodel = residual
    ends, outputs = _block_outputs(qmodel, x[:8])
    for layer, out in zip(ends, outputs):
        assert np.all(out == np.round(out)), layer.name
        low = -(2 ** (layer.output_bits - 1)) if layer.output_signed else 0
        high = 2 ** (layer.output_bits - (1 if layer.output_signed else 0)) - 1
        assert out.min() >= low and out.max() <= high, layer.name
        assert out.max() > 0, layer.name  # calibrated: the range is used


def test_save_and_load_round_trip(residual, tmp_path):
    _, x, qmodel = residual
    path = tmp_path / "q.keras"
    qmodel.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x[:8], verbose=0),
                                  qmodel.predict(x[:8], verbose=0))


def test_quantization_aware_training_moves_weights(residual):
    model, x, _ = residual
    qmodel = quantize(model, qparams=QuantizationParams(weight_bits=4, activation_bits=4),
                      samples=x)
    targets = model.predict(x, verbose=0)
    before = qmodel.get_layer("conv2d").kernel.numpy().copy()
    qmodel.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    history = qmodel.fit(x, targets, epochs=2, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert not np.array_equal(before, qmodel.get_layer("conv2d").kernel.numpy())
    ends, outputs = _block_outputs(qmodel, x[:4])
    assert all(np.all(out == np.round(out)) for out in outputs)


def test_branches_concat_and_decoder_quantize():
    model = branches_concat()
    x = images(32, size=12, channels=1)
    qmodel = quantize(model, qparams=QuantizationParams(per_tensor_activations=True), samples=x)
    assert isinstance(qmodel.get_layer("concatenate"), ql.QuantizedConcatenate)
    out = qmodel.predict(x, verbose=0)
    ref = model.predict(x, verbose=0)
    assert np.abs(out - ref).max() / np.abs(ref).max() < 0.15
    model = decoder()
    x = np.random.default_rng(1).normal(0, 1, (16, 6, 6, 4)).astype(np.float32)
    qmodel = quantize(model, qparams=QuantizationParams(), samples=x)
    assert isinstance(qmodel.layers[1], ql.InputQuantizer)
    assert qmodel.predict(x, verbose=0).shape == (16, 24, 24, 2)


def test_four_bit_gap_outputs_are_unsigned_and_16_bit_scales_fit_8_bits(residual):
    # conversion-v2.md §6 #2 and #5: Akida's 4-bit outputs are unsigned [0, 15]; the output scale
    # is always 8 bits, also for last_output_bits=16.
    model, x, _ = residual
    qmodel = quantize(model, qparams=QuantizationParams(activation_bits=4, last_output_bits=16),
                      samples=x)
    gap = qmodel.get_layer("global_average_pooling2d")
    assert gap.output_bits == 4 and not gap.output_signed
    out = keras.Model(qmodel.inputs, gap.output).predict(x, verbose=0)
    assert out.min() >= 0 and out.max() <= 15 and out.max() > 0
    dense = qmodel.get_layer("dense")
    assert dense.output_bits == 16 and dense.output_scale.numpy().max() <= 255


def test_generation_selects_the_scheme(residual, monkeypatch):
    model, x, _ = residual
    monkeypatch.setenv("CNN2SNN_TARGET_AKIDA_VERSION", "v1")
    # MetaTF's Akida 1.0 tutorial settings become the Akida 1.0 recipe (output_bits 8 ignored)
    chain = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, name="c"),
                              keras.layers.ReLU(), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    v1 = quantize(chain, qparams=QuantizationParams(input_weight_bits=8, weight_bits=4,
                                                    activation_bits=4), samples=x[:8], verbose=0)
    assert not isinstance(v1.get_layer("c"), ql.QuantizedConv2D)
    assert v1.get_layer("c").weight_bits == 8
    # 8-bit activations have no Akida 1.0 meaning: quantized anyway (Akida 2.0 scheme), warned
    with pytest.warns(Warning, match="set_akida_version"):
        eight = quantize(model, qparams=QuantizationParams(8, False, 8, 8), samples=x[:8])
    assert isinstance(eight.get_layer("conv2d"), ql.QuantizedConv2D)
    monkeypatch.delenv("CNN2SNN_TARGET_AKIDA_VERSION")
    v2 = quantize(model, qparams=QuantizationParams(weight_bits=4), samples=x[:8])
    assert isinstance(v2.get_layer("conv2d"), ql.QuantizedConv2D)
    with pytest.raises(QuantizationConfigError, match="already quantized"):
        quantize(v2, qparams=QuantizationParams())


def test_quantization_stops_before_the_first_unquantizable_layer():
    # As MetaTF: a Dequantizer before the AveragePooling2D, the rest in float, one warning.
    from quantizeml.transforms import QuantizationWarning
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = keras.layers.AveragePooling2D(2, name="avg")(x)
    x = keras.layers.UpSampling2D(name="up")(x)
    model = keras.Model(inp, keras.layers.Conv2D(2, 1, name="head")(x))
    x = images(8, size=8)
    with pytest.warns(QuantizationWarning, match=r"'avg' \(AveragePooling2D\).*3 layer\(s\)"):
        qmodel = quantize(model, qparams=QuantizationParams(), samples=x)
    names = [layer.name for layer in qmodel.layers]
    assert names[-4:] == ["dequantizer", "avg", "up", "head"]
    assert type(qmodel.get_layer("head")) is keras.layers.Conv2D  # float, weights kept
    np.testing.assert_array_equal(qmodel.get_layer("head").get_weights()[0],
                                  model.get_layer("head").get_weights()[0])
    ref, out = model.predict(x, verbose=0), qmodel.predict(x, verbose=0)
    assert np.abs(ref - out).max() < 0.1 * np.abs(ref).max()
    inp = keras.Input((8, 8, 3))
    first = keras.Model(inp, keras.layers.AveragePooling2D(2, name="avg")(inp))
    with pytest.raises(QuantizationError, match="'avg'.*nothing would be quantized"):
        quantize(first, qparams=QuantizationParams(), samples=x)
    inp = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="a")(inp)
    z = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="b")(y)
    two = keras.Model(inp, keras.layers.Multiply(name="mul")([y, z]))
    with pytest.raises(QuantizationError, match="'mul'.*2 tensors"):
        quantize(two, qparams=QuantizationParams(), samples=x)
    assert Akida1Params().activation_bits == 4  # the Akida 1.0 recipe is unchanged


def test_batchnorm_after_a_dropout_still_folds():
    # the Dropout is dropped before folding: no float tail for Conv > Dropout > BN
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inp)
    x = keras.layers.BatchNormalization()(keras.layers.Dropout(0.2)(x))
    model = keras.Model(inp, keras.layers.Conv2D(2, 1)(keras.layers.ReLU()(x)))
    qmodel = quantize(model, qparams=QuantizationParams(), samples=images(8, size=8))
    assert isinstance(qmodel.layers[-1], ql.Dequantizer)


_SOFTMAX_HEADS = {
    "Softmax": lambda: [keras.layers.Dense(5, name="head"), keras.layers.Softmax(name="sm")],
    "Activation": lambda: [keras.layers.Dense(5, name="head"),
                           keras.layers.Activation("softmax", name="sm")],
    "Dense(activation)": lambda: [keras.layers.Dense(5, activation="softmax", name="head")],
    "Softmax > Dropout > Reshape": lambda: [
        keras.layers.Dense(5, name="head"), keras.layers.Softmax(name="sm"),
        keras.layers.Dropout(0.2), keras.layers.Reshape((1, 5))],
}


@pytest.mark.parametrize("head", list(_SOFTMAX_HEADS))
def test_final_softmax_stays_in_float_after_the_dequantizer(head):
    # As MetaTF: Dequantizer > float softmax, so predict gives probabilities; no warning (the
    # quantized model computes what the float one does).
    import warnings
    from quantizeml.v2 import strip_float_tail
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Conv2D(4, 3, padding="same"), keras.layers.ReLU(),
                              keras.layers.Flatten()] + _SOFTMAX_HEADS[head]())
    x = images(16, size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        qmodel = quantize(model, qparams=QuantizationParams(), samples=x)
    names = [layer.name for layer in qmodel.layers]
    assert names.index("head") == names.index("dequantizer") - 1
    assert isinstance(qmodel.get_layer("head"), ql.QuantizedDense)
    assert qmodel.get_layer("head").get_config().get("activation") in (None, "linear")
    probabilities = qmodel.predict(x, verbose=0).reshape(len(x), 5)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    assert probabilities.min() >= 0
    scores = strip_float_tail(qmodel).predict(x, verbose=0)
    assert strip_float_tail(qmodel).layers[-1].name == "dequantizer"
    np.testing.assert_array_equal(probabilities.argmax(-1), scores.argmax(-1))
    np.testing.assert_allclose(probabilities, keras.ops.softmax(scores).numpy(), rtol=1e-5)
    reference = model.predict(x, verbose=0).reshape(len(x), 5)
    assert np.abs(reference - probabilities).max() < 0.1


def test_softmax_that_is_not_final_stops_quantization_with_a_warning():
    from quantizeml.transforms import QuantizationWarning
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, padding="same"),
                              keras.layers.Softmax(name="sm"), keras.layers.Conv2D(2, 1)])
    with pytest.warns(QuantizationWarning, match=r"'sm' \(Softmax\).*not quantized"):
        qmodel = quantize(model, qparams=QuantizationParams(), samples=images(8, size=8))
    assert [layer.name for layer in qmodel.layers][-3] == "dequantizer"


def test_a_lone_dense_softmax_reading_the_input_is_split():
    # the Dense is quantized (the model's only neural layer), its softmax stays in float
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((16,)),
                              keras.layers.Dense(4, activation="softmax", name="head")])
    x = np.random.default_rng(0).normal(size=(32, 16)).astype(np.float32)
    qmodel = quantize(model, qparams=QuantizationParams(), samples=x)
    assert [layer.name for layer in qmodel.layers][-3:] == ["head", "dequantizer",
                                                             "head_softmax"]
    np.testing.assert_allclose(qmodel.predict(x, verbose=0).sum(-1), 1.0, rtol=1e-5)
