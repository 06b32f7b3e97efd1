"""Every worked example of akida2-layers.md (the Akida 2.0 facts sheet), as a test.

Each case builds the tiny model the sheet describes, sets the variables it names and checks the
integers it gives; the section of the sheet is in the test name.
"""
import numpy as np
import pytest

import akida_core as ak

A = ak.ActivationType


def _set(layer, **variables):
    for name, value in variables.items():
        dtype = layer.variables[name].dtype
        layer.variables[name] = np.asarray(value, dtype).reshape(layer.variables[name].shape)
    return layer


def _one_by_one(x, weights, channels_in=1, input_bits=8, layer_kind=None, **params):
    """InputData + one 1x1 neural layer; returns (model, layer)."""
    h = len(x)
    model = ak.Model()
    model.add(ak.InputData((1, h, channels_in), input_bits=input_bits))
    layer = (layer_kind or ak.Conv2D)(**({"filters": 1, "kernel_size": 1} if layer_kind is None else {}), **params)
    model.add(layer)
    _set(layer, weights=weights)
    return model, layer


def _run(model, x, dtype=np.int8):
    return model.forward(np.asarray(x, dtype).reshape((-1, *model.input_shape)))


# --- §3 POST --------------------------------------------------------------------------------------------------

def test_s3_bias_left_shift_saturates_to_post_op_buffer_bits():
    model, conv = _one_by_one([0], [0], activation=A.NoActivation, output_bits=32)
    _set(conv, bias=[127], bias_shift=[25])
    assert _run(model, [[0]]).ravel().tolist() == [2 ** 31 - 1]
    model, conv = _one_by_one([0], [0], activation=A.NoActivation, output_bits=16, post_op_buffer_bits=8)
    _set(conv, bias=[-100], bias_shift=[3])
    assert _run(model, [[0]]).ravel().tolist() == [-128]


@pytest.mark.parametrize("output_bits, expected", [(16, -273), (8, -128)])
def test_s3_bias_is_added_after_the_buffer_saturation(output_bits, expected):
    model, conv = _one_by_one([0], [3], activation=A.NoActivation, buffer_bits=8, output_bits=output_bits)
    _set(conv, bias=[-100], bias_shift=[2])
    assert _run(model, [[127]]).ravel().tolist() == [expected]


def test_s3_input_conv2d_adds_the_bias_inside_the_buffer_saturation():
    model = ak.Model()
    model.add(ak.InputConv2D((1, 1, 1), 1, 1, activation=A.NoActivation, buffer_bits=8, output_bits=16))
    _set(model.layers[0], weights=[3], bias=[-100], bias_shift=[2])
    assert _run(model, [127], np.uint8).ravel().tolist() == [-19]


def test_s4_more_relu_clip_with_max_value():
    model, conv = _one_by_one([0], [3], output_bits=16)
    _set(conv, max_value=[3], max_value_shift=[6], output_scales=[2])
    assert _run(model, [85]).ravel().tolist() == [384]


def test_s4_more_four_bit_outputs_are_unsigned():
    model, _ = _one_by_one([0, 0, 0], [1], activation=A.NoActivation, output_bits=4)
    out = _run(model, [-5, 7, 100])
    assert out.dtype == np.uint8 and out.ravel().tolist() == [0, 7, 15]


def test_s4_more_post_op_buffer_saturates_the_scaled_value():
    model, conv = _one_by_one([0], [100, 100], channels_in=2, activation=A.NoActivation, output_bits=16,
                              post_op_buffer_bits=16)
    _set(conv, output_scales=[200], output_shift=[-8])
    assert _run(model, [127, 127]).ravel().tolist() == [128]


def test_s4_more_gap_saturates_after_every_addition_in_row_major_order():
    model, _ = _one_by_one([0] * 6, [1], activation=A.NoActivation, pool_type=ak.PoolType.Average,
                           post_op_buffer_bits=9, output_bits=16)
    assert _run(model, [127, 127, 127, -127, -127, -127]).ravel().tolist() == [-126]


