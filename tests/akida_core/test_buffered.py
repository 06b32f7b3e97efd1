"""Buffered kernels (kernels/buffered.py) and the layers' buffered forwards equal the plain kernels and
`_forward` bit for bit, keep their borders between calls, give each thread its own buffers, and are used
only for small calls."""
import copy
import pickle
import threading

import numpy as np
import pytest

import akida_core as ak
from akida_core import kernels
from akida_core.enums import Padding
from akida_core.kernels import buffered, shared
from akida_core.model import inference, running

from bench.models import BENCHMARK_MODELS, random_inputs
from tests.akida_core import reference


def _twice(run, first, second):
    """The results of two calls (copied: the second call overwrites the first's buffer)."""
    return run(first).copy(), run(second).copy()


@pytest.mark.parametrize("padding", [Padding.Same, Padding.Valid])
@pytest.mark.parametrize("strides", [(1, 1), (2, 2), (2, 1)])
@pytest.mark.parametrize("kernel", [(1, 1), (3, 3), (5, 3)])
@pytest.mark.parametrize("channels", [1, 3, 8])  # 1 and 3: the transposed im2col (kw·c < 16)
def test_buffered_convolution_equals_the_loop_reference(padding, strides, kernel, channels):
    rng = np.random.default_rng(kernel[0] * 10 + strides[1] + channels)
    x1, x2 = (rng.integers(0, 16, (2, 9, 8, channels)).astype(np.uint8) for _ in range(2))
    w = rng.integers(-8, 8, (*kernel, channels, 5)).astype(np.int8)
    matrix = w.reshape(-1, 5).astype(np.float32)
    for value in (0, 7):  # the border keeps the padding value from call to call
        run = buffered.conv2d(x1.shape, matrix, kernel, strides, padding, value)
        for x, out in zip((x1, x2), _twice(run, x1, x2)):
            expected = reference.correlate(x, w, strides, padding == Padding.Same, value)
            np.testing.assert_array_equal(out, expected)
            assert out.dtype == np.float32


@pytest.mark.parametrize("pool", [(2, 2), (3, 3), (2, 1)])
@pytest.mark.parametrize("channels", [1, 16])
def test_convolution_that_pools_as_it_computes_equals_conv_then_max_pool(pool, channels):
    rng = np.random.default_rng(pool[0] + channels)
    x1, x2 = (rng.integers(0, 16, (3, 12, 6, channels)).astype(np.uint8) for _ in range(2))
    w = rng.integers(-8, 8, (3, 3, channels, 4)).astype(np.int8)
    shape = (3, 12, 6, 4)
    assert buffered.tiles_exactly(shape, pool, pool, Padding.Same)
    run = buffered.conv2d(x1.shape, w.reshape(-1, 4).astype(np.float32), (3, 3), (1, 1), Padding.Same,
                          pool_size=pool)
    for x, out in zip((x1, x2), _twice(run, x1, x2)):
        expected = kernels.max_pool2d(kernels.conv2d(x, w, (1, 1), Padding.Same), pool, pool, Padding.Same)
        np.testing.assert_array_equal(out, expected)


def test_tiling_rule():
    assert buffered.tiles_exactly((1, 28, 28, 8), (2, 2), (2, 2), Padding.Same)
    assert not buffered.tiles_exactly((1, 7, 7, 8), (2, 2), (2, 2), Padding.Same)  # a padded window
    assert not buffered.tiles_exactly((1, 8, 8, 8), (3, 3), (2, 2), Padding.Same)  # overlapping windows
    assert not buffered.tiles_exactly((1, 8, 8, 8), (1, 1), (1, 1), Padding.Same)  # no pooling at all


@pytest.mark.parametrize("padding", [Padding.Same, Padding.Valid])
@pytest.mark.parametrize("pool, stride", [((2, 2), (2, 2)), ((3, 3), (2, 2)), ((3, 2), (1, 2)), ((2, 2), (1, 1))])
def test_buffered_max_pool_equals_the_loop_reference(padding, pool, stride):
    rng = np.random.default_rng(pool[0] * 7 + stride[0])
    p1, p2 = (rng.integers(-500, 500, (2, 7, 8, 3)).astype(np.float32) for _ in range(2))
    run = buffered.max_pool2d(p1.shape, np.float32, pool, stride, padding)
    for p, out in zip((p1, p2), _twice(run, p1, p2)):
        np.testing.assert_array_equal(out, reference.max_pool(p, pool, stride, padding == Padding.Same))


