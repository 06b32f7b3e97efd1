"""Bit-exact parity: converted akida_core models equal their quantized Keras models, on random and
real (sklearn digits) inputs — zero mismatches, no tolerance."""
import functools

import numpy as np
import pytest

import cnn2snn
from akida_core import LayerType, PoolType

from .qbuild import build, conv, dense, flatten, gap, integer_model, maxpool, relu, sep

pytestmark = pytest.mark.akida_version("v1")  # Akida 1.0 flows; the default is Akida 2.0

# name: (input_shape, specs, input_bits, padding_value)
MODELS = {
    "inconv3-w8-a4-dense": ((8, 8, 3), [conv(4, 3, weight_bits=8), relu(4), flatten(),
                                        dense(5)], 8, 0),
    "inconv5-valid-w4": ((9, 9, 3), [conv(4, 5, padding="valid"), relu(4), flatten(),
                                     dense(3)], 8, 0),
    "inconv7-stride2-a2": ((12, 12, 1), [conv(4, 7, strides=2, weight_bits=8), relu(2),
                                         flatten(), dense(3)], 8, 0),
    "inconv3-stride3-a1": ((9, 9, 3), [conv(4, 3, strides=3, weight_bits=8), relu(1),
                                       flatten(), dense(3)], 8, 0),
    "inconv-stride-2x1": ((8, 8, 3), [conv(4, 3, strides=(2, 1), weight_bits=8), relu(4),
                                      flatten(), dense(3)], 8, 0),
    "inconv-maxpool-same": ((9, 9, 3), [conv(4, 3, weight_bits=8), maxpool(2), relu(4),
                                        flatten(), dense(3)], 8, 0),
    "inconv-valid-maxpool-valid": ((10, 10, 1), [conv(4, 3, padding="valid", weight_bits=8),
                                                 maxpool(2, padding="valid"), relu(4), flatten(),
                                                 dense(3)], 8, 0),
    "inconv-padding-value": ((8, 8, 3), [conv(4, 3, weight_bits=8), relu(4), flatten(),
                                         dense(3)], 8, 37),
    "inconv-relu-then-pool": ((8, 8, 3), [conv(4, 3, weight_bits=8), relu(4), maxpool(2),
                                          flatten(), dense(3)], 8, 0),
    "conv1x1": ((8, 8, 3), [conv(4, 3, weight_bits=8), relu(4), conv(6, 1), relu(4),
                            flatten(), dense(3)], 8, 0),
    "conv1x1-valid": ((8, 8, 3), [conv(4, 3, weight_bits=8), relu(4),
                                  conv(6, 1, padding="valid"), relu(4), flatten(), dense(3)], 8, 0),
    "conv5-conv7": ((10, 10, 1), [conv(4, 3, weight_bits=8), relu(4), conv(5, 5), relu(4),
                                  conv(3, 7), relu(4), flatten(), dense(3)], 8, 0),
    "conv-stride2": ((9, 9, 3), [conv(4, 3, weight_bits=8), relu(4), conv(6, 3, strides=2),
                                 relu(4), flatten(), dense(3)], 8, 0),
    "conv-w1-a1": ((8, 8, 3), [conv(4, 3, weight_bits=8), relu(1), conv(6, 3, weight_bits=1),
                               relu(1), flatten(), dense(3, weight_bits=1)], 8, 0),
    "conv-w2-a2": ((8, 8, 3), [conv(4, 3, weight_bits=4), relu(2), conv(6, 3, weight_bits=2),
                               relu(2), flatten(), dense(3, weight_bits=2)], 8, 0),
    "conv-maxpool-stride1": ((8, 8, 3), [conv(4, 3, weight_bits=8), relu(4), conv(6, 3),
                                         maxpool(2, strides=1), relu(4), flatten(),
                                         dense(3)], 8, 0),
    "conv-gap-relu-dense": ((8, 8, 3), [conv(4, 3, weight_bits=8), relu(4), conv(6, 3), gap(),
                                        relu(4), dense(3)], 8, 0),
    "conv-gap-last": ((8, 8, 3), [conv(4, 3, weight_bits=8), relu(4), conv(5, 3), gap()], 8, 0),
    "sep-w4-a4": ((8, 8, 3), [conv(4, 3, weight_bits=8), relu(4), sep(6, 3), relu(4),
                              flatten(), dense(3)], 8, 0),
    "sep5-w2-maxpool": ((8, 8, 3), [conv(4, 3, weight_bits=8), relu(4),
                                    sep(6, 5, weight_bits=2), maxpool(2), relu(2), flatten(),
                                    dense(3)], 8, 0),
    "sep7-gap": ((8, 8, 3), [conv(4, 3, weight_bits=8), relu(4), sep(6, 7), gap(), relu(4),
                             dense(3)], 8, 0),
    "sep-stride2": ((9, 9, 1), [conv(4, 3, weight_bits=8), relu(4), sep(6, 3, strides=2),
                                relu(4), flatten(), dense(3)], 8, 0),
    "inputdata-4bit-conv": ((8, 8, 2), [conv(4, 3), relu(4), flatten(), dense(3)], 4, 0),
    "inputdata-2bit-sep": ((8, 8, 4), [sep(4, 3), relu(4), flatten(), dense(3)], 2, 0),
    "inputdata-1bit-flat-dense": ((16,), [dense(8), relu(4), dense(3)], 1, 0),
    "dense-hidden-relu": ((8, 8, 1), [conv(4, 3, weight_bits=8), maxpool(2), relu(4), flatten(),
                                      dense(8), relu(2), dense(3)], 8, 0),
    "final-activation": ((8, 8, 3), [conv(4, 3, weight_bits=8), relu(4), flatten(), dense(4),
                                     relu(4)], 8, 0),
    "deep-mixed": ((12, 12, 3), [conv(8, 3, strides=2, weight_bits=8), relu(4), conv(8, 3),
                                 maxpool(2), relu(4), sep(8, 3), relu(2), conv(6, 1), gap(),
                                 relu(4), dense(4)], 8, 0),
}