def test_s4_more_gap_applies_bias_and_relu_per_pixel_then_sums():
    model, conv = _one_by_one([0] * 4, [1], pool_type=ak.PoolType.Average, output_bits=16)
    _set(conv, bias=[-30])
    assert _run(model, [100, -50, -20, 5]).ravel().tolist() == [70]


def test_s4_more_lut_activation():
    model, conv = _one_by_one([0], [1], activation=A.LUT, output_bits=16)
    _set(conv, activation_shift=[-2], activation_scales=[2],
         lut_values=3 * (np.arange(2048) - 1024))
    assert _run(model, [[-3], [-2], [127]]).ravel().tolist() == [-3, -3, 192]


def test_s4_more_max_pool_ignores_padded_cells():
    model, _ = _one_by_one([0] * 5, [1], activation=A.NoActivation, pool_type=ak.PoolType.Max, pool_size=2,
                           pool_stride=2)
    assert _run(model, [-1, -2, -3, -4, -5]).ravel().tolist() == [-1, -3, -5]


# --- §4 raw sums ----------------------------------------------------------------------------------------------

def test_s4_input_conv2d_cross_correlation():
    model = ak.Model()
    model.add(ak.InputConv2D((1, 2, 1), 1, 1, buffer_bits=9))
    _set(model.layers[0], weights=[3], bias=[-5], bias_shift=[4], output_scales=[3], output_shift=[-4])
    assert _run(model, [200, 100], np.uint8).ravel().tolist() == [48, 41]


def test_s4_input_conv2d_pads_with_padding_value_and_does_not_flip():
    model = ak.Model()
    model.add(ak.InputConv2D((1, 1, 1), 1, 3, activation=A.NoActivation, output_bits=16))
    weights = np.zeros((3, 3, 1, 1), np.int8)
    weights[0, 0] = 1  # top-left tap reads the padded top-left neighbour
    _set(model.layers[0], weights=weights, padding_value=[7])
    assert _run(model, [50], np.uint8).ravel().tolist() == [7]


def test_s4_conv2d_input_shift_and_bias():
    model, conv = _one_by_one([0], [2, 3], channels_in=2, activation=A.NoActivation, buffer_bits=8)
    _set(conv, input_shift=[1, 0], bias=[10], bias_shift=[2], output_shift=[-1])
    assert _run(model, [100, -50]).ravel().tolist() == [72]


def test_s4_depthwise_conv2d_is_a_true_convolution():
    model = ak.Model()
    model.add(ak.InputData((3, 3, 1), input_bits=8))
    model.add(ak.DepthwiseConv2D(3, activation=A.NoActivation))
    weights = np.zeros((3, 3, 1, 1), np.int8)
    weights[0, 1] = 1
    _set(model.layers[1], weights=weights)
    out = _run(model, np.arange(1, 10))
    assert out[0, :, :, 0].tolist() == [[4, 5, 6], [7, 8, 9], [0, 0, 0]]


@pytest.mark.parametrize("kernel, expected", [(3, [[5, 10], [20, 25]]), (4, [[30, 35], [50, 55]])])
def test_s4_conv2d_transpose(kernel, expected):
    model = ak.Model()
    model.add(ak.InputData((1, 1, 1), input_bits=8))
    model.add(ak.Conv2DTranspose(1, kernel, activation=A.NoActivation, output_bits=16))
    _set(model.layers[1], weights=np.arange(1, kernel * kernel + 1))
    assert _run(model, [5])[0, :, :, 0].tolist() == expected


def test_s4_depthwise_conv2d_transpose_matches_conv2d_transpose_per_channel():
    model = ak.Model()
    model.add(ak.InputData((1, 1, 2), input_bits=8))
    model.add(ak.DepthwiseConv2DTranspose(3, activation=A.NoActivation, output_bits=16))
    _set(model.layers[1], weights=np.stack([np.arange(1, 10), -np.arange(1, 10)], axis=-1))
    out = _run(model, [5, 1])
    assert out[0, :, :, 0].tolist() == [[5, 10], [20, 25]] and out[0, :, :, 1].tolist() == [[-1, -2], [-4, -5]]