@pytest.mark.parametrize("strides", [(1, 1), (2, 2)])
@pytest.mark.parametrize("padding", [Padding.Same, Padding.Valid])
def test_buffered_separable_equals_the_loop_reference(strides, padding):
    rng = np.random.default_rng(strides[0])
    x1, x2 = (rng.integers(0, 16, (2, 9, 7, 6)).astype(np.uint8) for _ in range(2))
    dw = rng.integers(-8, 8, (3, 3, 6)).astype(np.int8)
    pw = rng.integers(-8, 8, (6, 5)).astype(np.int8)
    run = buffered.separable_conv2d(x1.shape, dw.astype(np.float32), pw.astype(np.float32), strides, padding)
    for x, out in zip((x1, x2), _twice(run, x1, x2)):
        # the loop reference convolves (flips the depthwise kernel); the buffered kernel correlates
        expected = reference.separable(x, dw[::-1, ::-1, :, None], pw[None, None], strides, padding == Padding.Same)
        np.testing.assert_array_equal(out, expected)


def test_buffered_dense_saturates_like_the_register():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 16, (3, 2, 2, 50)).astype(np.uint8)
    w = rng.integers(-128, 128, (200, 4)).astype(np.float32)
    run = buffered.dense(x.shape, w, 12)
    expected = shared.saturate(x.reshape(3, -1).astype(np.float64) @ w.astype(np.float64), 12)
    out = run(x)
    np.testing.assert_array_equal(out, expected)
    assert out.min() == -2 ** 11 and out.max() == 2 ** 11 - 1  # both bounds reached


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bits", [1, 2, 4])
def test_buffered_activation_equals_the_plain_one(dtype, bits):
    rng = np.random.default_rng(bits)
    p = rng.integers(-3000, 3000, (2, 5, 5, 8)).astype(dtype)
    threshold = rng.integers(-50, 50, 8).astype(np.int32)
    act_step = kernels.register_act_step(rng.uniform(1, 300, 8).astype(np.float32))
    step = kernels.v1.activation_step(p.dtype, threshold, act_step, bits)
    run = buffered.activate(p.shape, threshold.astype(step.dtype), step, bits)
    np.testing.assert_array_equal(run(p), kernels.threshold_activation(p, threshold, act_step, bits))
    np.testing.assert_array_equal(buffered.to_int32(p.shape)(p), kernels.to_int32(p))


@pytest.mark.parametrize("shape", [(2, 5, 5, 8), (1, 7, 7, 64), (3, 4, 1, 16), (1, 3, 3, 200)])
@pytest.mark.parametrize("cropped", [False, True])
def test_activation_over_whole_output_rows_equals_the_reference(shape, cropped):
    """v1.activate and buffered.activate view (n, h, w, c) potentials as rows of w·c values with the per-channel
    constants repeated (v1.row_view), except for cropped (non-contiguous) views, one-position rows and
    ROW_CHANNELS channels or more: the activations equal the rational reference in every case."""
    rng = np.random.default_rng(sum(shape))
    c = shape[-1]
    whole = rng.integers(-3000, 3000, (shape[0], shape[1] + 1, shape[2] + 1, c)).astype(np.float32)
    p = whole[:, :shape[1], :shape[2]] if cropped else np.ascontiguousarray(whole[:, :shape[1], :shape[2]])
    threshold = rng.integers(-50, 50, c).astype(np.int32)
    act_step = kernels.register_act_step(rng.uniform(1, 300, c).astype(np.float32))
    expected = reference.activation(p.astype(np.int64), threshold, act_step, 4)
    step = kernels.v1.activation_step(p.dtype, threshold, act_step, 4)
    np.testing.assert_array_equal(kernels.v1.activate(p, threshold.astype(step.dtype), step, 4), expected)
    run = buffered.activate(p.shape, threshold.astype(step.dtype), step, 4)
    np.testing.assert_array_equal(run(p), expected)
    np.testing.assert_array_equal(run(np.ascontiguousarray(p)), expected)  # the same buffers, either input
    rows = kernels.v1.row_view((np.ascontiguousarray(p),), threshold)
    assert (rows[0][0].ndim == 2) == (shape[2] > 1 and c < kernels.v1.ROW_CHANNELS)

def _plain(model, x):
    """The model's outputs through every layer's `_forward` (no buffers)."""
    for layer in model.layers:
        x = layer._forward(x)
    return x


