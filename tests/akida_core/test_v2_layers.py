"""Akida 2.0 layer contract: constructor defaults and checks, exact-dtype variables, vendor crashes
refused with a clear error, input checks, output dtypes, temporal state, one generation per model."""
import numpy as np
import pytest

import akida_core as ak
from akida_core.errors import InputDataError, LayerParameterError, ModelStructureError

A = ak.ActivationType


def _after_input(layer, shape=(4, 4, 2), bits=8):
    model = ak.Model()
    model.add(ak.InputData(shape, input_bits=bits, name="in"))
    model.add(layer)
    return model


# --- constructors --------------------------------------------------------------------------------------------

def test_defaults_follow_the_sheet():
    conv = ak.Conv2D(4, 3)
    assert (conv.params.buffer_bits, conv.params.post_op_buffer_bits, conv.params.output_bits) == (28, 32, 8)
    assert conv.params.activation == A.ReLU and conv.params.padding == ak.Padding.Same
    assert ak.InputConv2D((8, 8, 3), 4, 3).params.buffer_bits == 32
    assert ak.Dense1D(3).params.activation == A.NoActivation
    assert ak.BufferTempConv(2, 3).params.buffer_bits == 32
    assert ak.StatefulRecurrent(2, 2).params.internal_state_bits == 16
    pooled = ak.Conv2D(4, 3, pool_type=ak.PoolType.Max, pool_size=2)
    assert pooled.params.pool_stride == 2  # -1 means pool_size


def test_default_names_are_type_and_position():
    model = _after_input(ak.Conv2D(2, 1))
    model.add(ak.DepthwiseConv2D(3))
    assert [lay.name for lay in model.layers[1:]] == ["Conv2D_2", "DepthwiseConv2D_3"]


