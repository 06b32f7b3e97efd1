"""Akida 1.0 register widths: act_step on a 1/16 grid, 20-bit GAP and FullyConnected sums.

The worked examples of docs/semantics.md ("Registers and saturation"), probed on the vendor runtime.
"""
import numpy as np
import pytest

import akida_core as ak
from akida_core import kernels

from . import reference as ref


def _fully_connected(input_shape, units, input_bits=4, weights_bits=4, **kw):
    model = ak.Model()
    model.add(ak.InputData(input_shape, input_bits=input_bits))
    model.add(ak.FullyConnected(units, weights_bits=weights_bits, **kw))
    return model


@pytest.mark.parametrize("act_step, acts_as", [(3.283, 3.25), (0.1075, 0.0625), (2.0, 2.0), (0.0625, 0.0625),
                                               (60000.99, 60000.9375), (1.0 / 16 + 1e-7, 0.0625)])
def test_act_step_register_floors_to_sixteenths(act_step, acts_as):
    assert kernels.register_act_step(np.array([act_step], np.float32)).tolist() == [acts_as]
    assert ref.register_step(np.array([act_step], np.float32)).tolist() == [acts_as]


@pytest.mark.parametrize("act_step, potential, level", [(3.283, 36, 12), (0.1075, 1, 15)])
def test_sheet_examples_activation_uses_the_floored_step(act_step, potential, level):
    # 3.283 acts as 3.25: ceil(36 / 3.25) = 12, not ceil(36 / 3.283) = 11;
    # 0.1075 acts as 0.0625: ceil(1 / 0.0625) = 16, clipped to 15.
    model = _fully_connected((1, 1, 1), 1, weights_bits=8, act_bits=4)
    fc = model.layers[1]
    fc.variables["weights"] = np.ones((1, 1, 1, 1), np.int8)
    fc.variables["act_step"] = np.array([act_step], np.float32)
    assert model.forward(np.full((1, 1, 1, 1), 0, np.uint8)).ravel().tolist() == [0]
    fc.variables["threshold"] = np.array([-potential], np.int32)  # p − T = potential for input 0
    assert model.forward(np.zeros((1, 1, 1, 1), np.uint8)).ravel().tolist() == [level]


def test_predict_divides_by_the_floored_step():
    model = _fully_connected((1, 1, 1), 1, weights_bits=8, activation=False)
    fc = model.layers[1]
    fc.variables["weights"] = np.ones((1, 1, 1, 1), np.int8)
    fc.variables["act_step"] = np.array([3.283], np.float32)
    assert model.predict(np.full((1, 1, 1, 1), 13, np.uint8)).ravel().tolist() == [4.0]  # 13 / 3.25


def test_sheet_example_fully_connected_saturates_to_20_bits():
    # 64 channels x 32x32 inputs of 15 with weights 7: 6,881,280 unclipped -> 524,287.
    model = _fully_connected((32, 32, 64), 1, activation=False)
    fc = model.layers[1]
    fc.variables["weights"] = np.full((1, 1, 32 * 32 * 64, 1), 7, np.int8)
    x = np.full((1, 32, 32, 64), 15, np.uint8)
    assert model.forward(x).ravel().tolist() == [2 ** 19 - 1]
    fc.variables["weights"] = np.full((1, 1, 32 * 32 * 64, 1), -7, np.int8)
    assert model.forward(x).ravel().tolist() == [-2 ** 19]
    # with T = 0, act_step = 60000, 4 bits: ceil(524287 / 60000) = 9
    activated = _fully_connected((32, 32, 64), 1, act_bits=4)
    activated.layers[1].variables["weights"] = np.full((1, 1, 32 * 32 * 64, 1), 7, np.int8)
    activated.layers[1].variables["act_step"] = np.array([60000.0], np.float32)
    assert activated.forward(x).ravel().tolist() == [9]


