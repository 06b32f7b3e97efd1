"""Parity where Akida's 20-bit registers saturate: a global average pooling whose row-major running
sum leaves [−2**19, 2**19 − 1] (and comes back), and FullyConnected potentials beyond 20 bits.
The quantized Keras model and the converted akida_core model must agree bit for bit, and the
models are built so that saturation really happens (asserted)."""
import keras
import numpy as np
import pytest

import cnn2snn
from quantizeml.accumulators import POTENTIAL_MAX, POTENTIAL_MIN

from .qbuild import build, conv, dense, flatten, gap, relu
from .test_parity import assert_parity
from .test_quantize_convert import assert_act_steps_on_grid

pytestmark = pytest.mark.akida_version("v1")  # Akida 1.0 flows; the default is Akida 2.0

SHAPE = (16, 16, 64)


def _split_halves(count, seed):
    """4-bit images: the top rows light up input channels 0-31, the bottom rows channels 32-63
    (random intensities), so a filter weighting the halves with opposite signs has large positive
    potentials on top and large negative ones below."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, (count, *SHAPE))
    bright = rng.integers(8, 16, (count, SHAPE[0] // 2, SHAPE[1], SHAPE[2] // 2))
    x[:, :SHAPE[0] // 2, :, :SHAPE[2] // 2] = bright
    x[:, SHAPE[0] // 2:, :, SHAPE[2] // 2:] = bright[:, ::-1]
    return x.astype(np.uint8)


def _inputs(seed):
    rng = np.random.default_rng(seed)
    return np.concatenate([_split_halves(24, seed), _split_halves(8, seed + 1)[:, :, ::-1],
                           rng.integers(0, 16, (8, *SHAPE)).astype(np.uint8)])


def _gap_model():
    # Per filter, the mean of its (3, 3, 64) kernel: +/- halves, -/+ halves, positive, neutral.
    halves = np.where(np.arange(64) < 32, 3.0, -3.0)
    mean = np.stack([halves, -halves, np.full(64, 3.0), np.zeros(64)], axis=-1)[None, None]
    specs = [conv(4, 3, weight_mean=mean), gap(), relu(4), dense(3)]
    return build(SHAPE, specs, seed=3, input_bits=4, calib=_inputs(11).astype(np.float32))


def _fc_models():
    mean = np.array([8.0, -8.0, 0.5, 0.0])
    last = build(SHAPE, [flatten(), dense(4, weight_mean=mean)], seed=5, input_bits=4,
                 calib=_inputs(12).astype(np.float32))
    hidden = build(SHAPE, [flatten(), dense(4, weight_mean=mean), relu(4), dense(3)], seed=6,
                   input_bits=4, calib=_inputs(13).astype(np.float32))
    return {"fc-last": last, "fc-hidden": hidden}


def test_global_pooling_register_saturates_and_matches_akida():
    qmodel = _gap_model()
    x = _inputs(0)
    conv_layer, pool = qmodel.layers[1], qmodel.layers[2]
    bias = conv_layer.akida_parameters()["bias"].astype(np.float64)
    p = np.asarray(keras.Model(qmodel.inputs[0], conv_layer.output)(x.astype(np.float32)),
                   np.float64) - bias
    pooled = np.asarray(keras.Model(qmodel.inputs[0], pool.output)(x.astype(np.float32)),
                        np.float64) - pool.sum_size * bias
    running = np.cumsum(p.reshape(len(x), -1, p.shape[-1]), axis=1)
    left = (running > POTENTIAL_MAX) | (running < POTENTIAL_MIN)
    assert left.any(axis=1)[:, :3].mean() > 0.5  # the three biased filters do saturate
    plain = p.sum(axis=(1, 2))
    assert np.any(pooled != plain)  # and the register changes the pooled values
    assert np.all((pooled >= POTENTIAL_MIN) & (pooled <= POTENTIAL_MAX))
    akida_model = cnn2snn.convert(qmodel)
    assert_act_steps_on_grid(akida_model)
    assert assert_parity(qmodel, akida_model, x, SHAPE) > 0


@pytest.mark.parametrize("name", ["fc-last", "fc-hidden"])
def test_fully_connected_saturates_and_matches_akida(name):
    qmodel = _fc_models()[name]
    x = _inputs(1)
    dense_layer = qmodel.layers[2]
    w = dense_layer.akida_parameters()["weights"].astype(np.int64)
    unclipped = x.reshape(len(x), -1).astype(np.int64) @ w
    assert np.any(unclipped > POTENTIAL_MAX) and np.any(unclipped < POTENTIAL_MIN)
    assert np.any(np.abs(unclipped) <= POTENTIAL_MAX)  # some are not clipped
    akida_model = cnn2snn.convert(qmodel)
    assert_act_steps_on_grid(akida_model)
    assert assert_parity(qmodel, akida_model, x, SHAPE) > 0
    if name == "fc-last":  # Akida forward returns the clipped potential itself
        forward = akida_model.forward(x).reshape(unclipped.shape).astype(np.int64)
        np.testing.assert_array_equal(forward, np.clip(unclipped, POTENTIAL_MIN, POTENTIAL_MAX))
    else:
        levels = np.asarray(keras.Model(qmodel.inputs[0], qmodel.layers[3].output)(
            x.astype(np.float32)))
        assert len(np.unique(levels)) > 2
