"""quantize(): structure, transforms, whole-model exactness, overrides and errors."""

import keras
import numpy as np
import pytest

from quantizeml import Akida1QuantizationParams
from quantizeml.errors import (CalibrationError, QuantizationConfigError, QuantizationError)
from quantizeml.export import export_blocks
from quantizeml.ir import build_float_model, call_with_zero_init, spec_from_model
from quantizeml.layers import (Dequantizer, InputQuantizer, QuantizedConv2D, QuantizedReLU,
                               QuantizedRescaling)
from quantizeml.models import calibrate, dump_config, quantize
from quantizeml.transforms import sanitize

from .conftest import flatten_cnn, small_cnn
from .integer_reference import model_forward

# Akida 1.0 flows (the default is Akida 2.0)
pytestmark = [pytest.mark.akida_version("v1"),
              pytest.mark.filterwarnings("ignore::UserWarning")]


def _exact(qmodel, x, graph=False):
    spec = export_blocks(qmodel)
    x_int = qmodel.layers[1].numpy(x)
    ints, floats = model_forward(spec, x_int)
    np.testing.assert_array_equal(np.asarray(qmodel(x)), floats)  # eager
    if graph:
        np.testing.assert_array_equal(qmodel.predict(x, verbose=0, batch_size=7), floats)
    return spec, ints


def test_quantized_model_structure(images):
    qmodel = quantize(small_cnn(), samples=images, verbose=0)
    kinds = [type(lay).__name__ for lay in qmodel.layers[1:]]
    assert kinds == ["InputQuantizer", "QuantizedRescaling", "QuantizedConv2D",
                     "QuantizedMaxPool2D", "QuantizedReLU", "QuantizedSeparableConv2D",
                     "QuantizedReLU", "QuantizedConv2D", "QuantizedGlobalAveragePooling2D",
                     "QuantizedReLU", "QuantizedDense", "Dequantizer"]
    assert qmodel.get_layer("conv2d").weight_bits == 8  # input layer: input_weight_bits
    assert qmodel.get_layer("conv2d_1").weight_bits == 4
    assert qmodel.layers[1].bits == 8 and qmodel.layers[1].quantizer.scale == 1.0


def test_whole_model_equals_integer_reference(images):
    qmodel = quantize(small_cnn(), samples=images, verbose=0)
    spec, _ = _exact(qmodel, images, graph=True)
    assert [b["pool_type"] for b in spec["blocks"]] == ["max", "none", "global_average", "none"]
    assert spec["blocks"][0]["is_input_layer"] and not spec["blocks"][1]["is_input_layer"]


def test_quantized_close_to_float(images):
    model = small_cnn()
    qmodel = quantize(model, samples=images, verbose=0)
    f, q = model.predict(images, verbose=0), qmodel.predict(images, verbose=0)
    assert np.corrcoef(f.ravel(), q.ravel())[0, 1] > 0.95


def test_sanitized_float_model_matches_original(images):
    model = small_cnn()
    sanitized = sanitize(spec_from_model(model))
    assert [lay.class_name for lay in sanitized.layers].count("BatchNormalization") == 0
    assert "Dropout" not in [lay.class_name for lay in sanitized.layers]
    rebuilt = build_float_model(sanitized)
    np.testing.assert_allclose(rebuilt.predict(images, verbose=0),
                               model.predict(images, verbose=0), atol=1e-4)


def test_rebuilt_layers_keep_their_weights_and_initializers(images):
    # the kernels are created as zeros (their weights are set right after), but the layers'
    # configs still name their own initializers (Keras' defaults), for a clone or a save
    model = small_cnn()
    sanitized = sanitize(spec_from_model(model))
    rebuilt = build_float_model(sanitized)
    for layer_spec in sanitized.layers:
        layer = rebuilt.get_layer(layer_spec.name)
        for value, weight in zip(layer_spec.weights, layer.get_weights(), strict=True):
            np.testing.assert_array_equal(value, weight)
    assert rebuilt.get_layer("conv2d").get_config()["kernel_initializer"]["class_name"] == \
        "GlorotUniform"
    separable = rebuilt.get_layer("separable_conv2d").get_config()
    assert separable["depthwise_initializer"]["class_name"] == "GlorotUniform"
    qmodel = quantize(model, samples=images, verbose=0)
    assert qmodel.get_layer("dense").get_config()["kernel_initializer"]["class_name"] == \
        "GlorotUniform"


def test_an_initializer_comes_back_when_the_call_fails():
    layer = keras.layers.Dense(3)
    with pytest.raises(ValueError):
        call_with_zero_init(layer, keras.Input((2, 2, 2, 2, 2)).shape)  # not a tensor
    assert isinstance(layer.kernel_initializer, keras.initializers.GlorotUniform)


