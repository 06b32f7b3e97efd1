"""Layer contract: constructors as MetaTF, validated parameters and variables, exact forward."""
import inspect

import numpy as np
import pytest

import akida_core as ak
from akida_core.errors import LayerParameterError, ModelStructureError
from akida_core.layers import LAYER_KINDS

from . import reference as ref
from .helpers import randomize, small_cnn

SIGNATURES = {
    "InputData": ["input_shape", "input_bits", "name"],
    "InputConvolutional": ["input_shape", "kernel_size", "filters", "name", "padding", "kernel_stride",
                           "weights_bits", "pool_size", "pool_type", "pool_stride", "activation", "act_bits",
                           "padding_value"],
    "Convolutional": ["kernel_size", "filters", "name", "padding", "kernel_stride", "weights_bits",
                      "pool_size", "pool_type", "pool_stride", "activation", "act_bits"],
    "SeparableConvolutional": ["kernel_size", "filters", "name", "padding", "kernel_stride", "weights_bits",
                               "pool_size", "pool_type", "pool_stride", "activation", "act_bits"],
    "FullyConnected": ["units", "name", "weights_bits", "activation", "act_bits"],
    # Akida 2.0 (akida2-layers.md §1)
    "InputConv2D": ["input_shape", "filters", "kernel_size", "padding", "kernel_stride", "pool_type", "pool_size",
                    "pool_stride", "activation", "output_bits", "buffer_bits", "post_op_buffer_bits",
                    "weights_bits", "name"],
    "Conv2D": ["filters", "kernel_size", "kernel_stride", "padding", "pool_type", "pool_size", "pool_stride",
               "output_bits", "buffer_bits", "activation", "post_op_buffer_bits", "weights_bits", "name"],
    "DepthwiseConv2D": ["kernel_size", "kernel_stride", "padding", "pool_type", "pool_size", "pool_stride",
                        "output_bits", "buffer_bits", "post_op_buffer_bits", "activation", "weights_bits", "name"],
    "Conv2DTranspose": ["filters", "kernel_size", "activation", "output_bits", "buffer_bits", "post_op_buffer_bits",
                        "weights_bits", "name"],
    "DepthwiseConv2DTranspose": ["kernel_size", "activation", "output_bits", "buffer_bits", "post_op_buffer_bits",
                                 "weights_bits", "name"],
    "Dense1D": ["units", "output_bits", "buffer_bits", "post_op_buffer_bits", "activation", "weights_bits", "name"],
    "BufferTempConv": ["filters", "fifo_size", "activation", "output_bits", "buffer_bits", "post_op_buffer_bits",
                       "weights_bits", "name"],
    "DepthwiseBufferTempConv": ["fifo_size", "activation", "output_bits", "buffer_bits", "post_op_buffer_bits",
                                "weights_bits", "name"],
    "StatefulRecurrent": ["stateful_channels", "output_channels", "subsample", "activation", "output_bits",
                          "buffer_bits", "post_op_buffer_bits", "internal_state_bits", "name"],
    "Add": ["output_bits", "buffer_bits", "post_op_buffer_bits", "name"],
    "Concatenate": ["name"],
    "Quantizer": ["input_shape", "output_bits", "output_signed", "channels_first", "name"],
    "Dequantizer": ["name"],
}
DEFAULT_WEIGHT_BITS = {"InputConvolutional": 1, "Convolutional": 1, "SeparableConvolutional": 2,
                       "FullyConnected": 1}


@pytest.mark.parametrize("kind", list(LAYER_KINDS.values()), ids=lambda c: c.__name__)
def test_constructor_argument_order_matches_metatf(kind):
    names = list(inspect.signature(kind.__init__).parameters)[1:]
    expected = SIGNATURES[kind.__name__]
    assert names[:len(expected)] == expected
    extra = names[len(expected):]
    assert extra in ([], ["threshold"])
    params = inspect.signature(kind.__init__).parameters
    if kind.__name__ in DEFAULT_WEIGHT_BITS:
        assert params["weights_bits"].default == DEFAULT_WEIGHT_BITS[kind.__name__]
        assert params["act_bits"].default == 1 and params["activation"].default is True


def _model_with(layer):
    model = ak.Model()
    if not layer.is_input:
        model.add(ak.InputData((6, 5, 3), input_bits=4))
    model.add(layer)
    return model


def _one_of_each():
    return [ak.InputData((6, 5, 3)), ak.InputConvolutional((6, 5, 3), (3, 3), 4),
            ak.Convolutional((3, 3), 4), ak.SeparableConvolutional((3, 3), 4), ak.FullyConnected(4)]