def test_s4_dense1d_flattens_row_major():
    model = ak.Model()
    model.add(ak.InputData((2, 1, 2), input_bits=8))
    model.add(ak.Dense1D(1))
    _set(model.layers[1], weights=[1, 2, 4, 8])
    assert _run(model, [1, 2, 3, 4]).ravel().tolist() == [49]
    assert model.layers[1].variables["input_shift"].shape == (4,)
    assert model.layers[1].input_dims == (1, 1, 4)  # reported flattened, as the vendor does


def test_s4_buffer_temp_conv_fifo_oldest_first():
    model = ak.Model()
    model.add(ak.InputData((1, 1, 2), input_bits=8))
    model.add(ak.BufferTempConv(1, 3, activation=A.NoActivation))
    _set(model.layers[1], weights=[1, 2, 4, 8, 16, 32])
    x = np.zeros((4, 1, 1, 2), np.int8)
    x[0, 0, 0, 0] = x[1, 0, 0, 1] = 1
    assert model.forward(x).ravel().tolist() == [16, 36, 9, 2]


def test_s4_depthwise_buffer_temp_conv_running_saturation():
    model = ak.Model()
    model.add(ak.InputData((1, 1, 1), input_bits=8))
    model.add(ak.DepthwiseBufferTempConv(3, activation=A.NoActivation, buffer_bits=8))
    _set(model.layers[1], weights=[1, 1, -1])
    assert _run(model, [100, 100, 100]).ravel().tolist() == [-100, 0, 27]


@pytest.mark.parametrize("kind, expected", [(ak.Conv2D, -2 ** 27), (ak.Dense1D, 2 ** 27 - 1)])
def test_s4_accumulator_width_conv_wraps_dense_does_not(kind, expected):
    model = ak.Model()
    model.add(ak.InputData((1, 1, 1), input_bits=8))
    model.add(ak.Conv2D(1, 1, activation=A.NoActivation, output_bits=32) if kind is ak.Conv2D
              else ak.Dense1D(1, output_bits=32))
    _set(model.layers[1], weights=[17], input_shift=[24])
    assert _run(model, [100]).ravel().tolist() == [expected]


# --- §5 Add, Concatenate, Quantizer, Dequantizer, StatefulRecurrent ---------------------------------------------

def test_s5_add_shifts_saturates_and_rounds():
    model = ak.Model()
    model.add(ak.InputData((1, 1, 1), input_bits=8, name="in"))
    model.add(ak.Conv2D(1, 1, activation=A.NoActivation, name="neg"))
    _set(model.get_layer("neg"), weights=[-1])
    model.add(ak.Add(buffer_bits=10, output_bits=16, name="add"), [model.get_layer("in"), model.get_layer("neg")])
    _set(model.get_layer("add"), a_shift=[4], output_shift=[-1])
    out = _run(model, [[100], [-7]])
    assert out.ravel().tolist() == [206, -52] and out.dtype == np.int32


def test_s5_add_of_the_input_layer_with_itself_saturates_at_eight_bits():
    model = ak.Model()
    model.add(ak.InputData((1, 1, 2), input_bits=8, name="in"))
    model.add(ak.Add(), [model.get_layer("in"), model.get_layer("in")])
    out = _run(model, [100, -3])
    assert out.ravel().tolist() == [127, -6] and out.dtype == np.int8


def test_s5_add_is_signed_even_with_four_bit_outputs():
    model = ak.Model()
    model.add(ak.InputData((1, 1, 1), input_bits=8, name="in"))
    model.add(ak.Add(output_bits=4), [model.get_layer("in"), model.get_layer("in")])
    out = _run(model, [[-100], [3]])
    assert out.ravel().tolist() == [-8, 6] and out.dtype == np.int8