def test_relu_before_maxpool_is_swapped(images):
    layers = keras.layers
    model = keras.Sequential([keras.Input((12, 12, 1)), layers.Conv2D(4, 3), layers.ReLU(),
                              layers.MaxPooling2D(), layers.Flatten(), layers.Dense(3)])
    names = [lay.class_name for lay in sanitize(spec_from_model(model)).layers]
    assert names == ["Conv2D", "MaxPooling2D", "ReLU", "Flatten", "Dense"]
    qmodel = quantize(model, samples=images, verbose=0)
    _exact(qmodel, images)


def test_flatten_dense_with_offset_and_final_activation():
    x = np.random.default_rng(3).integers(0, 256, (16, 8, 8, 3)).astype(np.float32)
    model = flatten_cnn()
    qmodel = quantize(model, samples=x, verbose=0)
    conv = qmodel.get_layer("conv2d")
    assert conv.padding_value in (127, 128)  # Rescaling offset -1 folded into the padding value
    _exact(qmodel, x, graph=True)


def test_final_relu_and_per_channel_activations(images):
    layers = keras.layers
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((12, 12, 1)), layers.Rescaling(1 / 255.0),
                              layers.Conv2D(4, 3, strides=2),
                              layers.ReLU(6.0), layers.Conv2D(3, 3), layers.ReLU()])
    params = Akida1QuantizationParams(per_tensor_activations=False, activation_bits=2,
                                last_output_bits=1)
    qmodel = quantize(model, qparams=params, samples=images, verbose=0)
    relus = [lay for lay in qmodel.layers if isinstance(lay, QuantizedReLU)]
    assert [r.activation_bits for r in relus] == [2, 1]
    assert len(set(np.round(relus[0].output_scale.numpy(), 6))) > 1
    spec, ints = _exact(qmodel, images)
    assert ints.max() <= 1


def test_q_config_override_and_dump_config(images):
    qmodel = quantize(small_cnn(), samples=images, verbose=0,
                      q_config={"conv2d_1": Akida1QuantizationParams(weight_bits=2, activation_bits=1)})
    config = dump_config(qmodel)
    assert config["conv2d_1"]["weight_bits"] == 2 and config["re_lu_1"]["activation_bits"] == 1
    assert config["separable_conv2d"]["weight_bits"] == 4
    assert config["input_quantizer"]["bits"] == 8
    _exact(qmodel, images)


def test_q_config_unknown_name_suggests(images):
    with pytest.raises(QuantizationConfigError, match="Did you mean 'conv2d_1'"):
        quantize(small_cnn(), samples=images, verbose=0,
                 q_config={"conv2d_l": Akida1QuantizationParams()})


def test_requantizing_is_refused(images):
    qmodel = quantize(small_cnn(), samples=images, verbose=0)
    with pytest.raises(QuantizationConfigError, match="already quantized"):
        quantize(qmodel, samples=images)


def test_all_unsupported_layers_reported_at_once():
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((12, 12, 3)), layers.Conv2D(4, 3, dilation_rate=2, name="conv2d"),
        layers.Conv2D(4, 3, activation="sigmoid", name="conv2d_1"),
        layers.LeakyReLU(name="leaky_re_lu"), layers.Lambda(lambda t: t * 2, name="lambda"),
        layers.ReLU(name="re_lu"), layers.GlobalAveragePooling2D(name="global_average_pooling2d"),
        layers.Dense(3, name="dense")])
    with pytest.raises(QuantizationError) as info:
        quantize(model)
    issues = info.value.issues
    text = "\n".join(issues)
    for name in ("conv2d'", "conv2d_1", "leaky_re_lu", "lambda", "global_average_pooling2d"):
        assert name in text, (name, text)
    assert len(issues) >= 5


def test_channels_first_reported():
    layers = keras.layers
    model = keras.Sequential([keras.Input((3, 8, 8)),
                              layers.Conv2D(4, 3, data_format="channels_first"), layers.ReLU()])
    with pytest.raises(QuantizationError, match="channels_first"):
        quantize(model)


@pytest.mark.parametrize("samples,match", [
    (np.zeros((0, 12, 12, 1), np.float32), "empty"),
    (np.zeros((4, 12, 12), np.float32), "expected"),
    (np.full((4, 12, 12, 1), np.nan, np.float32), "NaN"),
    (iter([]), "no data"),
    (np.array([["a"]]), "dtype"),
])
def test_bad_calibration_data(samples, match):
    with pytest.raises(CalibrationError, match=match):
        quantize(small_cnn(), samples=samples, verbose=0)