def _pooled_model(pool_type, padding):
    model = ak.Model()
    pooling = dict(pool_size=(3, 3), pool_stride=(2, 2)) if pool_type == ak.PoolType.Max else {}
    model.add(ak.InputConvolutional((15, 14, 3), (3, 3), 8, weights_bits=8, act_bits=4, pool_type=pool_type,
                                    padding=padding, padding_value=9, name="input_conv", **pooling))
    model.add(ak.Convolutional((3, 3), 16, weights_bits=4, act_bits=2, pool_type=ak.PoolType.Max,
                               pool_size=(2, 2), name="conv"))
    model.add(ak.SeparableConvolutional((3, 3), 8, weights_bits=4, act_bits=4, pool_type=ak.PoolType.Average,
                                        name="separable"))
    model.add(ak.FullyConnected(5, weights_bits=4, act_bits=1, name="fc"))
    return model


@pytest.mark.parametrize("padding", [ak.Padding.Same, ak.Padding.Valid])
@pytest.mark.parametrize("pool_type", [ak.PoolType.Max, ak.PoolType.NoPooling])
def test_models_through_buffered_forwards_equal_the_plain_layers(padding, pool_type):
    from bench.models import randomize
    model = randomize(_pooled_model(pool_type, padding), seed=3)
    for batch in (1, 2, 5):
        x = random_inputs(model, batch, seed=batch)
        np.testing.assert_array_equal(model.forward(x), _plain(model, x))
    assert all(layer._cache["buffered"]._forwards for layer in model.layers[:-1] if layer.macs)


@pytest.mark.parametrize("name", sorted(BENCHMARK_MODELS))
def test_benchmark_models_at_batch_one_equal_the_plain_layers(name):
    model = BENCHMARK_MODELS[name]()
    first, second = random_inputs(model, 1, seed=1), random_inputs(model, 1, seed=2)
    out1 = model.forward(first)
    out2 = model.forward(second)
    np.testing.assert_array_equal(out1, _plain(model, first))  # not overwritten by the second call
    np.testing.assert_array_equal(out2, _plain(model, second))
    assert out1 is not out2


def test_large_calls_do_not_keep_buffers(monkeypatch):
    model = BENCHMARK_MODELS["mnist_cnn"]()
    monkeypatch.setattr(inference, "BUFFERED_BYTES", 0)
    model.forward(random_inputs(model, 2))
    assert all("buffered" not in layer._cache for layer in model.layers)
    monkeypatch.setattr(inference, "BUFFERED_BYTES", 4 * 2 ** 20)
    model.forward(random_inputs(model, 2))
    assert [len(layer._cache["buffered"]._forwards) for layer in model.layers[1:]] == [1, 1, 1]


def test_buffered_forwards_beyond_the_limit_replace_the_oldest(monkeypatch):
    from akida_core.layers import layer as layer_module
    monkeypatch.setattr(layer_module, "MAX_BUFFERED_FORWARDS", 3)
    forwards, made = layer_module.BufferedForwards(), []
    for key in ("a", "b", "c", "a", "d", "a", "b"):
        forwards.get(key, lambda key: made.append(key) or key.upper())
    assert made == ["a", "b", "c", "d", "a", "b"]  # "d" replaced "a", the oldest; "a" then replaced "b"
    assert [key for _, key in forwards._forwards] == ["d", "a", "b"]


def test_new_variables_make_new_buffered_forwards():
    model = BENCHMARK_MODELS["mnist_cnn"]()
    x = random_inputs(model, 1)
    model.forward(x)
    conv = model.get_layer("conv_1")
    conv.set_variable("weights", -conv.variables["weights"].clip(-7, 7))
    assert "buffered" not in conv._cache
    np.testing.assert_array_equal(model.forward(x), _plain(model, x))


def test_threads_get_their_own_buffers():
    model = BENCHMARK_MODELS["ds_cnn_kws"]()
    inputs = [random_inputs(model, 1, seed=seed) for seed in range(6)]
    expected = [_plain(model, x) for x in inputs]
    results, errors = {}, []

    def work(index):
        try:
            for _ in range(20):
                for i in range(index, len(inputs), 2):
                    results[i] = model.forward(inputs[i])
                    np.testing.assert_array_equal(results[i], expected[i])
        except Exception as error:  # reported below
            errors.append(error)
    workers = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors
    assert len(model.layers[1]._cache["buffered"]._forwards) == 2