@pytest.mark.parametrize("build, error, message", [
    (lambda: ak.Conv2D(4, 2), LayerParameterError, "Kernel size must be odd"),
    (lambda: ak.Conv2D(4, 3, kernel_stride=3), LayerParameterError, "equal to 1 or 2"),
    (lambda: ak.Conv2D(4, 5, kernel_stride=2), LayerParameterError, "kernel_stride=2 needs"),
    (lambda: ak.DepthwiseConv2D(1, kernel_stride=2), LayerParameterError, "kernel_stride=2 needs"),
    (lambda: ak.Conv2D(4, (3, 3)), TypeError, "plain int"),
    (lambda: ak.Conv2D(0, 3), LayerParameterError, "filters=0"),
    (lambda: ak.Conv2D(4, 3, output_bits=33), LayerParameterError, "output_bits parameter must be between 1 and 32"),
    (lambda: ak.Dense1D(4, buffer_bits=0), LayerParameterError, "buffer_bits parameter must be between 1 and 32"),
    (lambda: ak.Conv2D(4, 3, pool_type=ak.PoolType.Max), LayerParameterError, "Incoherent pooling"),
    (lambda: ak.Conv2D(4, 3, pool_type=ak.PoolType.Max, pool_size=2, pool_stride=3), LayerParameterError,
     "pool_stride=3"),
    (lambda: ak.InputConv2D((8, 8, 2), 4, 3), LayerParameterError, "1 or 3 channels"),
    (lambda: ak.InputConv2D((8, 8, 3), 4, 0), LayerParameterError, "kernel_size=0"),
    (lambda: ak.InputConv2D((8, 8, 3), 4, 3, pool_type=ak.PoolType.Average), LayerParameterError,
     "Global Average Pooling"),
    (lambda: ak.BufferTempConv(4, 11), LayerParameterError, "fifo_size must be between 2 and 10"),
    (lambda: ak.DepthwiseBufferTempConv(1), LayerParameterError, "fifo_size must be between 2 and 10"),
    (lambda: ak.Quantizer((4, 4, 1), 6, True), LayerParameterError, "bitwidth should be 4 or 8"),
    (lambda: ak.InputData((4, 4, 1), input_bits=0), LayerParameterError, "input_bits=0"),
    # sheet §7: the vendor computes garbage or crashes; we refuse, naming the parameter
    (lambda: ak.InputConv2D((8, 8, 3), 4, 3, padding=ak.Padding.SameUpper), LayerParameterError, "SameUpper"),
    (lambda: ak.Conv2D(4, 3, padding=ak.Padding.SameUpper, pool_type=ak.PoolType.Max, pool_size=2),
     LayerParameterError, "pool_size=2 with padding=Padding.SameUpper"),
    (lambda: ak.Conv2D(4, 3, pool_type=ak.PoolType.Average, pool_size=2), LayerParameterError, "Incoherent"),
    (lambda: ak.StatefulRecurrent(2, 2, internal_state_bits=8), LayerParameterError, "internal_state_bits=8"),
    (lambda: ak.Convolutional((3, 3), 4, padding=ak.Padding.SameUpper), LayerParameterError, "Akida 2.0 mode"),
])
def test_constructor_checks(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_even_and_large_input_conv_kernels_are_accepted():
    model = ak.Model()
    model.add(ak.InputConv2D((5, 5, 1), 2, 4, kernel_stride=3))
    assert model.output_shape == [2, 2, 2]


def test_valid_padding_without_output_raises():
    with pytest.raises(ModelStructureError, match="strictly positive"):
        _after_input(ak.Conv2D(2, 5, padding=ak.Padding.Valid))


# --- variables -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layer, expected", [
    (ak.Conv2D(3, 3), {"weights": ((3, 3, 2, 3), np.int8), "bias": ((3,), np.int8), "bias_shift": ((3,), np.uint8),
                       "input_shift": ((2,), np.uint8), "output_scales": ((3,), np.uint8),
                       "output_shift": ((3,), np.int8), "max_value": ((3,), np.uint8),
                       "max_value_shift": ((3,), np.uint8)}),
    (ak.DepthwiseConv2D(3, activation=A.LUT), {
        "weights": ((3, 3, 2, 1), np.int8), "bias": ((2,), np.int8), "bias_shift": ((2,), np.uint8),
        "input_shift": ((2,), np.uint8), "output_scales": ((2,), np.uint8), "output_shift": ((2,), np.int8),
        "activation_scales": ((2,), np.uint8), "activation_shift": ((2,), np.int8),
        "lut_values": ((2048,), np.int32)}),
    (ak.Dense1D(5), {"weights": ((32, 5), np.int8), "bias": ((5,), np.int8), "bias_shift": ((5,), np.uint8),
                     "input_shift": ((32,), np.uint8), "output_scales": ((5,), np.uint8),
                     "output_shift": ((5,), np.int8)}),
    (ak.BufferTempConv(3, 4, activation=A.NoActivation), {
        "weights": ((1, 1, 8, 3), np.int8), "bias": ((3,), np.int8), "bias_shift": ((3,), np.uint8),
        "input_shift": ((2,), np.uint8), "output_scales": ((3,), np.uint8), "output_shift": ((3,), np.int8)}),
    (ak.DepthwiseBufferTempConv(4, activation=A.NoActivation), {
        "weights": ((1, 1, 4, 2), np.int8), "bias": ((2,), np.int8), "bias_shift": ((2,), np.uint8),
        "input_shift": ((2,), np.uint8), "output_scales": ((2,), np.uint8), "output_shift": ((2,), np.int8)}),
    (ak.Conv2DTranspose(3, 4, activation=A.NoActivation), {
        "weights": ((4, 4, 2, 3), np.int8), "bias": ((3,), np.int8), "bias_shift": ((3,), np.uint8),
        "input_shift": ((2,), np.uint8), "output_scales": ((3,), np.uint8), "output_shift": ((3,), np.int8)}),
    (ak.Dequantizer(), {"scales": ((2,), np.float32)}),
])
def test_variables_have_exact_dtypes_and_shapes(layer, expected):
    model = _after_input(layer)
    got = {name: (value.shape, value.dtype) for name, value in model.layers[1].variables.items()}
    assert got == {name: (shape, np.dtype(dtype)) for name, (shape, dtype) in expected.items()}