def test_iterables_and_datasets_calibrate_like_arrays(images):
    import tensorflow as tf
    model = small_cnn()
    reference = quantize(model, samples=images, verbose=0, batch_size=8)
    from_list = quantize(model, samples=[images[i:i + 5] for i in range(0, 32, 5)], verbose=0)
    from_dataset = quantize(model, samples=tf.data.Dataset.from_tensor_slices(
        (images, np.zeros(32))).batch(7), verbose=0)
    for other in (from_list, from_dataset):
        for a, b in zip(reference.get_weights(), other.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_calibrate_refreshes_ranges(images):
    model = small_cnn()
    qmodel = quantize(model, samples=images, verbose=0)
    before = qmodel.get_layer("re_lu").act_step.numpy().copy()
    calibrate(model, qmodel, samples=images[:4] / 4.0, verbose=0)
    assert not np.array_equal(before, qmodel.get_layer("re_lu").act_step.numpy())
    _exact(qmodel, images)


def test_normalized_samples_for_a_rescaling_model_warn(images):
    with pytest.warns(UserWarning, match="already normalized"):
        quantize(small_cnn(), samples=images / 255.0, verbose=0)


def test_no_samples_uses_random_integers_with_warning():
    with pytest.warns(UserWarning, match="random"):
        qmodel = quantize(small_cnn(), num_samples=8, verbose=0)
    assert isinstance(qmodel.layers[1], InputQuantizer)


def test_float_inputs_get_an_input_quantizer():
    layers = keras.layers
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((10,)), layers.Dense(8, activation="relu", name="dense"),
                              layers.Dense(2, name="dense_1")])
    x = np.random.default_rng(0).normal(0, 1, (40, 10)).astype(np.float32)
    qmodel = quantize(model, samples=x, verbose=0)
    quantizer = qmodel.layers[1]
    assert quantizer.bits == 4 and quantizer.quantizer.zero_point > 0
    assert qmodel.get_layer("dense").padding_value == quantizer.quantizer.zero_point
    _exact(qmodel, x)


def test_dynamic_spatial_shape_is_refused():
    from quantizeml.errors import ModelFormatError
    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3),
                              keras.layers.ReLU()])
    with pytest.raises(ModelFormatError, match="unknown dimension"):
        quantize(model, num_samples=2, verbose=0)


def test_progress_bar_printed(images, capsys):
    quantize(small_cnn(), samples=images, verbose=1, batch_size=16)
    assert "2/2" in capsys.readouterr().out


def test_layer_types():
    qmodel = quantize(small_cnn(), num_samples=4, verbose=0)
    assert isinstance(qmodel.layers[2], QuantizedRescaling)
    assert isinstance(qmodel.get_layer("conv2d"), QuantizedConv2D)
    assert isinstance(qmodel.layers[-1], Dequantizer)


def test_unbounded_relus_are_named_in_a_warning(images):
    from quantizeml.transforms import QuantizationWarning
    # small_cnn has two ReLU() layers without max_value (and a fused relu, also unbounded)
    with pytest.warns(QuantizationWarning, match="without max_value.*'re_lu' \\(at [0-9.]+\\)"):
        quantize(small_cnn(), samples=images, verbose=0)


def test_zero_padding_that_is_not_same_padding_is_reported():
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.ZeroPadding2D(2),
                              keras.layers.Conv2D(4, 3), keras.layers.ReLU(6.0),
                              keras.layers.ZeroPadding2D(1), keras.layers.Flatten(),
                              keras.layers.Dense(2)])
    with pytest.raises(QuantizationError) as err:
        quantize(model, samples=np.zeros((2, 8, 8, 1), np.float32), verbose=0)
    text = str(err.value)
    assert "pads [(2, 2), (2, 2)] but 'same'" in text and "only supported right before" in text


def test_weights_that_overflow_float32_give_a_calibration_error():
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(4, 3),
                              keras.layers.ReLU(), keras.layers.Flatten(), keras.layers.Dense(2)])
    kernel, bias = model.layers[0].get_weights()
    model.layers[0].set_weights([np.full_like(kernel, 1e38), bias])
    with pytest.raises(CalibrationError, match="overflow.*'re_lu"):
        quantize(model, samples=np.full((4, 6, 6, 1), 200, np.float32), verbose=0)


def test_one_misplaced_pooling_is_one_plain_issue():
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3),
                              keras.layers.ReLU(6.0), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.ReLU(6.0), keras.layers.Dense(2)])
    with pytest.raises(QuantizationError) as err:
        quantize(model, samples=np.zeros((2, 8, 8, 1), np.float32), verbose=0)
    assert len(err.value.issues) == 1
    assert "found after the activation of 'conv2d" in err.value.issues[0]


def test_input_weight_bits_are_those_cnn2snn_can_emit():
    assert Akida1QuantizationParams(input_weight_bits=4).input_weight_bits == 4
    with pytest.raises(QuantizationConfigError, match="input_weight_bits=2 .*allowed: 4, 8"):
        Akida1QuantizationParams(input_weight_bits=2)
