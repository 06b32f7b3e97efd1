"""The Akida 2.0 convolution fast paths against loop references: static input bounds, sums bounded by
the weights' l1 norms (float32 below 2**24, float64, split int64 beyond 2**53), the grouped
depthwise einsum, and the per-dtype plans of the layers (which accumulator and POST they take)."""
import numpy as np
import pytest

import akida_core as ak
from akida_core.kernels import v2 as k2
from akida_core.kernels import v2_temporal as kt
from akida_core.layers.v2.base import input_plan

from . import reference_v2 as ref
from .v2_models import randomize


def _depthwise_loop(x, w, stride, padding):
    """Per-channel true convolution, zero padding, Python ints over the output grid (vectorised over n, c)."""
    n, h, wd, c = x.shape
    k = w.shape[0]
    oh, top = ref.geometry(h, k, stride, padding.name)
    ow, left = ref.geometry(wd, k, stride, padding.name)
    out = np.zeros((n, oh, ow, c), object)
    for i in range(oh):
        for j in range(ow):
            for a in range(k):
                for b in range(k):
                    y, z = i * stride + k - 1 - a - top, j * stride + k - 1 - b - left
                    if 0 <= y < h and 0 <= z < wd:
                        out[:, i, j] += x[:, y, z].astype(object) * w[a, b].astype(object)
    return out


@pytest.mark.parametrize("seed", range(40))
def test_grouped_depthwise_equals_the_loop(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.choice([1, 3, 5]))
    stride = 2 if seed % 3 == 0 else 1
    n, h, wd = int(rng.integers(1, 3)), int(rng.integers(k, 12)), int(rng.integers(k, 40))
    c = int(rng.integers(1, 90) if seed % 2 else rng.integers(120, 300))  # phase split up to 128
    padding = ak.Padding(int(rng.integers(0, 3)))
    x = rng.integers(-128, 128, (n, h, wd, c)).astype(np.int8)
    w = rng.integers(-128, 128, (k, k, c)).astype(np.int8)
    got, bound = k2.depthwise_convolve2d(x, k2.ConvolutionKernel(w, depthwise=True), stride, padding, x_bound=128)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, _depthwise_loop(x, w, stride, padding).astype(np.int64))
    assert bound == 128 * int(np.abs(w.astype(np.int64)).sum(axis=(0, 1)).max())


@pytest.mark.parametrize("magnitude, dtype", [(2 ** 13, np.float32), (2 ** 17, np.float64), (2 ** 50, np.int64)])
def test_depthwise_sums_past_float32_take_float64_then_the_split(magnitude, dtype):
    # l1 = 8·127 + 128 = 1144: inputs of 2**13 keep sums below 2**24, 2**17 do not (float32 would round)
    x = np.full((1, 4, 4, 2), magnitude - 1, np.int64)
    x[0, 1, 1, 1] = -magnitude + 3
    w = np.full((3, 3, 2), 127, np.int8)
    w[0, 0, 0] = -128
    got, _ = k2.depthwise_convolve2d(x, w, 1, ak.Padding.Same)
    assert got.dtype == dtype
    expected = np.vectorize(ref.wrap32, otypes=[object])(_depthwise_loop(x, w, 1, ak.Padding.Same))
    np.testing.assert_array_equal(got.astype(np.int64), expected.astype(np.int64))


