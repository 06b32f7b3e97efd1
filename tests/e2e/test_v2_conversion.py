"""Akida 2.0: quantized Keras (quantizeml.v2) -> akida_core, identical integer outputs; MetaTF's
exactness misses (conversion-v2.md §6) each pass here."""
import keras
import numpy as np
import pytest

import akida_core
from cnn2snn import AkidaVersion, ConversionError, convert, registered_patterns, set_akida_version
from quantizeml.errors import QuantizationError
from cnn2snn.v2 import plan
from quantizeml.models import QuantizationParams, quantize
from quantizeml.v2 import layers as ql
from quantizeml.v2 import strip_float_tail

from ..quantizeml.v2_models import branches_concat, decoder, images, residual_separable


def integer_outputs(qmodel, akida_model, x):
    """(Keras integers before the Dequantizer, Akida integers before its Dequantizer)."""
    integer_part = strip_float_tail(qmodel)
    keras_ints = keras.Model(qmodel.inputs, integer_part.layers[-2].output).predict(x, verbose=0)
    akida_model.pop_layer()
    akida_ints = akida_model.forward(x if isinstance(qmodel.layers[1], ql.InputQuantizer)
                                     else x.astype(np.uint8))
    return keras_ints.reshape(akida_ints.shape), akida_ints


def assert_exact(qmodel, x):
    """The Akida model's dequantized outputs and integers equal the quantized Keras model's up
    to its Dequantizer (a final float softmax after it is not converted)."""
    akida_model = convert(qmodel)
    keras_float = strip_float_tail(qmodel).predict(x, verbose=0)
    akida_float = akida_model.forward(x if isinstance(qmodel.layers[1], ql.InputQuantizer)
                                      else x.astype(np.uint8))
    np.testing.assert_array_equal(keras_float.reshape(akida_float.shape), akida_float)
    keras_ints, akida_ints = integer_outputs(qmodel, akida_model, x)
    np.testing.assert_array_equal(keras_ints, akida_ints)
    return akida_model


SCHEMES = {"8bit-per-axis": {}, "8bit-per-tensor": {"per_tensor_activations": True},
           "4bit": {"weight_bits": 4, "activation_bits": 4, "output_bits": 4},
           "4bit-weights-8bit-act": {"weight_bits": 4, "input_weight_bits": 4},
           "last-8": {"last_output_bits": 8}, "last-16": {"last_output_bits": 16}}


@pytest.fixture(scope="module")
def residual_data():
    return residual_separable(), images(48)


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_residual_separable_is_bit_exact(residual_data, scheme):
    model, x = residual_data
    qmodel = quantize(model, qparams=QuantizationParams(**SCHEMES[scheme]), samples=x[:32])
    akida_model = assert_exact(qmodel, x)
    kinds = [layer.layer_type.name for layer in akida_model.layers]
    assert kinds[0] == "InputConv2D" and "Add" in kinds and "DepthwiseConv2D" in kinds


@pytest.mark.parametrize("per_tensor", [False, True])
def test_branches_concat_flatten_dense_is_bit_exact(per_tensor):
    # §6 #3: per-axis Flatten -> Dense: the Dense1D gets one input_shift per flattened input.
    model, x = branches_concat(), images(32, size=12, channels=1)
    branch = model.layers[3]  # the Conv2D of the max-pool branch: 16x wider range
    assert isinstance(branch, keras.layers.Conv2D)
    branch.set_weights([w * 16 for w in branch.get_weights()])
    qmodel = quantize(model, qparams=QuantizationParams(per_tensor_activations=per_tensor),
                      samples=x)
    akida_model = assert_exact(qmodel, x)
    dense = next(layer for layer in akida_model.layers if layer.layer_type.name == "Dense1D")
    # the branches' fractional bits differ (also per tensor: the concatenation is per channel)
    assert np.any(dense.variables["input_shift"] > 0)


def test_decoder_float_inputs_ties_and_out_of_range():
    # §6 #6 (ties x·2**f = k + 1/2, half away from zero) and #7 (inputs below the calibrated
    # minimum clip as on the chip).
    model = decoder()
    rng = np.random.default_rng(1)
    calibration = rng.normal(0, 1, (16, 6, 6, 4)).astype(np.float32)
    # int8: the 'same' first Conv2D on 4 channels pads with code 0 (uint8 would warn, then
    # quantize signed too; tests/e2e/test_v2_float_inputs.py covers the zero points)
    qmodel = quantize(model, qparams=QuantizationParams(input_dtype="int8"), samples=calibration)
    frac = qmodel.layers[1].frac_bits.numpy()[0]
    ties = (rng.integers(-100, 100, (4, 6, 6, 4)) + 0.5) * 2.0**-frac
    wide = calibration[:4] * 4.0
    akida_model = assert_exact(qmodel, np.concatenate([ties, wide]).astype(np.float32))
    assert [layer.layer_type.name for layer in akida_model.layers][:2] == ["Quantizer", "Conv2D"]