def test_s5_concatenate_first_inbound_channels_first():
    model = ak.Model()
    model.add(ak.InputData((1, 1, 1), input_bits=8, name="in"))
    model.add(ak.Conv2D(2, 1, activation=A.NoActivation, name="conv"))
    _set(model.get_layer("conv"), weights=[[2, 3]])
    model.add(ak.Conv2D(1, 1, activation=A.NoActivation, name="other"), [model.get_layer("in")])
    model.add(ak.Concatenate(), [model.get_layer("other"), model.get_layer("conv")])
    _set(model.get_layer("other"), weights=[-1])
    out = _run(model, [5])
    assert out.ravel().tolist() == [-5, 10, 15] and model.output_shape == [1, 1, 3]


def test_s5_quantizer_rounds_half_away_from_zero_on_a_float32_product():
    model = ak.Model()
    model.add(ak.Quantizer((1, 1, 4), 8, True))
    _set(model.layers[0], scales=[1, 5, 1, 2], zero_points=[0, 0, 10, 0])
    out = model.forward(np.array([-2.5, 0.7, -0.5, 100], np.float32).reshape(1, 1, 1, 4))
    assert out.ravel().tolist() == [-3, 4, 9, 127] and out.dtype == np.int8


def test_s5_quantizer_unset_scales_give_the_zero_point_and_ints_pass_through():
    model = ak.Model()
    model.add(ak.Quantizer((1, 1, 2), 4, False))
    _set(model.layers[0], zero_points=[3, 20])
    out = model.forward(np.array([[[[1.5, -7.0]]]], np.float32))
    assert out.ravel().tolist() == [3, 15] and out.dtype == np.uint8
    assert model.forward(np.array([[[[2, 9]]]], np.uint8)).ravel().tolist() == [2, 9]
    with pytest.raises(ak.InputDataError, match="range"):
        model.forward(np.array([[[[2, 16]]]], np.uint8))


def test_s5_quantizer_channels_first():
    model = ak.Model()
    model.add(ak.Quantizer((2, 1, 3), 8, True, channels_first=True))
    _set(model.layers[0], scales=[1, 10])
    x = np.arange(6, dtype=np.float32).reshape(1, 2, 1, 3)
    out = model.forward(x)
    assert out.shape == (1, 1, 3, 2) and out[0, 0].tolist() == [[0, 30], [1, 40], [2, 50]]


def test_s5_dequantizer_float32_product_and_predict():
    model = ak.Model()
    model.add(ak.InputData((1, 1, 2), input_bits=8))
    model.add(ak.Dequantizer())
    _set(model.layers[1], scales=[0.1, 3])
    x = np.array([3, -5], np.int8).reshape(1, 1, 1, 2)
    out = model.predict(x)
    assert out.dtype == np.float32 and out.ravel().tolist() == [np.float32(3) * np.float32(0.1), -15.0]
    assert np.array_equal(model.forward(x), out)


def test_s5_stateful_recurrent():
    model = ak.Model()
    model.add(ak.InputData((1, 6, 1), input_bits=8))
    model.add(ak.StatefulRecurrent(1, 1, activation=A.NoActivation, output_bits=16))
    _set(model.layers[1], in_proj=[1], out_proj=[1], A_real=[3], internal_state_outputs_shift=[-1])
    assert _run(model, [10, 0, 0, 0, 0, 0]).ravel().tolist() == [5, 8, 12, 18, 27, 41]


def test_s5_stateful_recurrent_subsample_keeps_every_nth_step():
    model = ak.Model()
    model.add(ak.InputData((1, 6, 1), input_bits=8))
    model.add(ak.StatefulRecurrent(1, 1, subsample=2, activation=A.NoActivation, output_bits=16))
    _set(model.layers[1], in_proj=[1], out_proj=[1], A_real=[3], internal_state_outputs_shift=[-1])
    assert model.output_shape == [1, 3, 1]
    assert _run(model, [10, 0, 0, 0, 0, 0]).ravel().tolist() == [8, 18, 41]