def test_copied_and_pickled_models_start_without_buffers():
    model = BENCHMARK_MODELS["mnist_cnn"]()
    x = random_inputs(model, 1)
    out = model.forward(x)
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert not clone.layers[1]._cache["buffered"]._forwards
        np.testing.assert_array_equal(clone.forward(x), out)


def test_no_buffered_forward_when_float32_is_not_exact():
    model = ak.Model()
    model.add(ak.InputData((4, 4, 10000), input_bits=4, name="in"))
    model.add(ak.FullyConnected(3, weights_bits=4, act_bits=4, name="fc"))
    fc = model.get_layer("fc")
    fc.set_variable("weights", np.full(fc.variables["weights"].shape, -7, np.int8))
    # 7 · 15 · 160,000 inputs >= 2**24: float32 sums would not be exact, so no buffered forward
    assert fc._buffered((1, 4, 4, 10000)) is None
    x = np.full((1, 4, 4, 10000), 15, np.uint8)
    np.testing.assert_array_equal(model.forward(x), _plain(model, x))


@pytest.mark.parametrize("pool", [(2, 2), None])
@pytest.mark.parametrize("padding", [Padding.Same, Padding.Valid])
@pytest.mark.parametrize("batch, size", [(1, (8, 6)), (3, (6, 10)), (2, (12, 4))])
def test_winograd_convolution_equals_the_plain_kernels(pool, padding, batch, size):
    rng = np.random.default_rng(batch)
    channels = filters = buffered.WINOGRAD_CHANNELS
    if padding == Padding.Valid:
        size = (size[0] + 2, size[1] + 2)  # even outputs
    if pool is None:
        size = (size[0] + 1, size[1])  # odd outputs: the last tile row is cropped
    x1, x2 = (rng.integers(0, 16, (batch, *size, channels)).astype(np.uint8) for _ in range(2))
    w = rng.integers(-7, 8, (3, 3, channels, filters)).astype(np.int8)
    matrix = w.reshape(-1, filters).astype(np.float32)
    assert buffered.winograd_exact(matrix, channels, 15)
    for value in (0, 9):
        run = buffered.conv2d(x1.shape, matrix, (3, 3), (1, 1), padding, value, pool, input_bound=15)
        for x, out in zip((x1, x2), _twice(run, x1, x2)):
            # the plain kernels (tested against the loop references in test_kernels.py): the loops are slow here
            expected = kernels.conv2d(x, w, (1, 1), padding, value)
            if pool:
                expected = kernels.max_pool2d(expected, pool, pool, padding)
            np.testing.assert_array_equal(out, expected)


def test_winograd_at_its_bound_and_the_direct_path_beyond_it():
    # 324 · 493 · 15 · 7 < 2**24 <= 324 · 494 · 15 · 7: extreme values at the largest exact channel count
    rng = np.random.default_rng(0)
    for channels, winograd in ((493, True), (494, False)):
        x = (rng.integers(0, 2, (1, 4, 4, channels)) * 15).astype(np.uint8)
        w = (rng.integers(0, 2, (3, 3, channels, 32)) * 14 - 7).astype(np.int8)
        matrix = w.reshape(-1, 32).astype(np.float32)
        assert buffered.winograd_exact(matrix, channels, 15) == winograd
        run = buffered.conv2d(x.shape, matrix, (3, 3), (1, 1), Padding.Same, pool_size=(2, 2), input_bound=15)
        expected = kernels.max_pool2d(kernels.conv2d(x, w, (1, 1), Padding.Same), (2, 2), (2, 2), Padding.Same)
        np.testing.assert_array_equal(run(x), expected)


@pytest.mark.parametrize("kind", [ak.Convolutional, ak.SeparableConvolutional])
def test_buffered_forwards_leave_silent_channels_to_the_plain_forward(kind, monkeypatch):
    from akida_core.layers.v1 import convolutional, separable_convolutional
    from bench.models import randomize
    # no fixed cost: every layer leaves inputs with at most 3/4 live channels to the plain forward
    monkeypatch.setattr(convolutional, "SKIP_OVERHEAD_MACS", 0)
    monkeypatch.setattr(separable_convolutional, "SEPARABLE_SKIP_OVERHEAD_MACS", 0)
    model = ak.Model()
    model.add(ak.InputData((8, 8, 8), input_bits=4, name="in"))
    model.add(kind((3, 3), 32, weights_bits=4, act_bits=4, name="layer"))
    randomize(model, seed=2)
    layer = model.get_layer("layer")
    plain_calls = []
    plain = layer._forward
    monkeypatch.setattr(layer, "_forward", lambda inputs, **found: plain_calls.append(1) or plain(inputs, **found))
    dense = random_inputs(model, 1, seed=3)
    silent = dense.copy()
    silent[..., 2:] = 0  # 2 of 8 channels live
    for x, calls in ((dense, 0), (silent, 1), (dense, 1)):
        np.testing.assert_array_equal(model.forward(x), plain(x))
        assert len(plain_calls) == calls