def _single_conv(inputs, weights, scale, shift, pool=akida_core.PoolType.NoPooling):
    """InputData(8) > Conv2D 1x1 (NoActivation) with the given integers, Akida and Keras."""
    channels = inputs.shape[-1]
    akida_model = akida_core.Model()
    akida_model.add(akida_core.InputData(inputs.shape[1:], input_bits=8))
    conv = akida_core.Conv2D(1, 1, activation=akida_core.ActivationType.NoActivation,
                             output_bits=8, pool_type=pool)
    akida_model.add(conv)
    conv.set_variable("weights", np.asarray(weights, np.int8).reshape(1, 1, channels, 1))
    conv.set_variable("output_scales", np.array([scale], np.uint8))
    conv.set_variable("output_shift", np.array([shift], np.int8))
    layer = ql.QuantizedConv2D(1, 1, use_bias=False, output_bits=8)
    layer.build((None,) + inputs.shape[1:])
    layer.set_weights([np.asarray(weights, np.float64).reshape(1, 1, channels, 1)] +
                      layer.get_weights()[1:])
    layer.weight_scale.assign([1.0])
    layer.set_output_quantizer([scale], [shift])
    x = inputs.astype(np.float64)
    if pool == akida_core.PoolType.Average:
        gap = ql.QuantizedGlobalAveragePooling2D(output_bits=8)
        gap.build((None,) + inputs.shape[1:-1] + (1,))
        gap.set_output_quantizer([scale], [shift])
        layer.output_bits = None
        keras_out = gap(layer(x)).numpy()
    else:
        keras_out = layer(x).numpy()
    return keras_out.ravel(), akida_model.forward(inputs).ravel()


def test_products_above_2_24_are_exact():
    # §6 #1: A = 98 455, S = 217, shift -18: exact 21 364 735 / 2**18 = 81.49... -> 81 (a float32
    # product, 21 364 736, gives MetaTF's Keras 82).
    x = np.array([127] * 6 + [41], np.int8).reshape(1, 1, 1, 7)
    keras_out, akida_out = _single_conv(x, [127] * 6 + [41], 217, -18)
    assert keras_out.tolist() == akida_out.tolist() == [81]


def test_gap_saturates_at_32_bits_as_akida():
    # §6 #4: a 64x64 global sum times the scale saturates at 2**31 - 1 (MetaTF's Keras: 2**32).
    x = np.full((1, 64, 64, 1), 127, np.int8)
    keras_out, akida_out = _single_conv(x, [127], 255, -24, akida_core.PoolType.Average)
    assert keras_out.tolist() == akida_out.tolist() == [127]  # sat_8(R(2**31 - 1, -24)) = 127


def test_conversion_issues_and_generation():
    model, x = residual_separable(), images(16)
    qmodel = quantize(model, qparams=QuantizationParams(weight_bits=6), samples=x)
    with pytest.raises(ConversionError, match="4- or 8-bit") as err:
        convert(qmodel)
    assert len(err.value.issues) >= 5  # every 6-bit layer at once
    from cnn2snn import check_model_compatibility
    assert [i.rule for i in check_model_compatibility(qmodel)] == \
        [i.rule for i in err.value.issues]
    qmodel = quantize(model, qparams=QuantizationParams(), samples=x)
    assert check_model_compatibility(qmodel) == []
    with set_akida_version(AkidaVersion.v1):
        with pytest.raises(ConversionError, match="Akida 2.0 scheme"):
            convert(qmodel)
    with pytest.raises(ConversionError, match="Akida 1.0 is targeted"):
        convert(qmodel, target="AKD1000")


def test_concatenate_of_unequal_bits_is_an_issue():
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    a = keras.layers.Conv2D(4, 1, activation="relu")(x)
    b = keras.layers.Conv2D(4, 1)(x)
    x = keras.layers.Concatenate(name="concat")([a, b])
    x = keras.layers.Conv2D(2, 1)(x)
    qmodel = quantize(keras.Model(inp, x), qparams=QuantizationParams(activation_bits=4),
                      samples=images(8, size=8))
    with pytest.raises(ConversionError, match="same output bits") as err:
        convert(qmodel)
    assert err.value.issues[0].rule == "concatenate_bits"