@functools.lru_cache(maxsize=None)
def _digits():
    from sklearn.datasets import load_digits
    return load_digits().images.astype(np.float64) / 16.0  # (1797, 8, 8) in [0, 1]


def digits_like(shape, bits, count=40):
    """Real images (sklearn digits) tiled/cropped to `shape`, as `bits`-bit integers."""
    images = _digits()[:count]
    levels = np.round(images * (2 ** bits - 1))
    if len(shape) == 1:
        return levels.reshape(count, -1)[:, :shape[0]].astype(np.uint8)
    h, w, c = shape
    tiled = np.tile(levels, (1, -(-h // 8), -(-w // 8)))[:, :h, :w]
    return np.repeat(tiled[..., None], c, axis=-1).astype(np.uint8)


def _akida_input(x, shape):
    return x.reshape(len(x), 1, 1, -1) if len(shape) == 1 else x


def assert_parity(qmodel, akida_model, x_uint8, shape):
    """Asserts forward and predict equal the quantized Keras model, element for element."""
    x_keras = x_uint8.astype(np.float32)
    x_akida = _akida_input(x_uint8, shape)
    keras_int = np.asarray(integer_model(qmodel)(x_keras), np.float64)
    forward = akida_model.forward(x_akida)
    last = akida_model.layers[-1]
    if last.params.activation:
        assert forward.dtype == np.uint8
        expected = keras_int
    else:
        # Keras holds q = p + sum_size*bias = p - threshold; Akida forward returns p.
        expected = keras_int + last.variables["threshold"].astype(np.float64)
        predict = akida_model.predict(x_akida)
        keras_out = np.asarray(qmodel(x_keras))
        assert predict.dtype == keras_out.dtype == np.float32
        np.testing.assert_array_equal(predict.reshape(keras_out.shape), keras_out)
    got = forward.astype(np.float64).reshape(expected.shape)
    mismatches = int(np.sum(got != expected))
    assert mismatches == 0, f"{mismatches} mismatches of {expected.size}"
    return expected.size


@pytest.mark.parametrize("name", sorted(MODELS))
def test_parity(name):
    shape, specs, input_bits, padding_value = MODELS[name]
    qmodel = build(shape, specs, seed=len(name), input_bits=input_bits,
                   padding_value=padding_value)
    akida_model = cnn2snn.convert(qmodel)
    rng = np.random.default_rng(7)
    random_x = rng.integers(0, 2 ** input_bits, (24, *shape)).astype(np.uint8)
    compared = assert_parity(qmodel, akida_model, random_x, shape)
    compared += assert_parity(qmodel, akida_model, digits_like(shape, input_bits), shape)
    assert compared > 0
    # Outputs are not degenerate: the comparison can fail.
    out = akida_model.forward(_akida_input(random_x, shape))
    assert len(np.unique(out)) > 1


def test_model_catalogue_covers_every_option():
    kinds = {k for _, specs, _, _ in MODELS.values() for k, _ in specs}
    assert kinds == {"conv", "sep", "dense", "maxpool", "gap", "relu", "flatten"}
    kernels = {kw["kernel_size"] for _, specs, _, _ in MODELS.values() for k, kw in specs
               if k in ("conv", "sep")}
    assert {1, 3, 5, 7} <= kernels
    bits = {kw.get("weight_bits") for _, specs, _, _ in MODELS.values() for _, kw in specs}
    assert {1, 2, 4, 8} <= bits
    act = {kw["activation_bits"] for _, specs, _, _ in MODELS.values() for k, kw in specs
           if k == "relu"}
    assert act == {1, 2, 4} and len(MODELS) >= 25


def test_converted_layer_kinds():
    shape, specs, bits, pv = MODELS["deep-mixed"]
    akida_model = cnn2snn.convert(build(shape, specs, input_bits=bits, padding_value=pv))
    assert [la.layer_type for la in akida_model.layers] == [
        LayerType.InputConvolutional, LayerType.Convolutional, LayerType.SeparableConvolutional,
        LayerType.Convolutional, LayerType.FullyConnected]
    assert akida_model.layers[3].params.pool_type == PoolType.Average
    shape, specs, bits, pv = MODELS["inputdata-4bit-conv"]
    akida_model = cnn2snn.convert(build(shape, specs, input_bits=bits, padding_value=pv))
    assert akida_model.layers[0].layer_type == LayerType.InputData