def test_variable_defaults():
    conv = _after_input(ak.Conv2D(2, 1)).layers[1]
    assert conv.variables["output_scales"].tolist() == [1, 1] and conv.variables["max_value"].tolist() == [127, 127]
    assert conv.variables["max_value_shift"].tolist() == [31, 31] and not conv.variables["weights"].any()
    lut = _after_input(ak.Conv2D(2, 1, activation=A.LUT)).layers[1]
    assert lut.variables["lut_values"].tolist() == list(range(-1024, 1024))
    quant = ak.Model()
    quant.add(ak.Quantizer((2, 2, 3), 8, True))
    assert quant.layers[0].variables["scales"].tolist() == [0, 0, 0]
    assert _after_input(ak.Dequantizer()).layers[1].variables["scales"].tolist() == [1, 1]
    sr = ak.Model()
    sr.add(ak.InputData((1, 4, 2), input_bits=8))
    sr.add(ak.StatefulRecurrent(3, 2))
    names = sr.layers[1].variables.names
    assert {"in_proj", "out_proj", "A_real", "A_imag", "new_state_scale", "new_state_shift",
            "internal_state_outputs_shift"} <= set(names)
    assert sr.layers[1].variables["A_real"].dtype == np.int16 and sr.layers[1].variables["in_proj"].shape == (2, 3)


def test_variable_assignment_errors_name_the_variable():
    conv = _after_input(ak.Conv2D(2, 1)).layers[1]
    with pytest.raises(LayerParameterError, match="Unsupported variable type for bias expected int8 received int32"):
        conv.variables["bias"] = np.zeros(2, np.int32)
    with pytest.raises(LayerParameterError, match=r"bias'.*Unexpected tensor shape: \(3,\) instead of \(2,\)"):
        conv.variables["bias"] = np.zeros(3, np.int8)
    with pytest.raises(KeyError, match="No such variable 'foo'"):
        conv.variables["foo"] = np.zeros(2, np.int8)


@pytest.mark.parametrize("bits, low, high", [(8, -128, 127), (4, -8, 7), (2, -8, 7)])
def test_weight_ranges_of_conv_depthwise_and_dense(bits, low, high):
    for layer in (ak.Conv2D(1, 1, weights_bits=bits), ak.DepthwiseConv2D(1, weights_bits=bits),
                  ak.Dense1D(1, weights_bits=bits)):
        lay = _after_input(layer, shape=(1, 1, 1)).layers[1]
        lay.variables["weights"] = np.full(lay.variables["weights"].shape, high, np.int8)
        if high < 127:
            with pytest.raises(LayerParameterError, match=str(high)):
                lay.variables["weights"] = np.full(lay.variables["weights"].shape, high + 1, np.int8)
    transpose = _after_input(ak.Conv2DTranspose(1, 1, weights_bits=4), shape=(1, 1, 1)).layers[1]
    transpose.variables["weights"] = np.full((1, 1, 1, 1), 100, np.int8)  # not range-checked


@pytest.mark.parametrize("name, value", [("output_shift", 32), ("output_shift", -32), ("bias_shift", 32),
                                         ("input_shift", 40), ("max_value_shift", 32)])
def test_shifts_of_32_or_more_are_refused_at_forward(name, value):
    model = _after_input(ak.Conv2D(1, 1), shape=(1, 1, 1))
    conv = model.layers[1]
    dtype = conv.variables[name].dtype
    conv.variables[name] = np.array([value], dtype)
    with pytest.raises(LayerParameterError, match=f"variable '{name}'.*31"):
        model.forward(np.zeros((1, 1, 1, 1), np.int8))


# --- inbounds and vendor crashes -------------------------------------------------------------------------------

def test_fifo_layers_refuse_inputs_wider_than_eight_bits():
    model = _after_input(ak.Conv2D(2, 1, output_bits=16))
    with pytest.raises(ModelStructureError, match="at most 8-bit inputs"):
        model.add(ak.BufferTempConv(2, 3))


def test_add_checks_shapes_and_bits():
    model = _after_input(ak.Conv2D(3, 1, name="c3"))
    with pytest.raises(ModelStructureError, match="same output_size"):
        model.add(ak.Add(), [model.get_layer("in"), model.get_layer("c3")])
    model.add(ak.Conv2D(2, 1, output_bits=16, name="wide"), [model.get_layer("in")])
    with pytest.raises(ModelStructureError, match="at most 8-bit"):
        model.add(ak.Add(), [model.get_layer("in"), model.get_layer("wide")])
    with pytest.raises(ModelStructureError, match="exactly 2 inbound"):
        model.add(ak.Add(), [model.get_layer("in")])