def test_every_v2_pattern_is_used():
    model, x = residual_separable(), images(16)
    used = set()
    for qmodel in (quantize(model, qparams=QuantizationParams(), samples=x),
                   quantize(branches_concat(), qparams=QuantizationParams(),
                            samples=images(16, size=12, channels=1)),
                   quantize(decoder(), qparams=QuantizationParams(),
                            samples=np.random.default_rng(0).normal(0, 1, (8, 6, 6, 4)))):
        used |= {block.pattern.name for block in plan(qmodel)[0]}
    assert used == {p.name for p in registered_patterns("v2")}


def test_even_kernels_three_way_concat_and_transpose_k2_are_exact():
    # MetaTF's sanitizer: even kernels (stride 1, 'same') padded to odd, Concatenate of 3 split,
    # Conv2DTranspose k2 padded to k3 (conversion-v2.md §4): accepted and exact here too.
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255)(inp)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(x)
    a = keras.layers.Conv2D(4, 2, padding="same", activation="relu")(x)
    b = keras.layers.DepthwiseConv2D(4, padding="same")(x)
    b = keras.layers.ReLU()(b)
    c = keras.layers.Conv2D(2, 1, activation="relu")(x)
    x = keras.layers.Concatenate()([a, b, c])
    x = keras.layers.Conv2DTranspose(4, 2, strides=2, padding="same")(x)
    qmodel = quantize(keras.Model(inp, x), qparams=QuantizationParams(), samples=images(16, 8))
    akida_model = assert_exact(qmodel, images(8, 8, seed=1))
    kinds = [layer.layer_type.name for layer in akida_model.layers]
    assert kinds.count("Concatenate") == 2 and "Conv2DTranspose" in kinds


def test_wide_inner_outputs_are_refused():
    # MetaTF refuses activation_bits 16 (conversion-v2.md §5): Akida 2.0 inputs are <= 8 bits.
    model, x = residual_separable(), images(16)
    qmodel = quantize(model, qparams=QuantizationParams(activation_bits=16), samples=x)
    with pytest.raises(ConversionError, match="at most 8 bits"):
        convert(qmodel)


def test_saved_model_loads_safely_and_converts_from_the_command_line(tmp_path, capsys):
    from cnn2snn.cli import main as cnn2snn_main
    from quantizeml.models import load_model, save_model
    model, x = residual_separable(), images(16)
    qmodel = quantize(model, qparams=QuantizationParams(), samples=x)
    path = save_model(qmodel, str(tmp_path / "q.keras"))
    loaded = load_model(path)  # the safe loader allows quantizeml.v2 classes
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), qmodel.predict(x, verbose=0))
    assert cnn2snn_main(["convert", "-m", path]) == 0
    assert "successfully converted" in capsys.readouterr().out
    reloaded = akida_core.Model(str(tmp_path / "q.fbz"))
    np.testing.assert_array_equal(reloaded.predict(x.astype(np.uint8)).reshape(len(x), -1),
                                  qmodel.predict(x, verbose=0))


def test_rescaling_offset_folds_into_bias_and_padding_value():
    # MetaTF's Rescaling(1/127.5, -1) inputs: the offset joins the first conv's bias and the
    # InputConv2D pads with the uint8 value of a real 0 (here 127.5 -> 128).
    keras.utils.set_random_seed(3)
    inp = keras.Input((12, 12, 3))
    x = keras.layers.Rescaling(1 / 127.5, -1.0)(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(4)(x))
    x = images(24, size=12)
    qmodel = quantize(model, qparams=QuantizationParams(), samples=x)
    assert qmodel.get_layer(model.layers[2].name).padding_value == 128
    ref, out = model.predict(x, verbose=0), qmodel.predict(x, verbose=0)
    # close to float (small ranges keep few fractional bits: f <= value bits, as MetaTF)
    assert np.abs(ref - out).max() < 0.25 * np.abs(ref).max()
    akida_model = assert_exact(qmodel, x)
    assert akida_model.layers[0].variables["padding_value"].tolist() == [128] * 3