@pytest.mark.parametrize("x_bound, dtype", [(2 ** 24 // (9 * 3 * 127) - 1, np.float32),
                                            (2 ** 24 // (9 * 3 * 127) + 1, np.float64)])
def test_convolution_dtype_follows_the_static_bound_at_the_float32_limit(x_bound, dtype):
    rng = np.random.default_rng(0)
    w = np.full((3, 3, 3, 2), 127, np.int8)
    x = rng.integers(-x_bound, x_bound + 1, (1, 5, 5, 3))
    x[0, 2, 2] = x_bound  # the centre window reaches the bound
    got, bound = k2.convolve2d(x, k2.ConvolutionKernel(w), 1, ak.Padding.Same, x_bound=x_bound)
    assert got.dtype == dtype and bound == x_bound * 9 * 3 * 127
    plain, _ = k2.convolve2d(x.astype(np.int64), w, 1, ak.Padding.Same)  # bound read from the data
    np.testing.assert_array_equal(got, plain)


def _bench_like_layers(shift):
    rng = np.random.default_rng(1)
    model = ak.Model()
    model.add(ak.InputConv2D((9, 9, 3), 8, 3, kernel_stride=2, name="conv"))
    model.add(ak.DepthwiseConv2D(3, name="dw"))
    model.add(ak.Conv2D(16, 1, pool_type=ak.PoolType.Max, pool_size=2, name="pw"))
    for layer in model.layers:
        randomize(layer, rng)
        units = layer.variables["output_shift"].shape[0]
        layer.variables["bias"] = rng.integers(-20, 20, units).astype(np.int8)
        layer.variables["bias_shift"] = np.zeros(units, np.uint8)
        layer.variables["output_scales"] = rng.integers(64, 256, units).astype(np.uint8)
        layer.variables["output_shift"] = np.full(units, shift, np.int8)
        layer.variables["max_value"] = np.full(units, 127, np.uint8)
        layer.variables["max_value_shift"] = np.full(units, 31, np.uint8)
    model.get_layer("dw").variables["input_shift"] = np.zeros(8, np.uint8)
    model.get_layer("pw").variables["input_shift"] = np.zeros(8, np.uint8)
    return model


@pytest.mark.parametrize("shift, dtypes", [(-14, (np.float32, np.float32, np.float32)),
                                           (-20, (np.int32, np.int32, np.int32))])
def test_plans_of_8_bit_layers_and_their_outputs(shift, dtypes):
    """8-bit layers as in bench/runtime_v2.py take the float32 affine POST while its exact range reaches
    the saturated outputs (shift -14), int32 beyond (shift -20: float32 would round, and every acc·M + K
    fits int32); the outputs equal the loop reference either way, and the plans are made once per input
    dtype."""
    model = _bench_like_layers(shift)
    x = np.random.default_rng(2).integers(0, 256, (2, 9, 9, 3)).astype(np.uint8)
    np.testing.assert_array_equal(model.forward(x), ref.run_model(model, x))
    for layer, dtype in zip(model.layers, dtypes):
        plans = [value for key, value in layer._cache.items() if key[0] == "input_plan"]
        assert len(plans) == 1 and plans[0].affine is not None and plans[0].affine.dtype == dtype, layer.name
    model.forward(x)
    assert all(len([key for key in layer._cache if key[0] == "input_plan"]) == 1 for layer in model.layers)


def test_wide_inputs_are_read_and_take_the_general_post():
    model = ak.Model()
    model.add(ak.InputData((4, 4, 2), input_bits=8))
    model.add(ak.Conv2D(3, 3, activation=ak.ActivationType.NoActivation, output_bits=32, name="wide"))
    model.add(ak.DepthwiseConv2D(3, name="dw"))
    rng = np.random.default_rng(3)
    for layer in model.layers[1:]:
        randomize(layer, rng)
    x = rng.integers(-128, 128, (2, 4, 4, 2)).astype(np.int8)
    np.testing.assert_array_equal(model.forward(x), ref.run_model(model, x))
    dw = model.get_layer("dw")
    c = dw._prepared()
    plan = input_plan(dw, np.dtype(np.int32), c["input_shift"], c["kernel"])
    assert plan.x_bound is None and plan.affine is None


@pytest.mark.parametrize("shift, bits, dtype", [(0, 8, np.float32), (20, 8, np.float64), (0, 32, None)])
def test_dense1d_sums_follow_the_static_bound(shift, bits, dtype):
    """int8 inputs: float32 sums; inputs shifted by 20 (|xs| up to 2**27): float64; 32-bit inputs (read
    each call, no static bound): the exact split product. Outputs equal the loop reference."""
    rng = np.random.default_rng(shift + bits)
    model = ak.Model()
    model.add(ak.InputData((2, 3, 4), input_bits=8))
    if bits == 32:
        model.add(ak.Conv2D(4, 1, activation=ak.ActivationType.NoActivation, output_bits=32, name="wide"))
    model.add(ak.Dense1D(5, buffer_bits=32, activation=ak.ActivationType.ReLU, name="dense"))
    for layer in model.layers[1:]:
        randomize(layer, rng)
    dense = model.get_layer("dense")
    dense.variables["input_shift"] = np.full(24, shift, np.uint8)
    dense.variables["output_shift"] = np.full(5, -24, np.int8)
    x = rng.integers(-128, 128, (3, 2, 3, 4)).astype(np.int8)
    np.testing.assert_array_equal(model.forward(x), ref.run_model(model, x))
    plans = [value for key, value in dense._cache.items() if key[0] == "input_plan"]
    assert len(plans) == 1
    assert (plans[0].x_bound is None) if dtype is None else np.dtype(dtype) in dense._prepared()["kernel"]._casts


@pytest.mark.parametrize("output_bits", [4, 8, 12, 16, 32])
@pytest.mark.parametrize("a_shift, output_shift", [(0, 0), (0, -3), (2, 0), (1, 4)])
def test_add_paths_equal_the_loop_reference(output_bits, a_shift, output_shift):
    rng = np.random.default_rng(output_bits + a_shift)
    model = ak.Model()
    model.add(ak.InputData((3, 4, 5), input_bits=8, name="in"))
    model.add(ak.Conv2D(5, 1, activation=ak.ActivationType.NoActivation, name="conv"))
    model.add(ak.Add(output_bits=output_bits, buffer_bits=12, name="add"),
              [model.get_layer("in"), model.get_layer("conv")])
    randomize(model.get_layer("conv"), rng)
    add = model.get_layer("add")
    add.variables["a_shift"] = np.full(5, a_shift, np.uint8)
    add.variables["output_shift"] = np.full(5, output_shift, np.int8)
    x = rng.integers(-128, 128, (2, 3, 4, 5)).astype(np.int8)
    np.testing.assert_array_equal(model.forward(x), ref.run_model(model, x))


@pytest.mark.parametrize("seed", range(12))
def test_convolutions_run_in_blocks_of_samples_equal_the_loop_reference(monkeypatch, seed):
    """With blocks of one sample (BLOCK_BYTES = 1), random graphs still equal the loop reference."""
    from akida_core.layers.v2 import convolution
    from .v2_models import random_inputs, random_model
    monkeypatch.setattr(convolution, "BLOCK_BYTES", 1)
    rng = np.random.default_rng(500 + seed)
    model, _ = random_model(rng)
    x = random_inputs(model, rng, 3)
    np.testing.assert_array_equal(model.forward(x), ref.run_model(model, x, {}))


def _transpose_loop(x, w, depthwise):
    """acc[2i+a-p, 2j+b-p, f] += x[i, j, c]·w[a, b, c, f] in Python ints, wrapped to 32 bits."""
    n, h, wd, c = x.shape
    k = w.shape[0]
    p = max(k - 2, 0) // 2
    filters = c if depthwise else w.shape[3]
    acc = np.zeros((n, 2 * h, 2 * wd, filters), object)
    for s, i, j, a, b in np.ndindex(n, h, wd, k, k):
        y, z = 2 * i + a - p, 2 * j + b - p
        if 0 <= y < 2 * h and 0 <= z < 2 * wd:
            for f in range(filters):
                if depthwise:
                    acc[s, y, z, f] += int(x[s, i, j, f]) * int(w[a, b, f, 0])
                else:
                    acc[s, y, z, f] += sum(int(x[s, i, j, ch]) * int(w[a, b, ch, f]) for ch in range(c))
    return np.vectorize(ref.wrap32, otypes=[object])(acc).astype(np.int64)


@pytest.mark.parametrize("depthwise", [False, True])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("magnitude", [2 ** 8, 2 ** 17, 2 ** 50])
def test_transposed_sums_take_the_dtype_their_bound_allows(depthwise, kernel, magnitude):
    # inputs below 2**8 keep every sum below 2**24 (l1 <= 25·2·128), 2**17 need float64 unless the
    # kernel is small, 2**50 need int64
    rng = np.random.default_rng(kernel)
    x = rng.integers(-magnitude + 1, magnitude, (2, 3, 4, 2))
    x[0, 1, 1] = magnitude - 1
    w = rng.integers(-128, 128, (kernel, kernel, 2, 1 if depthwise else 3)).astype(np.int8)
    w[0, 0] = -128
    l1 = int(np.abs(w.astype(np.int64)).sum(axis=(0, 1) if depthwise else (0, 1, 2)).max())
    bound = (magnitude - 1) * l1
    dtype = np.float32 if bound < 2 ** 24 else np.float64 if bound < 2 ** 53 else np.int64
    got, got_bound = k2.conv2d_transpose(x, w, depthwise)
    assert got.dtype == dtype and got_bound == min(bound, 2 ** 31)
    np.testing.assert_array_equal(got.astype(np.int64), _transpose_loop(x, w, depthwise))
    kernel_once = k2.TransposeKernel(w[..., 0] if depthwise else w, depthwise)
    again, _ = k2.conv2d_transpose(x, kernel_once, depthwise, x_bound=magnitude - 1)
    np.testing.assert_array_equal(again, got)
    k2.conv2d_transpose(x, kernel_once, depthwise, x_bound=magnitude - 1)
    assert kernel_once.casts_made == (dtype is not np.int64)  # cast once, then reused


def _fifo_loop(history, w, depthwise, bb):
    """The FIFO sum of the last T inputs of `history` (oldest first), per position, in Python ints."""
    depth = w.shape[0] if depthwise else w.shape[0] // history[0].shape[-1]
    window = history[-depth:]
    c = window[0].shape[-1]
    out = np.zeros(window[0].shape[:2] + ((c,) if depthwise else (w.shape[1],)), object)
    for i, j in np.ndindex(*window[0].shape[:2]):
        if depthwise:
            for ch in range(c):
                total = 0
                for t in range(depth):
                    total = int(np.clip(total + int(window[t][i, j, ch]) * int(w[t, ch]),
                                        -2 ** (bb - 1), 2 ** (bb - 1) - 1))
                out[i, j, ch] = total
        else:
            for f in range(w.shape[1]):
                out[i, j, f] = ref.wrap32(sum(int(window[t][i, j, ch]) * int(w[t * c + ch, f])
                                              for t in range(depth) for ch in range(c)))
    return out.astype(np.int64)


@pytest.mark.parametrize("depthwise", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_fifo_sums_follow_their_bound_across_calls(depthwise, seed):
    # magnitudes change from call to call: the state keeps the last call's dtype, and a wide input
    # still in the FIFO keeps the next sums wide until it leaves (float32, float64, int64 paths)
    rng = np.random.default_rng(seed)
    depth, c, bb = int(rng.integers(2, 6)), 2, int(rng.choice([20, 32]))
    w = rng.integers(-128, 128, (depth, c) if depthwise else (depth * c, 3)).astype(np.int8)
    kernel = k2.ConvolutionKernel(w[None], depthwise=True, flip=False) if depthwise else \
        k2.ConvolutionKernel(w[None, None], flip=False)
    fifo = np.zeros((depth, 2, 3, c), np.int64)
    history = list(fifo)
    dtypes = set()
    for magnitude in (2 ** 7, 2 ** 40, 2 ** 7, 2 ** 7, 2 ** 7, 2 ** 7, 2 ** 7, 2 ** 17, 2 ** 7):
        steps = int(rng.integers(1, 4))
        xs = rng.integers(-magnitude + 1, magnitude, (steps, 2, 3, c))
        if depthwise:
            (acc, bound), fifo = kt.depthwise_buffer_temp_conv(xs, fifo, kernel, bb)
        else:
            (acc, bound), fifo = kt.buffer_temp_conv(xs, fifo, kernel)
        dtypes.add(acc.dtype)
        for step in range(steps):
            history.append(xs[step])
            np.testing.assert_array_equal(acc[step].astype(np.int64), _fifo_loop(history, w, depthwise, bb))
            assert np.abs(acc[step].astype(np.int64)).max() <= bound
        np.testing.assert_array_equal(np.asarray(fifo, np.int64), np.array(history[-depth:]))
    assert np.dtype(np.float32) in dtypes and np.dtype(np.int64) in dtypes


def test_float32_global_pooling_equals_the_loop_reference(monkeypatch):
    """Global average pooling after float32 sums takes the float32 steps (bias, ReLU and its ceiling, the sum
    over positions in float64) where no saturation can act, the general path elsewhere (narrow buffers, sums
    near 2**24); the outputs equal the loop reference on both, ceilings that act included."""
    from akida_core.layers.v2 import convolution
    taken = []
    original = convolution.float32_pooled_sums

    def spy(*args):  # one call: it adds the bias to the sums in place
        result = original(*args)
        taken.append(result is not None)
        return result
    monkeypatch.setattr(convolution, "float32_pooled_sums", spy)
    for seed in range(40):
        rng = np.random.default_rng(seed)
        model = ak.Model()
        model.add(ak.InputData((int(rng.integers(1, 6)), int(rng.integers(1, 6)), 4), input_bits=8))
        model.add(ak.Conv2D(3, int(rng.choice([1, 3])), pool_type=ak.PoolType.Average,
                            activation=ak.ActivationType(int(rng.integers(0, 2))),
                            buffer_bits=int(rng.choice([12, 20, 28, 32])),
                            post_op_buffer_bits=int(rng.choice([16, 24, 32])), output_bits=int(rng.choice([4, 8])),
                            name="gap"))
        layer = model.get_layer("gap")
        randomize(layer, rng)
        if "max_value" in layer.variables.names and seed % 2:  # ceilings low enough to act
            layer.variables["max_value_shift"] = np.zeros(3, np.uint8)
        x = rng.integers(-128, 128, (2, *model.input_shape)).astype(np.int8)
        np.testing.assert_array_equal(model.forward(x), ref.run_model(model, x), err_msg=f"seed {seed}")
    assert sum(taken) >= 8 and len(taken) - sum(taken) >= 8, taken


@pytest.mark.parametrize("weight, taken", [(1, True), (10, False)])
def test_global_pooling_whose_sum_may_saturate_takes_the_general_path(weight, taken):
    """A 16-bit post buffer: 25 positions of sums up to 128·4·weight stay below 2**15 with weight 1 (float32
    steps) but not with weight 10, where the ordered saturating sum decides the outputs."""
    from akida_core.layers.v2 import convolution
    model = ak.Model()
    model.add(ak.InputData((5, 5, 4), input_bits=8))
    model.add(ak.Conv2D(2, 1, pool_type=ak.PoolType.Average, activation=ak.ActivationType.NoActivation,
                        post_op_buffer_bits=16, output_bits=8, name="gap"))
    layer = model.get_layer("gap")
    layer.variables["weights"] = np.full((1, 1, 4, 2), weight, np.int8)
    layer.variables["bias"] = np.array([3, -3], np.int8)
    layer.variables["output_scales"] = np.array([1, 1], np.uint8)
    layer.variables["output_shift"] = np.array([-8, -8], np.int8)
    x = np.full((2, 5, 5, 4), 127, np.int8)
    x[1] = -128
    x[1, 0, 0] = 127  # the sum saturates low first, then climbs: the order matters
    c = layer._prepared()
    plan = input_plan(layer, x.dtype, c["input_shift"], c["kernel"])
    acc, bound = k2.convolve2d(x, c["kernel"], 1, ak.Padding.Same, plan.x_bound)
    assert (convolution.float32_pooled_sums(acc, c["post"], bound) is not None) == taken
    expected = ref.run_model(model, x)
    np.testing.assert_array_equal(model.forward(x), expected)
    if not taken:  # the sums did saturate: a plain sum would give other outputs
        assert np.abs(expected).max() == 127


@pytest.mark.parametrize("kernel", [1, 3, 5])
@pytest.mark.parametrize("padding", [ak.Padding.Same, ak.Padding.Valid])
@pytest.mark.parametrize("width", [6, 7])
def test_phase_split_padding_writes_every_cell(monkeypatch, kernel, padding, width):
    """The phase-split copy zeroes only its border: with fresh memory full of NaN, every cell still equals the
    zero-padded input's column u·s + p."""
    from akida_core.kernels import shared, windows
    x = np.random.default_rng(kernel).integers(-128, 128, (2, 5, width, 3)).astype(np.int8)
    top, bottom = shared.padding_amounts(5, kernel, 2, padding)
    left, right = shared.padding_amounts(width, kernel, 2, padding)
    columns = -(-(left + width + right) // 2) * 2
    padded = np.pad(x.astype(np.float32), ((0, 0), (top, bottom), (left, columns - left - width), (0, 0)))
    expected = padded.reshape(2, top + 5 + bottom, columns // 2, 2, 3).transpose(0, 1, 3, 2, 4)
    real = np.empty
    monkeypatch.setattr(np, "empty", lambda shape, dtype=float: np.full(shape, np.nan, dtype))
    got = windows.phase_padded(x, kernel, 2, padding, np.float32)
    monkeypatch.setattr(np, "empty", real)
    np.testing.assert_array_equal(got, expected)


def _lut_layer(kind, rng):
    A = ak.ActivationType
    bits = dict(output_bits=int(rng.choice([4, 8, 16])), buffer_bits=int(rng.choice([20, 28, 32])),
                post_op_buffer_bits=int(rng.choice([24, 32])))
    if kind == "conv_pool":
        return ak.Conv2D(3, 3, activation=A.LUT, pool_type=ak.PoolType.Max, pool_size=2,
                         pool_stride=int(rng.integers(1, 3)), **bits)
    if kind == "depthwise":
        return ak.DepthwiseConv2D(3, activation=A.LUT, **bits)
    if kind == "dense":
        return ak.Dense1D(5, activation=A.LUT, **bits)
    return ak.Conv2D(4, 1, activation=A.LUT, **bits)


@pytest.mark.parametrize("kind", ["conv", "conv_pool", "depthwise", "dense"])
def test_lut_layers_take_the_index_map_and_equal_the_loop_reference(kind):
    """A LUT's table index is a nondecreasing map of the sum (kernels/v2_affine.LutPost): where the bounds prove
    it exact the layer computes the index in one float map, pools it, and reads per-channel tables of the final
    outputs. Random layers (LUT values over the full int32 range on odd seeds, the other variables as the
    random graphs draw them) equal the loop reference on both paths; enough of them take the index map."""
    from akida_core.kernels import v2_affine
    taken = 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        layer = _lut_layer(kind, rng)
        model = ak.Model()
        model.add(ak.InputData((6, 5, 3), input_bits=8))
        model.add(layer)
        randomize(layer, rng, extreme=seed % 2 == 1)
        layer.variables["activation_shift"] = rng.integers(-24, 1, layer.variables["activation_shift"].shape
                                                           ).astype(np.int8)
        x = rng.integers(-128, 128, (3, 6, 5, 3)).astype(np.int8)
        x[0, 0, 0], x[0, 0, 1] = 127, -128
        np.testing.assert_array_equal(model.forward(x), ref.run_model(model, x), err_msg=f"seed {seed}")
        c = layer._prepared()
        plan = input_plan(layer, np.dtype(np.int8), c["input_shift"], c["kernel"], wrap=kind != "dense")
        taken += isinstance(plan.affine, v2_affine.LutPost)
    assert taken >= 5, taken
