"""The work calibration does (not its time): one pass over the samples, histograms that merge
exactly whatever the batches, the positions they read, and the range search against a
brute-force reference."""
import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from quantizeml import Akida1QuantizationParams, calibrate as calibration
from quantizeml.models import quantize
from quantizeml.v2.observe import observe_ranges

from .conftest import small_cnn

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
# the module (quantizeml.models.quantize is also the name of the function)
quantize_module = importlib.import_module("quantizeml.models.quantize")


def _weights(qmodel):
    return [np.asarray(w) for layer in qmodel.layers for w in layer.get_weights()]


def test_the_float_model_runs_once_over_the_samples(monkeypatch):
    model = small_cnn()
    x = np.random.default_rng(1).integers(0, 256, (40, 12, 12, 1)).astype(np.float32)
    steps = []
    run_step = calibration._run_step

    def spy(step, batch, index):
        steps.append((len(batch), int(index[0])))
        return run_step(step, batch, index)

    monkeypatch.setattr(calibration, "_run_step", spy)
    quantize(model, qparams=Akida1QuantizationParams(), samples=x, batch_size=16, verbose=0)
    # each sample once (maxima and histograms in the same pass), with its index
    assert steps == [(16, 0), (16, 16), (8, 32)]


def test_ranges_do_not_depend_on_the_batches():
    # the histograms merge exactly at the final bound, whatever bound each batch had
    model = small_cnn()
    x = np.random.default_rng(2).integers(0, 256, (40, 12, 12, 1)).astype(np.float32)
    x[33] = 255  # a late batch raises the maxima
    params = Akida1QuantizationParams()
    whole = quantize(model, qparams=params, samples=x, batch_size=40, verbose=0)
    for size in (1, 7, 16):
        split = quantize(model, qparams=params, samples=x, batch_size=size, verbose=0)
        for a, b in zip(_weights(whole), _weights(split), strict=True):
            np.testing.assert_array_equal(a, b)


def test_input_statistics_read_every_value_of_every_batch():
    model = small_cnn(channels=3)
    float_model = quantize_module.build_float_model(
        quantize_module.sanitize(quantize_module.to_spec(model)))
    x = np.random.default_rng(3).integers(0, 200, (24, 12, 12, 3)).astype(np.float32)
    x[17, 11, 11, 2] = -3.0  # one low value in the last position of a later batch
    x[9, 0, 5, 1] = 250.0
    batches = [x[:8], x[8:16], x[16:]]
    stats = calibration.observe(float_model, ["re_lu"], batches, verbose=0, total=3)
    np.testing.assert_array_equal(stats["input_min"], x.min(axis=(0, 1, 2)))
    np.testing.assert_array_equal(stats["input_max"], x.max(axis=(0, 1, 2)))
    assert float(np.max(stats["input_fraction"])) == 0.0  # integers everywhere
    x[21, 6, 3, 0] = 17.25  # a single fractional value decides
    stats = calibration.observe(float_model, ["re_lu"], [x[:8], x[8:16], x[16:]], verbose=0,
                                total=3)
    assert float(np.max(stats["input_fraction"])) == 0.25


def test_integer_samples_keep_the_identity_input_quantizer():
    model = small_cnn()
    # codes up to 100 only: integers keep the identity, where a range would give 100 / 255
    x = np.random.default_rng(4).integers(0, 101, (16, 12, 12, 1)).astype(np.float32)
    params = Akida1QuantizationParams()
    quantizer = quantize(model, qparams=params, samples=x, verbose=0).layers[1].quantizer
    assert (quantizer.scale, quantizer.zero_point) == (1.0, 0)
    x[15, 11, 11, 0] = 99.5  # one value between integers, in the last batch: not codes
    quantizer = quantize(model, qparams=params, samples=x, batch_size=8,
                         verbose=0).layers[1].quantizer
    assert quantizer.scale == np.float32(100 / 255)


def test_akida2_observer_is_traced_once_for_uneven_batches():
    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, keras.layers.ReLU(name="r")(inputs))
    batches = [np.ones((32, 4, 4, 2), np.float32), np.ones((32, 4, 4, 2), np.float32),
               np.ones((8, 4, 4, 2), np.float32)]
    assert observe_ranges(model, ["r"], batches)["traces"] == 1


def _reference_counts(values, exponent):
    """Loop reference: bin ceil(v · BINS / 2^(e+1)) of every positive value (float64: exact)."""
    bins = calibration.HISTOGRAM_BINS
    counts = np.zeros((values.shape[-1], bins + 1), np.int64)
    for (*_, channel), value in np.ndenumerate(values):
        if value > 0:
            counts[channel, int(np.ceil(float(value) * bins / 2.0 ** (exponent[channel] + 1)))] += 1
    return counts