@pytest.mark.parametrize("kind, size, limits", [
    (ak.Convolutional, 14, {1: 0.17, 2: 0.46, 64: 0.74}),          # MNIST's conv_1 shape
    (ak.Convolutional, 7, {1: None, 2: None, 4: 0.17}),            # MNIST's conv_2: 1.8 M MACs a sample
    (ak.SeparableConvolutional, 32, {1: 0.31, 4: 0.64}),           # 2.4 M MACs a sample
    (ak.SeparableConvolutional, 5, {1: None, 64: 0.47})])
def test_a_buffered_forward_skips_silent_channels_only_where_it_pays(kind, size, limits, monkeypatch):
    # the plain forward's fixed cost (SKIP_OVERHEAD_MACS) makes a small layer call keep its buffered path
    model = ak.Model()
    model.add(ak.InputData((size, size, 32), input_bits=4, name="in"))
    model.add(kind((3, 3), 64, weights_bits=4, act_bits=4, name="layer"))
    layer = model.get_layer("layer")
    for samples, limit in limits.items():
        seen = []
        monkeypatch.setattr(kernels.shared, "live_channels", lambda x, limit=0.75: seen.append(limit))
        forward = layer._buffered_forward((samples, size, size, 32))
        forward(np.zeros((samples, size, size, 32), np.uint8))
        if limit is None:
            assert seen == []  # never tested: skipping cannot pay
        else:
            assert seen == [pytest.approx(limit, abs=0.005)]


@pytest.mark.parametrize("kind", [ak.Convolutional, ak.SeparableConvolutional])
def test_silent_channels_are_looked_for_once_per_call(kind, monkeypatch):
    model = ak.Model()
    model.add(ak.InputData((16, 16, 32), input_bits=4, name="in"))
    model.add(kind((3, 3), 64, weights_bits=4, act_bits=4, name="layer"))
    layer = model.get_layer("layer")
    x = np.zeros((4, 16, 16, 32), np.uint8)
    x[..., 3] = 5  # 1 of 32 channels live: the plain forward skips the others
    expected = layer._forward(x)
    searches = []
    find = shared.live_channels
    monkeypatch.setattr(kernels.shared, "live_channels", lambda *a: searches.append(1) or find(*a))
    np.testing.assert_array_equal(layer._buffered_forward(x.shape)(x), expected)
    assert len(searches) == 1


def _events(model):
    return {name: (s.samples, s.events) for name, s in model.statistics.layers.items()}


def test_small_calls_of_a_chain_of_layers_skip_the_per_layer_decisions(monkeypatch):
    model = _pooled_model(ak.PoolType.Max, ak.Padding.Same)
    from bench.models import randomize
    randomize(model, seed=4)
    x = random_inputs(model, 2, seed=5)
    monkeypatch.setattr(inference, "BUFFERED_BYTES", 0)  # the regular path, piece by piece
    regular = model.forward(x)
    regular_events = _events(model)
    monkeypatch.setattr(inference, "BUFFERED_BYTES", 4 * 2 ** 20)

    def refuse(*args, **kwargs):
        raise AssertionError("a small call of a chain of buffered layers should not run piece by piece")
    monkeypatch.setattr(running, "run_piece", refuse)
    model._plan = None  # a fresh plan: the chain is made on the next call
    np.testing.assert_array_equal(model.forward(x), regular)
    assert _events(model) == regular_events  # the same statistics
    np.testing.assert_array_equal(model.forward(x), _plain(model, x))
    assert len(model._plan._chains._forwards) == 1


def test_no_chain_for_calls_beyond_the_buffered_size(monkeypatch):
    model = BENCHMARK_MODELS["mnist_cnn"]()
    x = random_inputs(model, 1)
    plan = model._inference_plan(model._layers)
    assert inference.buffered_chain(plan, x.shape) is not None
    monkeypatch.setattr(inference, "BUFFERED_BYTES", 0)  # a new limit takes effect at once
    assert inference.buffered_chain(plan, x.shape) is None
    np.testing.assert_array_equal(model.forward(x), _plain(model, x))