def test_zero_padding_before_a_strided_conv_folds_to_same():
    # keras.applications' ZeroPadding2D(((0, 1), (0, 1))) > Conv2D(3, 2, 'valid'), accepted by
    # MetaTF: folded to a 'same' convolution, exact.
    keras.utils.set_random_seed(4)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255)(inp)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)))(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="valid", activation="relu")(x)
    model = keras.Model(inp, keras.layers.Conv2D(2, 1)(x))
    x = images(16, size=8)
    qmodel = quantize(model, qparams=QuantizationParams(), samples=x)
    ref, out = model.predict(x, verbose=0), qmodel.predict(x, verbose=0)
    assert np.abs(ref - out).max() < 0.25 * np.abs(ref).max()
    assert_exact(qmodel, x)
    bad = keras.Model(inp, keras.layers.Conv2D(2, 3)(keras.layers.ZeroPadding2D(2)(inp)))
    with pytest.raises(QuantizationError, match="ZeroPadding2D"):
        quantize(bad, qparams=QuantizationParams(), samples=x)


@pytest.mark.parametrize("size", [8, 9])
def test_depthwise_k5_stride_2_is_split_and_exact(size):
    # MetaTF: DW k5 s2 -> DW k5 s1 + identity DW 3x3 s2 (accepted, exact); the split equals the
    # float layer for even and odd sizes.
    keras.utils.set_random_seed(5)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255)(inp)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(5, strides=2, padding="same", name="dw5")(x)
    x = keras.layers.ReLU()(x)
    model = keras.Model(inp, keras.layers.Conv2D(2, 1)(x))
    x = images(16, size=size)
    qmodel = quantize(model, qparams=QuantizationParams(), samples=x)
    assert qmodel.get_layer("dw5_stride").strides == (2, 2)
    ref, out = model.predict(x, verbose=0), qmodel.predict(x, verbose=0)
    assert np.abs(ref - out).max() < 0.25 * np.abs(ref).max()
    assert_exact(qmodel, x)


def test_converted_residual_model_maps_in_hardware_on_an_akida2_device(residual_data):
    # 1x1 convolutions are written with Same padding (as MetaTF): Akida 2.0 maps only Same
    model, x = residual_data
    akida_model = convert(quantize(model, qparams=QuantizationParams(), samples=x[:32]))
    before = akida_model.predict(x.astype(np.uint8))
    akida_model.map(akida_core.SixNodesIPv2(), hw_only=True)
    assert all(s.backend.name == "Hardware" for s in akida_model.sequences)
    np.testing.assert_array_equal(akida_model.predict(x.astype(np.uint8)), before)


@pytest.mark.parametrize("fused", [False, True])
def test_final_softmax_is_kept_by_quantize_and_left_out_by_convert(fused):
    # MetaTF: quantize keeps the softmax in float after the Dequantizer, convert leaves it out
    # with a note; the integers and dequantized scores before it are bit-exact.
    from cnn2snn import ConversionWarning, check_model_compatibility
    head = keras.layers.Dense(10, activation="softmax" if fused else None, name="head")
    model = residual_separable()
    x = model.get_layer("global_average_pooling2d").output
    out = head(x) if fused else keras.layers.Softmax(name="softmax")(head(x))
    model = keras.Model(model.inputs, out)
    x = images(32)
    qmodel = quantize(model, qparams=QuantizationParams(), samples=x)
    np.testing.assert_allclose(qmodel.predict(x, verbose=0).sum(-1), 1.0, rtol=1e-5)
    with pytest.warns(ConversionWarning, match="final softmax.*same argmax") as record:
        akida_model = convert(qmodel)
    assert len(record) == 1
    assert akida_model.layers[-1].layer_type.name == "Dequantizer"
    np.testing.assert_array_equal(akida_model.predict_classes(x.astype(np.uint8)),
                                  qmodel.predict(x, verbose=0).argmax(-1))
    with pytest.warns(ConversionWarning, match="final softmax"):
        assert_exact(qmodel, x)
    assert check_model_compatibility(qmodel) == []


def test_akidanet_like_bench_model_has_live_outputs_and_is_exact():
    # bench/akida2.py's exactness figure means something only if its outputs are not constant
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
    from bench.akida2 import timing_row
    _, _, layers, exact, distinct = timing_row(samples=64)
    assert exact and layers > 20
    assert distinct > 10 * 8  # most of the 64 x 10 dequantized outputs differ


def _flatten_fan_out(flatten, merge):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = flatten(name="flat")(x)
    a = keras.layers.Dense(6, activation="relu", name="d1")(x)
    b = keras.layers.Dense(6, activation="relu", name="d2")(x)
    return keras.Model(inputs, merge([a, b]))


@pytest.mark.parametrize("flatten", [keras.layers.Flatten,
                                     lambda name: keras.layers.Reshape((-1,), name=name)])