def test_concatenate_checks_bits_sign_and_sixteen_bits():
    model = _after_input(ak.Conv2D(3, 1, output_bits=4, name="u4"))
    with pytest.raises(ModelStructureError, match="same output_bits and signedness"):
        model.add(ak.Concatenate(), [model.get_layer("in"), model.get_layer("u4")])
    model.add(ak.Conv2D(2, 1, output_bits=16, name="a"), [model.get_layer("in")])
    model.add(ak.Conv2D(2, 1, output_bits=16, name="b"), [model.get_layer("in")])
    with pytest.raises(ModelStructureError, match="16-bit"):
        model.add(ak.Concatenate(), [model.get_layer("a"), model.get_layer("b")])


def test_stateful_recurrent_inbound_and_subsample():
    model = _after_input(ak.Conv2D(2, 1), shape=(1, 6, 2))
    with pytest.raises(ModelStructureError, match="InputData or another StatefulRecurrent"):
        model.add(ak.StatefulRecurrent(2, 2))
    model = ak.Model()
    model.add(ak.InputData((1, 6, 2), input_bits=8))
    with pytest.raises(ModelStructureError, match="subsample=4 must divide"):
        model.add(ak.StatefulRecurrent(2, 2, subsample=4))


def test_nothing_may_follow_a_dequantizer_and_predict_needs_one():
    model = _after_input(ak.Conv2D(2, 1))
    with pytest.raises(ModelStructureError, match="Expected a Dequantizer"):
        model.predict(np.zeros((1, 4, 4, 2), np.int8))
    model.add(ak.Dequantizer())
    with pytest.raises(ModelStructureError, match="must be the last layer"):
        model.add(ak.Conv2D(2, 1))


def test_input_conv2d_and_quantizer_only_first():
    model = _after_input(ak.Conv2D(2, 1))
    with pytest.raises(ModelStructureError, match="input layer"):
        model.add(ak.Quantizer((4, 4, 2), 8, True))
    with pytest.raises(ModelStructureError, match="first layer must be an input layer"):
        ak.Model().add(ak.Conv2D(2, 1))


def _quantizer_then_input_conv(signed=False, bits=8, shape=(4, 4, 3)):
    model = ak.Model()
    model.add(ak.Quantizer((4, 4, 3), bits, signed, name="q"))
    model.add(ak.InputConv2D(shape, 2, 3, name="conv"))
    return model


def test_input_conv2d_may_read_an_unsigned_8_bit_quantizer():
    model = _quantizer_then_input_conv()
    quantizer, conv = model.layers
    assert conv.inbounds == [quantizer] and conv.input_bits == 8 and not conv.input_signed
    quantizer.set_variable("scales", np.full(3, 4.0, np.float32))
    quantizer.set_variable("zero_points", np.array([10, 20, 30], np.uint8))
    conv.set_variable("weights", np.full((3, 3, 3, 2), -1, np.int8))
    conv.set_variable("padding_value", np.array([1, 2, 3], np.uint8))
    conv.set_variable("bias", np.full(2, 127, np.int8))
    conv.set_variable("bias_shift", np.full(2, 2, np.uint8))
    conv.set_variable("output_shift", np.full(2, -1, np.int8))
    # x = 0.25: codes 1 + zp = [11, 21, 31] (sum 63), padded cells [1, 2, 3] (sum 6), bias 508
    out = model.forward(np.full((1, 4, 4, 3), 0.25, np.float32))
    corner, edge = 508 - (4 * 63 + 5 * 6), 508 - (6 * 63 + 3 * 6)   # 226, 112
    assert out[0, 0, 0, 0] == (corner + 1) // 2 and out[0, 0, 1, 0] == (edge + 1) // 2
    assert out[0, 1, 1, 0] == 0                                      # 508 - 9 * 63 < 0: ReLU


@pytest.mark.parametrize("signed, bits, shape, message", [
    (True, 8, (4, 4, 3), "outputs signed 8-bit values; allowed: output_bits=8, output_signed=False"),
    (False, 4, (4, 4, 3), "outputs unsigned 4-bit values"),
    (False, 8, (4, 4, 1), r"input_shape \(4, 4, 1\) differs from the output \(4, 4, 3\)")])
