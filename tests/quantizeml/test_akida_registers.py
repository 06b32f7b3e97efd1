"""Akida 1.0 register facts in the quantized Keras layers, hand-worked: act_step on the 1/16 grid,
FullyConnected potentials saturated to 20 bits, the global pooling's 20-bit row-major register."""
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from quantizeml.accumulators import (POTENTIAL_MAX, POTENTIAL_MIN, saturating_global_sum,
                                     saturating_global_sum_np)
from quantizeml.export import block_parameters
from quantizeml.layers import (Dequantizer, QuantizedConv2D, QuantizedDense,
                               QuantizedGlobalAveragePooling2D, QuantizedReLU)
from quantizeml.errors import QuantizationError
from quantizeml.quantizers import floor_act_step_np, is_act_step_on_grid, round_act_step
from quantizeml.registers import set_block_ranges
from quantizeml.transforms import QuantizationWarning

pytestmark = pytest.mark.akida_version("v1")  # Akida 1.0 flows; the default is Akida 2.0


# ---- act_step: a fixed-point register with 4 fractional bits ----

def test_round_act_step_hand_worked():
    np.testing.assert_array_equal(round_act_step([0.7, 3.283, 0.01, 1.0, 2.0**16 - 1 / 32]),
                                  [0.6875, 3.3125, 0.0625, 1.0, 2.0**16])
    # What Akida computes with: floor(act_step * 16) / 16 (the reference sheet's examples).
    np.testing.assert_array_equal(floor_act_step_np([0.7, 3.283, 0.1075]), [0.6875, 3.25, 0.0625])
    assert is_act_step_on_grid([0.0625, 3.25, 60000.0])
    assert not is_act_step_on_grid([3.283]) and not is_act_step_on_grid([0.0])


def test_relu_computes_with_the_floored_act_step():
    # act_step 3.283 acts as 3.25: p - T = 36 gives ceil(36 / 3.25) = 12, not ceil(36/3.283) = 11.
    relu = QuantizedReLU(activation_bits=4)
    relu.build((None, 1))
    relu.act_step.assign([3.283])
    relu.step_threshold.assign([0.0])
    assert np.asarray(relu(np.array([[36.0]], np.float32)))[0, 0] == 12
    assert relu.akida_parameters()["act_step"].tolist() == [3.25]
    # act_step 0.1075 acts as 0.0625: p - T = 1 gives 16, clipped to 15.
    relu.act_step.assign([0.1075])
    assert np.asarray(relu(np.array([[1.0]], np.float32)))[0, 0] == 15


def test_set_activation_range_puts_act_step_on_the_grid():
    relu = QuantizedReLU(activation_bits=4)
    relu.build((None, 3))
    # act_step = (max / 15) / potential_scale: 10.5, 0.7 and 0.01 (raised to the minimum).
    relu.set_activation_range(15.0, np.array([1 / 10.5, 1 / 0.7, 100.0]))
    np.testing.assert_array_equal(relu.act_step.numpy(), [10.5, 0.6875, 0.0625])
    np.testing.assert_allclose(relu.calibrated_act_step, [10.5, 0.7, 0.01])
    # The output scale follows the used step: act_step * potential_scale.
    np.testing.assert_allclose(relu.output_scale.numpy(), [1.0, 0.6875 / 0.7, 6.25], rtol=1e-6)


def _dense_block(units):
    """A Dense whose weight scale is 0.1: act_step = activation range / 15 / 0.1."""
    dense = QuantizedDense(units, weight_bits=4, input_bits=4, use_bias=False)
    dense.build((None, 4))
    dense.kernel.assign(np.tile(np.array([[0.7], [0.1], [0.1], [0.1]], np.float32), (1, units)))
    dense.set_scales(1.0)
    np.testing.assert_allclose(dense.weight_scale.numpy(), 0.1, rtol=1e-6)
    return dense


