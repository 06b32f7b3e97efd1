"""Silent channels skipped (kernels.shared.live_channels): the layers give the loop references' integers when
some, most or all of their input channels are zero everywhere, with extreme act_steps and thresholds."""
import numpy as np
import pytest

import akida_core as ak
from akida_core.kernels import shared

from . import reference as ref
from .test_prepared import _general_forward


def test_live_channels_rule():
    x = np.zeros((2, 3, 3, 8), np.uint8)
    assert shared.live_channels(x).tolist() == []             # all silent
    x[1, 2, 0, [1, 6]] = 3
    assert shared.live_channels(x).tolist() == [1, 6]
    x[0, 0, 0, :6] = 1                                          # 7 of 8 live: more than SPARSE_CHANNELS
    assert shared.live_channels(x) is None


def test_live_channels_counted_first_give_the_same_verdicts(monkeypatch):
    rng = np.random.default_rng(7)
    for _ in range(300):
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 40)))
        x = rng.integers(0, 4, shape).astype(np.uint8) * (rng.random(shape) < rng.random())
        x[..., rng.random(shape[-1]) < rng.random()] = 0  # whole silent channels
        limit = float(rng.choice([0.1, 0.19, 0.5, 0.75, 1.0]))
        live = np.flatnonzero(x.reshape(-1, shape[-1]).any(axis=0))
        expected = None if len(live) > limit * shape[-1] else live.tolist()
        got = shared.live_channels(x, limit)
        assert (got if got is None else got.tolist()) == expected
    reductions = []
    monkeypatch.setattr(shared, "_column_maxima", lambda flat: reductions.append(1))
    dense = np.ones((1, 14, 14, 32), np.uint8)
    assert shared.live_channels(dense, 0.19) is None and not reductions  # the count decides: no reduction


@pytest.mark.parametrize("rows, channels", [(3, 8), (16384, 1), (1000, 32), (4097, 16), (20000, 4), (70, 512)])
def test_blocked_column_maxima_equal_the_plain_reduction(rows, channels):
    rng = np.random.default_rng(rows + channels)
    x = rng.integers(0, 15, (rows, channels)).astype(np.uint8) * (rng.random((rows, channels)) < 0.01)
    x[-1, 0] = 15  # the only 15, in the last row (outside the whole blocks when rows % block != 0)
    np.testing.assert_array_equal(shared._column_maxima(x), np.maximum.reduce(x, axis=0))
    silent = x.copy()
    silent[:, ::2] = 0
    np.testing.assert_array_equal(shared._column_maxima(silent) != 0, silent.any(axis=0))


def _model(kind, c=8, filters=6):
    model = ak.Model()
    model.add(ak.InputData((7, 6, c), input_bits=4, name="in"))
    common = dict(weights_bits=4, act_bits=4, name="layer")
    if kind == "conv":
        model.add(ak.Convolutional((3, 3), filters, kernel_stride=(2, 1), **common))
    elif kind == "conv_pool":
        model.add(ak.Convolutional((3, 3), filters, pool_type=ak.PoolType.Max, pool_size=(2, 2), **common))
    elif kind == "separable":
        model.add(ak.SeparableConvolutional((3, 3), filters, **common))
    else:
        model.add(ak.SeparableConvolutional((3, 3), filters, pool_type=ak.PoolType.Average, **common))
    rng = np.random.default_rng(len(kind))
    layer = model.layers[1]
    for name in layer.variables.names:
        if name.startswith("weights"):
            layer.variables[name] = rng.integers(-7, 8, layer.variables[name].shape).astype(np.int8)
    return model


@pytest.mark.parametrize("kind", ["conv", "conv_pool", "separable", "separable_gap"])
@pytest.mark.parametrize("live", [(), (2,), (0, 5, 7), (1, 2, 3, 4, 5)])
@pytest.mark.parametrize("act_step, threshold", [(1 / 16, -3), (2 ** 16 - 1 / 16, 0), (3.25, 40)])
def test_layers_with_silent_channels_equal_the_general_path(kind, live, act_step, threshold):
    model = _model(kind)
    layer = model.layers[1]
    units = layer.variables["act_step"].shape
    layer.variables["act_step"] = np.full(units, act_step, np.float32)
    layer.variables["threshold"] = np.full(units, threshold, np.int32)
    x = np.zeros((3, 7, 6, 8), np.uint8)
    rng = np.random.default_rng(7)
    for channel in live:
        x[..., channel] = rng.integers(0, 16, (3, 7, 6))
    for batch in (x, x[:1]):
        sparse = model.forward(batch)
        np.testing.assert_array_equal(sparse, _general_forward(model, batch))


def test_silent_channels_in_a_convolution_equal_the_loop_reference():
    model = _model("conv")
    layer = model.layers[1]
    layer.variables["act_step"] = np.full(6, 1 / 16, np.float32)
    x = np.zeros((2, 7, 6, 8), np.uint8)
    x[..., 3] = np.random.default_rng(1).integers(0, 16, (2, 7, 6))
    w = layer.variables["weights"].astype(np.int64)
    potentials = ref.convolve(x, w, (2, 1), True)
    expected = ref.activation(potentials, layer.variables["threshold"], layer.register_act_step, 4)
    np.testing.assert_array_equal(model.forward(x), expected)