def test_input_conv2d_after_a_quantizer_needs_its_uint8_codes(signed, bits, shape, message):
    with pytest.raises(ModelStructureError, match=message):
        _quantizer_then_input_conv(signed, bits, shape)


def test_input_conv2d_reads_only_a_lone_leading_quantizer():
    model = _quantizer_then_input_conv()
    with pytest.raises(ModelStructureError, match="input layer"):
        model.add(ak.InputConv2D((4, 4, 1), 2, 1))


# --- model inputs and outputs -------------------------------------------------------------------------------------

@pytest.mark.parametrize("bits, x, message", [
    (8, np.zeros((1, 4, 4, 2), np.uint8), "Unsupported input type uint8. Input type should be int8"),
    (4, np.zeros((1, 4, 4, 2), np.int8), "Input type should be uint8"),
    (4, np.full((1, 4, 4, 2), 16, np.uint8), r"range \(0, 15\)"),
    (6, np.full((1, 4, 4, 2), 32, np.int8), r"range \(-32, 31\)"),
    (8, np.zeros((1, 4, 4, 3), np.int8), r"Input shape must be \(N,4,4,2\)"),
    (8, np.zeros((4, 4, 2), np.int8), "Input shape must be"),
    (8, [[1]], "numpy array"),
])
def test_forward_input_checks(bits, x, message):
    model = _after_input(ak.Conv2D(2, 1), bits=bits)
    with pytest.raises(InputDataError, match=message):
        model.forward(x)


def test_input_conv2d_takes_uint8_and_wide_input_data_takes_any_int8():
    model = ak.Model()
    model.add(ak.InputConv2D((2, 2, 1), 1, 1))
    with pytest.raises(InputDataError, match="should be uint8"):
        model.forward(np.zeros((1, 2, 2, 1), np.int8))
    wide = _after_input(ak.Conv2D(1, 1), shape=(1, 1, 1), bits=12)
    assert wide.forward(np.array([[[[-128]]]], np.int8)).shape == (1, 1, 1, 1)


@pytest.mark.parametrize("bits, dtype", [(1, np.uint8), (4, np.uint8), (5, np.int8), (8, np.int8), (9, np.int32),
                                         (15, np.int32), (16, np.int16), (17, np.int32), (32, np.int32)])
def test_output_dtype_by_width(bits, dtype):
    model = _after_input(ak.Conv2D(1, 1, output_bits=bits), shape=(1, 1, 1))
    assert model.forward(np.zeros((1, 1, 1, 1), np.int8)).dtype == dtype


# --- temporal state ---------------------------------------------------------------------------------------------------

def _temporal_model():
    model = ak.Model()
    model.add(ak.InputData((2, 2, 2), input_bits=8))
    model.add(ak.BufferTempConv(2, 3, activation=A.NoActivation, name="btc"))
    model.add(ak.DepthwiseBufferTempConv(2, activation=A.NoActivation, output_bits=16, name="dbtc"))
    rng = np.random.default_rng(0)
    for layer in model.layers[1:]:
        shape = layer.variables["weights"].shape
        layer.variables["weights"] = rng.integers(-5, 6, shape).astype(np.int8)
    return model, rng.integers(-50, 50, (5, 2, 2, 2)).astype(np.int8)


def test_temporal_state_persists_across_calls_and_resets():
    model, x = _temporal_model()
    whole = model.forward(x)
    model.reset_states()
    parts = np.concatenate([model.forward(x[:2]), model.forward(x[2:])])
    assert np.array_equal(whole, parts)
    again = model.forward(x)
    assert not np.array_equal(again, whole)  # the FIFOs still hold the last steps
    model.get_layer("btc").reset_state()
    model.get_layer("dbtc").variables["bias"] = np.zeros(2, np.int8)  # setting a variable resets too
    assert np.array_equal(model.forward(x), whole)


def test_batch_size_chunks_keep_the_time_order():
    model, x = _temporal_model()
    whole = model.forward(x)
    model.reset_states()
    assert np.array_equal(model.forward(x, batch_size=2), whole)