@pytest.mark.parametrize("layer", _one_of_each(), ids=lambda lay: type(lay).__name__)
def test_variables_created_on_add_with_defaults(layer):
    with pytest.raises(ModelStructureError):
        layer.variables["weights"]
    model = _model_with(layer)
    layer = model.layers[-1]
    expected = {"InputData": [], "SeparableConvolutional": ["weights", "weights_pw", "threshold", "act_step"]}
    names = expected.get(type(layer).__name__, ["weights", "threshold", "act_step"])
    assert layer.variables.names == names
    for name in names:
        value = layer.variables[name]
        assert value.dtype == {"threshold": np.int32, "act_step": np.float32}.get(name, np.int8)
        assert np.all(value == (1.0 if name == "act_step" else 0))


@pytest.mark.parametrize("bits, low, high", [(1, 0, 1), (2, -1, 1), (4, -7, 7), (8, -128, 127)])
def test_weight_assignment_checks_the_range_of_the_bit_width(bits, low, high):
    model = _model_with(ak.FullyConnected(3, weights_bits=bits))
    fc = model.layers[-1]
    weights = fc.variables["weights"].astype(np.int16)
    weights[...] = low
    weights[0, 0, 0, 0] = high
    fc.variables["weights"] = weights
    assert fc.variables["weights"][0, 0, 0, 0] == high
    for bad in (low - 1, high + 1):
        weights[0, 0, 0, 0] = bad
        with pytest.raises(LayerParameterError, match=rf"outside the allowed range \[{low}, {high}\]"):
            fc.variables["weights"] = weights
    assert fc.variables["weights"][0, 0, 0, 0] == high  # a failed assignment changes nothing


@pytest.mark.parametrize("value, message", [
    (np.zeros((1, 1, 90, 2), np.int8), "shape"),
    (np.zeros((1, 1, 90, 3), np.float32), "not an integer dtype"),
    (np.zeros((1, 1, 90, 3), bool), "not an integer dtype"),
    ("weights", "expected a numpy array"),
])
def test_weight_assignment_checks_shape_and_dtype(value, message):
    fc = _model_with(ak.FullyConnected(3)).layers[-1]
    with pytest.raises(LayerParameterError, match=message):
        fc.variables["weights"] = value


def test_act_step_minimum_and_finiteness():
    fc = _model_with(ak.FullyConnected(2)).layers[-1]
    fc.variables["act_step"] = np.array([0.0625, 3.0])
    with pytest.raises(LayerParameterError, match="minimum"):
        fc.variables["act_step"] = np.array([0.06, 1.0], np.float32)
    with pytest.raises(LayerParameterError, match="finite"):
        fc.variables["act_step"] = np.array([np.inf, 1.0], np.float32)


@pytest.mark.parametrize("build, message", [
    (lambda: ak.Convolutional((2, 2), 4), "odd"),
    (lambda: ak.Convolutional((3, 3), 4, kernel_stride=4), "larger than kernel_size"),
    (lambda: ak.Convolutional((3, 3), 4, weights_bits=3), "weights_bits=3 is not supported"),
    (lambda: ak.FullyConnected(4, act_bits=3), "act_bits=3"),
    (lambda: ak.FullyConnected(True), "must be an integer"),
    (lambda: ak.FullyConnected(0), ">= 1"),
    (lambda: ak.Convolutional((3, 3), 4, pool_type=ak.PoolType.Max), "pool_size"),
    (lambda: ak.Convolutional((3, 3), 4, pool_type=ak.PoolType.Max, pool_size=2, pool_stride=3), "pool_stride"),
    (lambda: ak.Convolutional((3, 3), 4, pool_type=ak.PoolType.Average, pool_size=2), "always global"),
    (lambda: ak.Convolutional((3, 3), 4, padding="Full"), "Padding.Same"),
    (lambda: ak.InputData((0, 4, 1)), ">= 1"),
    (lambda: ak.InputData((4, 4)), "3 dims"),
    (lambda: ak.InputConvolutional((8, 8, 1), 3, 4, padding_value=256), "<= 255"),
])
def test_bad_parameters_are_rejected_with_the_value(build, message):
    with pytest.raises(LayerParameterError, match=message):
        build()


def test_pool_stride_defaults_to_pool_size():
    conv = ak.Convolutional((3, 3), 4, pool_type=ak.PoolType.Max, pool_size=(2, 2))
    assert conv.parameters.pool_stride == (2, 2)


def test_seed_style_scalar_threshold_sets_every_neuron():
    model = ak.Model()
    model.add(ak.InputData(name="input", input_shape=(32, 32, 1)))
    model.add(ak.FullyConnected(name="fully", units=32, threshold=40))
    fc = model.get_layer("fully")
    assert fc.parameters.units == 32
    np.testing.assert_array_equal(fc.variables["threshold"], np.full(32, 40, np.int32))