def test_grid_change_above_tolerance_warns_naming_layer_channels_and_steps():
    dense = _dense_block(2)
    relu_layer = QuantizedReLU(activation_bits=4, name="act")
    relu_layer.build((None, 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # act_step = 1.05 / 15 / 0.1 = 0.7 -> 0.6875 (-1.8 %, quiet); 0.5 / 15 / 0.1 = 0.333 ->
        # 0.3125 (-6 %, warned).
        set_block_ranges(dense, None, relu_layer, None, np.ones(4), np.array([1.05, 0.5]), 1)
    np.testing.assert_array_equal(relu_layer.act_step.numpy(), [0.6875, 0.3125])
    messages = [str(w.message) for w in caught if issubclass(w.category, QuantizationWarning)]
    assert len(messages) == 1, messages
    text = messages[0]
    assert f"Layer '{dense.name}'" in text and "'act'" in text and "1 of 2 channels (1)" in text
    assert "calibrated 0.3333" in text and "used 0.3125" in text and "weight bits" in text


def test_no_warning_when_the_grid_barely_moves_the_step():
    dense = _dense_block(2)
    relu = QuantizedReLU(activation_bits=4)
    relu.build((None, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", QuantizationWarning)
        set_block_ranges(dense, None, relu, None, np.ones(4), np.array([15.0, 6.0]), 1)
    np.testing.assert_array_equal(relu.act_step.numpy(), [10.0, 4.0])


def test_final_dequantizer_divisor_is_on_the_grid_and_checked_by_the_export():
    dense = _dense_block(2)
    deq = Dequantizer()
    deq.build((None, 2))
    set_block_ranges(dense, None, None, deq, np.ones(4), None, 1)
    assert deq.divisor.numpy().tolist() == [10.0, 10.0]  # 1 / weight scale 0.1
    deq.set_divisor([10.03, 10.0])  # set by hand, off the grid: Akida would use 10.0
    with pytest.raises(QuantizationError, match="1 of 2 values.*channel 0.*round_act_step"):
        block_parameters(dense, dequantizer=deq)


# ---- FullyConnected: Σ w·x saturated to 20 bits signed before the bias ----

def test_fully_connected_saturates_the_reference_sheet_example():
    # 64 channels x 32x32 inputs of 15, weights 7: Σ = 6,881,280 -> 524,287. With T = 0 and
    # act_step 60000 at 4 bits: ceil(524287 / 60000) = 9.
    features = 64 * 32 * 32
    dense = QuantizedDense(1, weight_bits=4, input_bits=4, use_bias=False)
    dense.build((None, features))
    dense.kernel.assign(np.ones((features, 1), np.float32))
    dense.set_scales(1.0)
    assert dense.akida_parameters()["weights"].min() == 7
    x = np.full((1, features), 15.0, np.float32)
    assert float(np.asarray(dense(x))[0, 0]) == 524287.0
    assert float(np.asarray(dense(-x))[0, 0]) == POTENTIAL_MIN  # negative side too
    relu = QuantizedReLU(activation_bits=4)
    relu.build((None, 1))
    relu.act_step.assign([60000.0])
    relu.step_threshold.assign([0.0])
    assert float(np.asarray(relu(dense(x)))[0, 0]) == 9
    # Unsaturated sums are exact: 10 inputs of 15 at weight 7.
    small = np.zeros((1, features), np.float32)
    small[0, :10] = 15.0
    assert float(np.asarray(dense(small))[0, 0]) == 1050.0


def test_fully_connected_bias_is_added_after_the_saturation():
    dense = QuantizedDense(1, weight_bits=4, input_bits=4)
    dense.build((None, 6000))
    dense.kernel.assign(np.ones((6000, 1), np.float32))
    dense.bias.assign([-1000.0 / 7.0])  # weight scale 1/7: bias_int = -1000
    dense.set_scales(1.0)
    # Σ = 6000 * 7 * 15 = 630,000 -> 524,287, then + bias -1000 (not clip(630,000 - 1000)).
    assert float(np.asarray(dense(np.full((1, 6000), 15.0, np.float32)))[0, 0]) == 523287.0


def test_fully_connected_saturation_is_straight_through():
    dense = QuantizedDense(1, weight_bits=4, input_bits=4, use_bias=False)
    dense.build((None, 6000))
    dense.kernel.assign(np.ones((6000, 1), np.float32))
    dense.set_scales(1.0)
    with tf.GradientTape() as tape:
        out = dense(np.full((1, 6000), 15.0, np.float32))
    grad = tape.gradient(out, dense.kernel)
    assert float(np.asarray(out)[0, 0]) == POTENTIAL_MAX
    assert grad is not None and float(tf.reduce_min(tf.abs(grad))) > 0


def test_small_dense_is_never_clipped():
    dense = QuantizedDense(2, weight_bits=4, input_bits=4)
    dense.build((None, 64))
    assert dense.product_bound() == 7 * 15 * 64 <= POTENTIAL_MAX


# ---- Global average pooling: 20-bit signed saturating register, row-major ----

def test_saturating_sum_order_matters_hand_worked():
    # Row-major: 524000 -> 525000 clips to 524287 -> 522287 -> 522787.
    # Column-major (524000, -2000, 1000, 500) never saturates: 523500, the plain sum.
    p = np.array([[524000, 1000], [-2000, 500]], np.float64).reshape(1, 2, 2, 1)
    assert saturating_global_sum(tf.constant(p), None).numpy().tolist() == [[522787.0]]
    transposed = p.transpose(0, 2, 1, 3)
    assert saturating_global_sum(tf.constant(transposed), None).numpy().tolist() == [[523500.0]]
    assert saturating_global_sum_np(p).tolist() == [[522787]]


def test_saturating_sum_equals_the_loop_on_random_potentials():
    rng = np.random.default_rng(0)
    for _ in range(30):
        h, w, c = rng.integers(1, 12, 3)
        p = rng.integers(-400000, 400000, (3, h, w, c))
        got = saturating_global_sum(tf.constant(p, tf.float64), None).numpy()
        np.testing.assert_array_equal(got, saturating_global_sum_np(p))


def _gap_model(bias_int):
    """Conv 1x1 on 300 channels, weights +127 (first 150) and -127 (last 150), then the GAP:
    a position with a on the first half and b on the second has p = 19050 · (a − b)."""
    inputs = keras.Input((2, 2, 300))
    conv = QuantizedConv2D(1, 1, weight_bits=8, input_bits=4)
    pool = QuantizedGlobalAveragePooling2D()
    model = keras.Model(inputs, pool(conv(inputs)))
    conv.kernel.assign(np.concatenate([np.ones(150), -np.ones(150)]).reshape(1, 1, 300, 1))
    conv.bias.assign([bias_int / 127.0])
    conv.set_scales(1.0)
    assert conv.akida_parameters()["bias"].tolist() == [bias_int]
    assert pool.neural_producer() is conv
    return model, conv


def _positions(values):
    """Inputs whose potentials are 19050 · values[y][x] (a − b with a, b in 0..15)."""
    x = np.zeros((1, 2, 2, 300), np.float32)
    for (y, col), v in np.ndenumerate(np.asarray(values)):
        x[0, y, col, :150] = max(v, 0)
        x[0, y, col, 150:] = max(-v, 0)
    return x


def test_global_pooling_saturates_bias_free_potentials_row_major():
    model, _ = _gap_model(bias_int=100)
    # p = 19050 · [[15, 15], [-15, 5]] = [[285750, 285750], [-285750, 95250]].
    # Row-major: 285750 -> 571500 clips to 524287 -> 238537 -> 333787; then + 4 · 100.
    x = _positions([[15, 15], [-15, 5]])
    assert np.asarray(model(x)).tolist() == [[333787.0 + 400.0]]
    # Column-major order (the transposed image) never leaves the register: the plain sum.
    assert np.asarray(model(x.transpose(0, 2, 1, 3))).tolist() == [[381000.0 + 400.0]]
    # Saturating q = p + bias instead of p would give 333987 + 400: the bias is taken off first.


def test_global_pooling_register_survives_save_and_load(tmp_path):
    from quantizeml.models import load_model, save_model
    model, _ = _gap_model(bias_int=100)
    save_model(model, tmp_path / "gap.keras")
    loaded = load_model(tmp_path / "gap.keras")
    assert loaded.layers[-1].neural_producer() is loaded.layers[-2]
    x = _positions([[15, 15], [-15, 5]])
    assert np.asarray(loaded(x)).tolist() == [[333787.0 + 400.0]]


def test_global_pooling_fast_path_and_straight_through_gradient():
    model, conv = _gap_model(bias_int=-3)
    x = _positions([[1, 2], [-3, 4]])
    assert np.asarray(model(x)).tolist() == [[19050.0 * 4 - 12.0]]  # plain sum
    with tf.GradientTape() as tape:
        out = model(_positions([[15, 15], [-15, 5]]))
    grad = tape.gradient(out, conv.kernel)
    assert grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0


def test_global_pooling_static_bound_skips_the_register_when_it_cannot_overflow():
    inputs = keras.Input((4, 4, 2))
    conv = QuantizedConv2D(3, 3, padding="same", weight_bits=4, input_bits=4)
    pool = QuantizedGlobalAveragePooling2D()
    keras.Model(inputs, pool(conv(inputs)))
    assert pool.sum_size * conv.product_bound() <= POTENTIAL_MAX  # 16 · 7 · 15 · 18


# ---- quantize() emits act_steps on the grid, on real architectures ----

def _quantized_bench_models():
    from bench import convert as bench_convert
    from quantizeml.models import quantize
    builders = {"mnist_cnn": bench_convert.mnist_cnn, "ds_cnn_kws": bench_convert.ds_cnn_kws,
                "akidanet_05": lambda: bench_convert.akidanet_05(input_size=32)}
    for name, build in builders.items():
        model = bench_convert.randomize(build())
        shape = tuple(model.inputs[0].shape[1:])
        calib = np.random.default_rng(1).integers(0, 256, (8, *shape)).astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", QuantizationWarning)
            yield name, quantize(model, samples=calib, verbose=0)


def test_quantize_emits_act_steps_on_the_grid_for_the_bench_models():
    from quantizeml.export import export_blocks
    from quantizeml.params import INPUT_LAYER_REGISTERS, LAYER_REGISTERS
    checked = 0
    for name, qmodel in _quantized_bench_models():
        spec = export_blocks(qmodel)
        for block in spec["blocks"]:
            step = block["act_step"].astype(np.float64)
            assert np.all(step * 16 == np.round(step * 16)) and step.min() >= 1 / 16, \
                (name, block["name"])
            bound = (INPUT_LAYER_REGISTERS if block["is_input_layer"] else LAYER_REGISTERS)[0]
            assert step.max() < bound, (name, block["name"])
            # The Keras twin computes with this very value (no floor left to apply).
            checked += step.size
        assert not spec["blocks"][-1]["activation"]  # the Dequantizer divisor was checked too
    assert checked > 1000