@pytest.mark.parametrize("merge", [keras.layers.Add, keras.layers.Concatenate])
def test_flatten_feeding_two_dense_layers_is_part_of_both(flatten, merge):
    # each Dense1D reads the convolution (its own copy of the Flatten), not the other Dense
    keras.utils.set_random_seed(4)
    qmodel = quantize(_flatten_fan_out(flatten, merge()), qparams=QuantizationParams(),
                      samples=images(32, size=8))
    blocks, issues = plan(qmodel)
    assert issues == []
    chains = {block.name: (block.chain, [src.name for src in block.inbounds])
              for block in blocks}
    conv = blocks[0].name
    assert chains["d1"] == ("flat > d1 > d1_relu", [conv])
    assert chains["d2"] == ("flat > d2 > d2_relu", [conv])
    assert "flat" not in chains
    akida_model = assert_exact(qmodel, images(32, size=8))
    dense = [layer for layer in akida_model.layers if layer.layer_type.name == "Dense1D"]
    assert [[src.name for src in layer.inbounds] for layer in dense] == [[conv], [conv]]


_ACTIVATED_FLATTENS = {
    "Conv > Flatten > ReLU > Dense": lambda: [
        keras.layers.Conv2D(4, 3, padding="same"), keras.layers.Flatten(),
        keras.layers.ReLU(name="act"), keras.layers.Dense(5)],
    "Conv > Reshape((-1,)) > ReLU6 > Dense": lambda: [
        keras.layers.Conv2D(4, 3, padding="same"), keras.layers.Reshape((-1,)),
        keras.layers.ReLU(6.0, name="act"), keras.layers.Dense(5)],
    "Conv > Flatten > gelu > Dense": lambda: [
        keras.layers.Conv2D(4, 3, padding="same"), keras.layers.Flatten(),
        keras.layers.Activation("gelu", name="act"), keras.layers.Dense(5)],
    "Dense > Flatten > ReLU > Dense": lambda: [
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"), keras.layers.Flatten(),
        keras.layers.Dense(8), keras.layers.Flatten(), keras.layers.ReLU(name="act"),
        keras.layers.Dense(5)],
}


@pytest.mark.parametrize("case", list(_ACTIVATED_FLATTENS))
def test_activation_after_a_flatten_moves_before_it_and_is_exact(case):
    # An activation on a flat tensor cannot get an identity 1×1 Conv2D: Flatten > ReLU is
    # ReLU > Flatten, so the activation joins the neural layer's block (MetaTF: Dense [> ReLU]).
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((8, 8, 3))] + _ACTIVATED_FLATTENS[case]())
    x = images(32, size=8)
    qmodel = quantize(model, qparams=QuantizationParams(), samples=x)
    names = [layer.name for layer in qmodel.layers]
    assert not any(name.endswith("identity_conv") for name in names)
    assert len(qmodel.get_layer("act").output.shape) == len(qmodel.get_layer("act").input.shape)
    reference = model.predict(x, verbose=0)
    assert np.abs(reference - qmodel.predict(x, verbose=0)).max() < 0.05 * np.abs(reference).max()
    akida_model = assert_exact(qmodel, x)
    assert akida_model.layers[-1].layer_type.name == "Dense1D"  # Dequantizer popped


def test_relu_after_the_flatten_of_an_add_gets_an_identity_conv_before_the_flatten():
    keras.utils.set_random_seed(6)
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    b = keras.layers.Conv2D(4, 1, activation="relu")(a)
    x = keras.layers.Flatten()(keras.layers.Add(name="add")([a, b]))
    x = keras.layers.ReLU(name="act")(x)
    model = keras.Model(inputs, keras.layers.Dense(5)(x))
    x = images(32, size=8)
    qmodel = quantize(model, qparams=QuantizationParams(), samples=x)
    assert isinstance(qmodel.get_layer("add_identity_conv"), ql.QuantizedConv2D)
    assert len(qmodel.get_layer("act").output.shape) == 4
    assert_exact(qmodel, x)


def test_a_final_flatten_read_by_no_dense_is_a_clear_issue():
    # Conv > Flatten > ReLU is Conv > ReLU > Flatten: quantized; Akida has no flatten layer
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, padding="same"),
                              keras.layers.Flatten(name="flat"), keras.layers.ReLU()])
    qmodel = quantize(model, qparams=QuantizationParams(), samples=images(8, size=8))
    with pytest.raises(ConversionError) as err:
        convert(qmodel)
    assert [issue.rule for issue in err.value.issues] == ["flatten"]
    assert "'flat' (Flatten) of the (8, 8, 4) tensor is read by no Dense" in str(err.value)