def test_parameter_change_is_validated_and_undone_on_failure():
    model = _model_with(ak.FullyConnected(3, weights_bits=4))
    fc = model.layers[-1]
    weights = fc.variables["weights"]
    weights[0, 0, 0, 0] = 7
    fc.variables["weights"] = weights
    with pytest.raises(LayerParameterError, match="weights_bits=2"):
        fc.parameters.weights_bits = 2
    assert fc.parameters.weights_bits == 4 and fc.variables["weights"][0, 0, 0, 0] == 7
    fc.parameters.units = 5  # changes shapes: variables are re-created
    assert fc.variables["weights"].shape == (1, 1, 90, 5) and model.output_shape == [1, 1, 5]


def test_parameter_change_that_breaks_a_later_layer_is_refused():
    model = ak.Model()
    model.add(ak.InputData((5, 5, 1)))
    model.add(ak.Convolutional((3, 3), 2, padding=ak.Padding.Valid, act_bits=2))
    model.add(ak.Convolutional((3, 3), 2, padding=ak.Padding.Valid))
    conv = model.layers[1]
    with pytest.raises(ModelStructureError, match="too small"):
        conv.parameters.kernel_size = (5, 5)
    assert conv.parameters.kernel_size == (3, 3) and model.output_shape == [1, 1, 2]


def _forward_reference(model, x):
    """Whole-model loop reference built from tests/akida_core/reference.py."""
    for layer in model.layers:
        p = layer.params
        name = type(layer).__name__
        same = getattr(p, "padding", None) == ak.Padding.Same
        if name == "InputData":
            continue
        v = {k: layer.variables[k] for k in layer.variables.names}
        if name == "InputConvolutional":
            pot = ref.correlate(x, v["weights"], p.kernel_stride, same, p.padding_value)
        elif name == "Convolutional":
            pot = ref.convolve(x, v["weights"], p.kernel_stride, same)
        elif name == "SeparableConvolutional":
            pot = ref.separable(x, v["weights"], v["weights_pw"], p.kernel_stride, same)
        else:
            pot = ref.saturate(ref.fully_connected(x, v["weights"]), 20)
        if getattr(p, "pool_type", None) == ak.PoolType.Max:
            pot = ref.max_pool(pot, p.pool_size, p.pool_stride, same)
        elif getattr(p, "pool_type", None) == ak.PoolType.Average:
            pot = ref.global_sum(pot, 20)
        step = ref.register_step(v["act_step"])
        x = ref.activation(pot, v["threshold"], step, p.act_bits) if p.activation else pot
    return x


@pytest.mark.parametrize("seed", range(4))
def test_whole_model_forward_equals_loop_reference(seed):
    model = small_cnn(activation_last=seed % 2 == 0, seed=seed)
    x = np.random.default_rng(seed).integers(0, 256, (3, 9, 8, 1)).astype(np.uint8)
    got = model.forward(x)
    assert got.dtype == (np.uint8 if seed % 2 == 0 else np.int32)
    np.testing.assert_array_equal(got, _forward_reference(model, x))


def test_input_data_model_with_strides_and_valid_padding_equals_reference():
    model = ak.Model()
    model.add(ak.InputData((11, 9, 3), input_bits=2))
    model.add(ak.Convolutional((5, 5), 3, padding=ak.Padding.Valid, kernel_stride=(2, 1), weights_bits=2,
                               act_bits=4))
    model.add(ak.Convolutional((3, 3), 4, kernel_stride=2, weights_bits=1, act_bits=1,
                               pool_type=ak.PoolType.Max, pool_size=(2, 1), pool_stride=(1, 1)))
    model.add(ak.FullyConnected(5, weights_bits=4, activation=False))
    randomize(model, seed=7, threshold_range=(-10, 10), act_step_range=(0.5, 3))
    x = np.random.default_rng(1).integers(0, 4, (2, 11, 9, 3)).astype(np.uint8)
    np.testing.assert_array_equal(model.forward(x), _forward_reference(model, x))


def test_layer_macs():
    model = small_cnn()
    ic, conv, sep, fc = model.layers
    assert ic.macs == 9 * 8 * 9 * 1 * 4
    assert conv.macs == 9 * 8 * 9 * 4 * 5
    assert sep.macs == 5 * 4 * 5 * (9 + 6)
    assert fc.macs == 6 * 3
    assert model.macs == ic.macs + conv.macs + sep.macs + fc.macs