@pytest.mark.parametrize("seed", range(4))
def test_histograms_merge_exactly_into_the_counts_at_the_final_bound(seed):
    rng = np.random.default_rng(seed)
    channels = int(rng.integers(1, 6))
    # ReLU outputs: zeros, values spread over several octaves, exact powers of two, bin edges
    scale = 2.0 ** rng.integers(-6, 6, channels)
    batches = [np.maximum(rng.normal(0, 1, (int(rng.integers(1, 30)), channels)), 0) * scale
               * rng.uniform(0.05, 3) for _ in range(5)]
    batches[1][0] = scale  # a power of two: the bound is strictly above the maximum
    batches[2][0] = scale * 3 / calibration.HISTOGRAM_BINS  # on a bin edge of 2^(e+1)
    batches = [b.astype(np.float32) for b in batches]
    histogram = calibration.Histogram(channels)
    for batch in batches:
        peak = tf.reduce_max(tf.constant(batch), axis=0)
        power = calibration._power_below(peak)
        counts = calibration._histogram_counts(tf.constant(batch), power)
        histogram.add(np.asarray(counts).reshape(channels, -1), np.log2(np.asarray(power)))
    values = np.concatenate(batches)
    peak = values.max(axis=0)
    expected_exponent = np.floor(np.log2(np.maximum(peak, 2.0 ** calibration.MIN_EXPONENT)))
    np.testing.assert_array_equal(histogram.exponent, expected_exponent)
    assert np.all(histogram.bounds > peak) and np.all(histogram.bounds <= 2 * np.maximum(peak, 0))
    expected = _reference_counts(values, histogram.exponent)
    np.testing.assert_array_equal(histogram.counts[:, 1:], expected[:, 1:])


def test_a_dead_channel_has_an_empty_histogram():
    values = np.zeros((8, 2), np.float32)
    values[:, 1] = 0.5
    peak = tf.reduce_max(tf.constant(values), axis=0)
    power = calibration._power_below(peak)
    assert list(np.asarray(power)) == [2.0 ** calibration.MIN_EXPONENT, 0.5]
    counts = np.asarray(calibration._histogram_counts(tf.constant(values), power)).reshape(2, -1)
    assert counts[0, 1:].sum() == 0 and counts[1, 1:].sum() == 8
    assert counts[1, calibration.HISTOGRAM_BINS // 2] == 8  # 0.5 on ]0, 1]: the middle bin


@pytest.mark.parametrize("positions, samples, expected", [
    (64 * 64, 1024, 64),  # 64 positions per sample
    (32 * 32, 1024, 16),
    (8 * 8, 1024, 1),  # 64 positions: all
    (4 * 4, 1024, 1),
    (64 * 64, 10, 1),  # few samples: 6,554 positions wanted, 4,096 there
    (49 * 10, 1024, 7),  # the largest divisor that leaves 64: 70 positions
    (4099, 1024, 1),  # a prime count: all
    (1, 1024, 1),  # a Dense output
])
def test_histogram_stride(positions, samples, expected):
    stride = calibration.histogram_stride(positions, samples)
    assert stride == expected and positions % stride == 0
    target = max(calibration.HISTOGRAM_POSITIONS, -(-calibration.HISTOGRAM_VALUES // samples))
    assert positions // stride >= min(target, positions)


def test_consecutive_samples_read_every_position_once():
    # value = the position's index: over `stride` consecutive samples each position comes once,
    # borders included, whatever the first sample's index
    height, width, stride = 6, 8, 12
    positions = np.arange(height * width, dtype=np.float32).reshape(1, height, width, 1)
    value = tf.constant(np.repeat(positions, 2 * stride, axis=0))
    for first in (0, 5):
        index = tf.range(first, first + 2 * stride)
        picked = np.asarray(calibration._sampled(value, stride, index))
        assert picked.shape == (2 * stride, height * width // stride, 1)
        counts = np.bincount(picked.astype(np.int64).ravel(), minlength=height * width)
        assert np.all(counts == 2)
        assert list(picked[0, :, 0]) == list(range(first % stride, height * width, stride))


def _brute_force_errors(counts, upper, levels, per_tensor, bounds):
    bins = counts.shape[1]
    centers = (np.arange(bins) + 0.5) / bins * bounds[:, None]
    top = upper.max() if per_tensor else upper[:, None]
    errors = []
    for fraction in calibration.RANGE_SEARCH:
        step = fraction * top / levels
        error = (counts * (centers - np.clip(np.round(centers / step), 0, levels) * step) ** 2
                 ).sum(axis=1)
        errors.append(np.full_like(error, error.sum()) if per_tensor else error)
    return np.array(errors)


@pytest.mark.parametrize("seed", range(12))
def test_range_search_finds_the_least_error_of_the_brute_force(seed):
    rng = np.random.default_rng(seed)
    channels, bins = int(rng.integers(1, 20)), int(rng.choice([16, 256, 512]))
    levels = int(rng.choice([1, 3, 15]))
    counts = rng.integers(0, 100, (channels, bins)) * (rng.random((channels, bins)) < 0.7)
    upper = rng.uniform(0.01, 6, channels)
    bounds = upper * rng.uniform(1, 2, channels)
    for per_tensor in (False, True):
        ranges = calibration.search_range(counts, upper, levels, per_tensor, bounds)
        errors = _brute_force_errors(counts.astype(np.float64), upper, levels, per_tensor, bounds)
        top = np.full(channels, upper.max()) if per_tensor else upper
        chosen = [np.argmin(np.abs(calibration.RANGE_SEARCH * top[c] - ranges[c]))
                  for c in range(channels)]
        np.testing.assert_allclose(ranges, calibration.RANGE_SEARCH[chosen] * top)
        got = errors[chosen, np.arange(channels)]
        np.testing.assert_allclose(got, errors.min(axis=0), rtol=1e-9, atol=1e-12)