def _gap_input_conv():
    """InputConvolutional 1x1, weights (127, 127, -128), global average pooling, raw outputs."""
    model = ak.Model()
    model.add(ak.InputConvolutional((6, 6, 3), (1, 1), 1, weights_bits=8, activation=False,
                                    pool_type=ak.PoolType.Average))
    model.layers[0].variables["weights"] = np.array([127, 127, -128], np.int8).reshape(1, 1, 3, 1)
    return model


def test_global_average_pooling_saturates_row_major():
    # Rows 0-2 of (255, 255, 0): +64,770 per pixel; rows 3-5 of (0, 0, 255): -32,640 per pixel.
    x = np.zeros((1, 6, 6, 3), np.uint8)
    x[0, :3, :, :2] = 255
    x[0, 3:, :, 2] = 255
    got = int(_gap_input_conv().forward(x).ravel()[0])
    # row-major: the first 18 pixels saturate at 2**19 - 1, then 18 x -32,640 follow
    assert got == 2 ** 19 - 1 - 18 * 32640 == -63233
    assert got != 18 * 64770 - 18 * 32640  # the exact sum (578,340) is not what the chip gives
    transposed = np.ascontiguousarray(x.transpose(0, 2, 1, 3))  # column-major order gives another value
    assert int(_gap_input_conv().forward(transposed).ravel()[0]) != got


@pytest.mark.parametrize("seed", range(6))
def test_global_sum_pool_matches_loop_reference(seed):
    rng = np.random.default_rng(seed)
    shape = (3, int(rng.integers(1, 7)), int(rng.integers(1, 7)), 4)
    scale = [10, 2 ** 17, 2 ** 19, 2 ** 22][seed % 4]
    p = rng.integers(-scale, scale, shape).astype(np.float32)
    np.testing.assert_array_equal(kernels.global_sum_pool(p, 20), ref.global_sum(p, 20))


def test_global_sum_pool_clips_only_where_a_prefix_leaves_the_range():
    def pooled(values):
        return kernels.global_sum_pool(np.array(values, np.float64).reshape(1, 1, -1, 1), 20).ravel().tolist()
    assert pooled([2 ** 19 - 1, -5, 5]) == [2 ** 19 - 1]  # never outside: the exact sum
    assert pooled([2 ** 19 - 1, 5, -5]) == [2 ** 19 - 6]  # clipped at the second pixel
    assert pooled([-2 ** 19, -1, 1]) == [-2 ** 19 + 1]
    assert pooled([3, 4]) == [7]


def test_summary_says_which_act_steps_the_chip_floors(capsys):
    model = _fully_connected((1, 1, 1), 2, weights_bits=8, act_bits=4, name="fc")
    model.layers[1].variables["act_step"] = np.array([3.283, 2.0], np.float32)
    model.summary()
    out = capsys.readouterr().out
    assert "layer 'fc': act_step of 1 of 2 neurons is not a multiple of 1/16" in out
    assert "3.283 acts as 3.25" in out
    model.layers[1].variables["act_step"] = np.array([3.25, 2.0], np.float32)
    model.summary()
    assert "1/16" not in capsys.readouterr().out


def test_global_pooling_layer_whose_exact_sum_exceeds_int32_is_accepted_and_saturates():
    # 8-bit weights over 3x3x512 inputs of 15, summed over 32x32 pixels: the exact sum (> 2**31) was
    # refused before; the register saturates it, so only each pixel's potential must fit int32.
    model = ak.Model()
    model.add(ak.InputData((32, 32, 512), input_bits=4))
    model.add(ak.Convolutional((3, 3), 2, weights_bits=8, activation=False, pool_type=ak.PoolType.Average))
    conv = model.layers[1]
    assert conv.potential_bound() > 2 ** 31
    conv.variables["weights"] = np.stack([np.full((3, 3, 512), 127), np.full((3, 3, 512), -128)],
                                         axis=-1).astype(np.int8)
    out = model.forward(np.full((1, 32, 32, 512), 15, np.uint8)).ravel().tolist()
    assert out == [2 ** 19 - 1, -2 ** 19]