# --- one generation per model ------------------------------------------------------------------------------------------

def test_a_model_is_all_akida_1_or_all_akida_2():
    v2 = _after_input(ak.Conv2D(2, 1))
    assert v2.ip_version == ak.IpVersion.v2 and v2.layers[1].ip_version == ak.IpVersion.v2
    with pytest.raises(ModelStructureError, match="all Akida 1.0 or all Akida 2.0"):
        v2.add(ak.Convolutional((3, 3), 4))
    v1 = ak.Model()
    v1.add(ak.InputData((4, 4, 1), input_bits=4))
    v1.add(ak.Convolutional((3, 3), 4))
    assert v1.ip_version == ak.IpVersion.v1
    with pytest.raises(ModelStructureError, match="all Akida 1.0 or all Akida 2.0"):
        v1.add(ak.Conv2D(2, 1))


def test_akida_1_models_stay_sequential():
    model = ak.Model()
    model.add(ak.InputData((4, 4, 1), input_bits=4, name="in"))
    model.add(ak.Convolutional((3, 3), 4, act_bits=4))
    with pytest.raises(ModelStructureError, match="sequential"):
        model.add(ak.Convolutional((3, 3), 4), [model.get_layer("in")])


def test_v2_models_cannot_be_mapped_or_compiled_yet():
    model = _after_input(ak.Conv2D(2, 1))
    with pytest.raises(ak.MappingError, match="Akida 2.0"):
        model.map(ak.AKD1000())
    model.map(None)
    with pytest.raises(ModelStructureError, match="Akida 1.0 feature"):
        model.compile(ak.AkidaUnsupervised(2))


# --- geometry of SameUpper and pooling, float inputs --------------------------------------------------------------

@pytest.mark.parametrize("size, kernel, stride, expected_before", [(4, 3, 2, 1), (5, 5, 1, 2), (4, 1, 2, 0),
                                                                    (6, 4, 2, 1), (7, 7, 2, 3)])
def test_same_upper_pads_floor_k_minus_1_over_2_before(size, kernel, stride, expected_before):
    from akida_core.kernels import padding_amounts, output_size
    before, after = padding_amounts(size, kernel, stride, ak.Padding.SameUpper)
    out = output_size(size, kernel, stride, ak.Padding.SameUpper)
    assert before == expected_before and out == -(-size // stride)
    assert (out - 1) * stride + kernel <= size + before + after  # the last window fits


@pytest.mark.parametrize("padding, expected", [(ak.Padding.Same, [2, 4]), (ak.Padding.SameUpper, [1, 3])])
def test_same_pads_the_odd_cell_after_and_same_upper_before(padding, expected):
    """Row [1, 2, 3, 4], kernel 3 stride 2, only the centre tap: Same pads 0 before (1 after), so the
    windows centre on x[1], x[3]; SameUpper pads floor((3 - 1) / 2) = 1 before: x[0], x[2]."""
    model = _after_input(ak.Conv2D(1, 3, kernel_stride=2, padding=padding, activation=A.NoActivation),
                         shape=(1, 4, 1))
    weights = np.zeros((3, 3, 1, 1), np.int8)
    weights[1, 1] = 1
    model.layers[1].variables["weights"] = weights
    assert model.forward(np.array([1, 2, 3, 4], np.int8).reshape(1, 1, 4, 1)).ravel().tolist() == expected


def test_quantizer_refuses_non_finite_and_wrong_dtype():
    model = ak.Model()
    model.add(ak.Quantizer((1, 1, 2), 8, True))
    with pytest.raises(InputDataError, match="NaN or inf"):
        model.forward(np.array([[[[np.nan, 1]]]], np.float32))
    with pytest.raises(InputDataError, match="Input type should be float32"):
        model.forward(np.zeros((1, 1, 1, 2), np.float64))


def test_huge_float_inputs_saturate():
    model = ak.Model()
    model.add(ak.Quantizer((1, 1, 2), 8, True))
    model.layers[0].variables["scales"] = np.array([1, 1], np.float32)
    assert model.forward(np.array([[[[3e38, -3e38]]]], np.float32)).ravel().tolist() == [127, -128]
