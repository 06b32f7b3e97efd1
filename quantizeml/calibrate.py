"""Calibration: observe a float model on samples and record input statistics and ReLU ranges.

One pass over the samples records per-channel maxima and histograms (``observe``), from which
``search_range`` picks each ReLU's range. Maxima are reduced across replicas with a MAX (gather
then max; never MEAN) and histogram counts with a SUM at a common bound (``Histogram``), so
calibration under a ``tf.distribute`` strategy gives exactly the single-device ranges.
"""
from __future__ import annotations

import sys
import warnings

import keras
import numpy as np
import tensorflow as tf

from .errors import CalibrationError


def _as_array(batch, input_shape, where):
    if isinstance(batch, (tuple, list)) and len(batch) in (1, 2, 3) and not np.isscalar(batch[0]):
        batch = batch[0]  # (x, y[, sample_weight]) from a dataset
    try:
        array = np.asarray(batch)
    except (TypeError, ValueError) as err:
        raise CalibrationError(f"{where}: a batch cannot be read as an array: {err}") from err
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise CalibrationError(f"{where}: samples of dtype {array.dtype}; expected numbers.")
    if array.ndim != len(input_shape) + 1 or tuple(array.shape[1:]) != tuple(input_shape):
        raise CalibrationError(
            f"{where}: a batch has shape {array.shape}; expected (batch,) + {tuple(input_shape)} "
            "(the model input shape).")
    array = array.astype(np.float32, copy=False)  # read only: no copy of float32 samples
    if not np.all(np.isfinite(array)):
        raise CalibrationError(f"{where}: samples hold NaN or Inf values.")
    return array


def iterate_batches(samples, input_shape, num_samples=1024, batch_size=None, epochs=1,
                    where="calibration"):
    """Yield float32 batches (at most ``num_samples`` samples per epoch) from an array, an iterable
    of batches or a tf.data.Dataset.

    Raises:
        CalibrationError: empty/exhausted data, wrong shapes or dtypes, NaN/Inf.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples <= 0:
        raise CalibrationError(f"{where}: num_samples={num_samples!r}; must be a positive int.")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size <= 0):
        raise CalibrationError(f"{where}: batch_size={batch_size!r}; must be a positive int.")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0:
        raise CalibrationError(f"{where}: epochs={epochs!r}; must be a positive int.")
    is_array = isinstance(samples, np.ndarray)
    if is_array:
        array = _as_array(samples, input_shape, where)
        if len(array) == 0:
            raise CalibrationError(f"{where}: the samples array is empty.")
        array = array[:num_samples]
        size = batch_size or min(len(array), 128)
    elif not hasattr(samples, "__iter__"):
        raise CalibrationError(f"{where}: samples of type {type(samples).__name__}; expected a "
                               "numpy array, an iterable of batches or a tf.data.Dataset.")
    for epoch in range(epochs):
        seen = 0
        if is_array:
            for start in range(0, len(array), size):
                yield array[start:start + size]
            continue
        for batch in samples:
            if isinstance(batch, tf.Tensor) or (isinstance(batch, (tuple, list)) and batch and
                                                isinstance(batch[0], tf.Tensor)):
                batch = tf.nest.map_structure(lambda t: t.numpy(), batch)
            array = _as_array(batch, input_shape, where)[: num_samples - seen]
            if len(array):
                seen += len(array)
                yield array
            if seen >= num_samples:
                break
        if seen == 0:
            raise CalibrationError(f"{where}: the samples iterable yielded no data (empty or "
                                   f"exhausted generator) in epoch {epoch + 1}.")


def _run_step(step, batch, index) -> list:
    """``step`` on one batch and its samples' indices; each output as a numpy array whose first
    axis holds the replicas.

    Under a ``tf.distribute`` strategy the batch is split across replicas and every replica's
    result gathered; without one, ``step`` runs directly (a tf.data pipeline and a distributed
    iterator per batch cost about 0.1 s each for nothing).
    """
    if not tf.distribute.has_strategy():
        return [np.asarray(value)[None] for value in step(tf.constant(batch), tf.constant(index))]
    strategy = tf.distribute.get_strategy()
    dataset = tf.data.Dataset.from_tensor_slices((batch, index)).batch(len(batch))
    values = None
    for x, i in strategy.experimental_distribute_dataset(dataset):
        # through a Python function: a tf.function with an input signature cannot bind PerReplica
        per_replica = strategy.run(lambda value, where: step(value, where), args=(x, i))
        # the replicas' vectors end to end: one row each
        values = [np.asarray(strategy.gather(value, axis=0)).reshape(strategy.num_replicas_in_sync, -1)
                  for value in per_replica]
    return values


def plain_verbose(verbose: int, stream=None) -> int:
    """Keras ``verbose`` 1 (the progress bar) becomes 2 (one plain line) when ``stream`` (default
    stdout) is not a terminal: Keras 3 draws its bar with escape codes and backspaces on POSIX
    systems, terminal or not, which fills files and CI logs with unreadable lines."""
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    if verbose == 1 and not (isatty is not None and isatty()):
        return 2
    return verbose


def observe(float_model: keras.Model, layer_names: list[str], batches, verbose: int = 1,
            total: int | None = None) -> dict:
    """Run ``float_model`` once over ``batches``; return per-channel statistics.

    Returns:
        ``{"input_min", "input_max", "input_fraction"}`` (per input channel: min and max; over
        every value: the largest distance to an integer), and for each layer of ``layer_names`` the
        statistics of its output at the positions each sample reads (``histogram_stride``: every
        position of small maps): ``{"layers": {name: per-channel max}}`` and
        ``{"histograms": {name: Histogram}}`` (each channel's positive values, in bins whose edges
        do not depend on the batches).

    Raises:
        CalibrationError: no samples; a layer's observed values overflow to Inf or NaN.
    """
    batches = list(batches)
    samples = sum(len(batch) for batch in batches)
    outputs = [float_model.get_layer(name).output for name in layer_names]
    observer = keras.Model(float_model.inputs, outputs)
    strides = [histogram_stride(int(np.prod(tensor.shape[1:-1])), samples)
               for tensor in observer.outputs]
    channels = [int(tensor.shape[-1]) for tensor in observer.outputs]
    signature = [tf.TensorSpec((None,) + tuple(float_model.inputs[0].shape[1:]), tf.float32),
                 tf.TensorSpec((None,), tf.int32)]

    # autograph=False: Python loops over layers only; converting the code costs ~0.3 s a trace.
    # One trace for every batch size (the last batch is often smaller).
    @tf.function(autograph=False, input_signature=signature)
    def step(x, index):
        values = observer(x, training=False)
        values = values if isinstance(values, (list, tuple)) else [values]
        axes = list(range(len(x.shape) - 1))
        # minus the minimum: every statistic reduces with a MAX across batches and replicas
        stats = [-tf.reduce_min(x, axis=axes), tf.reduce_max(x, axis=axes),
                 tf.reshape(tf.reduce_max(tf.abs(x - tf.round(x))), [1])]
        for value, stride in zip(values, strides):
            value = _sampled(value, stride, index)
            peak = tf.reduce_max(value, axis=list(range(len(value.shape) - 1)))
            power = _power_below(peak)
            stats += [peak, power, _histogram_counts(value, power)]
        return stats

    progbar = keras.utils.Progbar(total, verbose=plain_verbose(verbose), unit_name="batch")
    result, count = None, 0
    histograms = [Histogram(c) for c in channels]
    start = 0
    for batch in batches:
        returned = _run_step(step, batch, np.arange(start, start + len(batch), dtype=np.int32))
        start += len(batch)
        # tf.distribute.ReduceOp has only SUM/MEAN: gather every replica's maxima, then MAX.
        reduced = [np.max(value, axis=0) for value in returned[:3]]
        for index, histogram in enumerate(histograms):
            peak, power, counts = returned[3 + 3 * index: 6 + 3 * index]
            reduced.append(np.max(peak, axis=0))
            exponent = np.frexp(power)[1] - 1  # power = 2^e exactly
            for replica in range(len(exponent)):  # a replica's counts at its own bound
                histogram.add(counts[replica].reshape(histogram.counts.shape), exponent[replica])
        result = reduced if result is None else [np.maximum(a, b) for a, b in zip(result, reduced)]
        count += 1
        progbar.update(count)
    if result is None:
        raise CalibrationError("calibration: no samples were given.")
    overflowed = [name for name, value in zip(layer_names, result[3:])
                  if not np.all(np.isfinite(value))]
    if overflowed:
        raise CalibrationError(
            f"calibration: the float model's outputs overflow to Inf/NaN at layer(s) "
            f"{', '.join(repr(n) for n in overflowed)} on these samples; check the weights (huge "
            "magnitudes or a corrupted file) and the input range.")
    return {"input_min": -result[0], "input_max": result[1], "input_fraction": result[2],
            "layers": dict(zip(layer_names, result[3:])),
            "histograms": dict(zip(layer_names, histograms))}


#: Histogram bins per channel. A channel whose observed maximum m lies in [2^e, 2^(e+1)) is counted
#: on ]0, 2^(e+1)] (bin k holds ](k-1)·2^(e+1)/BINS, k·2^(e+1)/BINS]): [0, m] spans 256 to 512 bins.
HISTOGRAM_BINS = 512
#: Each channel's histogram reads at least this many values over the calibration samples when its
#: layer has them: every s-th position of each sample (``histogram_stride``), all positions of small
#: maps. For the range search, 65,536 values per channel give the same choice as millions; counting
#: every value of AkidaNet-like layers (514 M values on 1,024 samples) cost about as much as running
#: the float model (1.4-1.7 s).
HISTOGRAM_VALUES = 2 ** 16
#: Positions per sample read by the histograms at least.
HISTOGRAM_POSITIONS = 64
#: Observed maxima below 2^MIN_EXPONENT are counted on ]0, 2^(MIN_EXPONENT + 1)] (their values
#: are then at most a few bins: a dead or almost dead channel), which keeps every scale normal.
MIN_EXPONENT = -100


def histogram_stride(positions: int, samples: int) -> int:
    """Every how many positions a sample's histogram reads in an output of ``positions`` spatial
    positions: the largest divisor s of ``positions`` that leaves at least
    ``max(HISTOGRAM_POSITIONS, HISTOGRAM_VALUES / samples)`` of them (1: all).

    Sample i reads positions o, o + s, o + 2s, ... (row-major) with o = i mod s (``_sampled``): over
    s consecutive samples every position is read once, borders included, so the histograms see the
    whole map's distribution, at a fraction of the counting.
    """
    target = max(HISTOGRAM_POSITIONS, -(-HISTOGRAM_VALUES // max(samples, 1)))
    best = 1
    for stride in range(2, positions // target + 1):
        if positions % stride == 0:
            best = stride
    return best


def _sampled(value, stride, index):
    """The positions of ``value`` (n, ..., c) that sample ``index[i]`` reads (``histogram_stride``):
    (n, positions / stride, c), or ``value`` itself when the stride is 1."""
    if stride == 1:
        return value
    positions, channels = int(np.prod(value.shape[1:-1])), int(value.shape[-1])
    cells = tf.reshape(value, [-1, positions // stride, stride, channels])
    return tf.gather(cells, tf.math.floormod(index, stride), axis=2, batch_dims=1)


def _power_below(peak):
    """Per channel, 2^e with 2^e <= peak < 2^(e+1) (the float32 exponent bits alone), at least
    2^MIN_EXPONENT (zero, negative or subnormal peaks: dead channels)."""
    bits = tf.bitcast(tf.maximum(peak, tf.constant(2.0 ** MIN_EXPONENT, tf.float32)), tf.int32)
    return tf.bitcast(tf.bitwise.bitwise_and(bits, 0x7F800000), tf.float32)


def _histogram_counts(value, power):
    """Counts (channels · (HISTOGRAM_BINS + 1),) of ``value`` (..., channels): bin
    ceil(v · BINS / 2^(e+1)) per channel (``power`` = 2^e), 0 for values <= 0 (dropped later).

    The scale BINS / 2^(e+1) is a power of two, so every product is exact and a bin never depends
    on rounding: the counts merge exactly at another bound (``Histogram.add``).
    """
    channels = int(value.shape[-1])
    bins = HISTOGRAM_BINS + 1
    scale = (HISTOGRAM_BINS / 2) / power  # exact: a power of two over a power of two
    flat = tf.reshape(value, [-1, channels])
    # v <= peak < 2^(e+1): at most bin BINS. NaN and Inf (whose cast gives INT_MIN; observe refuses
    # them afterwards) go to bin 0, as would negative values (no ReLU makes them): Bincount refuses
    # negative indices.
    offsets = tf.constant(np.arange(channels, dtype=np.int32) * bins)
    index = tf.maximum(tf.cast(tf.math.ceil(flat * scale), tf.int32), 0) + offsets
    # the raw op: tf.math.bincount adds a clipping pass and checks (4x the tracing time)
    return tf.raw_ops.Bincount(arr=tf.reshape(index, [-1]), size=channels * bins,
                               weights=tf.constant([], tf.int32))


class Histogram:
    """Per-channel counts of positive values, channel c on ]0, 2^(exponent[c] + 1)] in
    HISTOGRAM_BINS bins (``counts[:, k]`` for bin k; column 0 counts the values <= 0).

    Counts taken at a smaller bound merge exactly into a larger one: bin k at bound 2^(e+1) is bin
    ceil(k / 2^d) at bound 2^(e+d+1), as ceil(ceil(x) / 2^d) = ceil(x / 2^d). So the counts equal
    those of all the values at the final bound, whatever the batches or replicas they came in.
    """

    def __init__(self, channels: int):
        self.counts = np.zeros((channels, HISTOGRAM_BINS + 1), np.int64)
        self.exponent = np.full(channels, MIN_EXPONENT, np.int64)

    def add(self, counts: np.ndarray, exponent: np.ndarray) -> None:
        """Add ``counts`` (channels, HISTOGRAM_BINS + 1) taken at bounds 2^(exponent + 1)."""
        exponent = np.asarray(exponent, np.int64)
        target = np.maximum(self.exponent, exponent)
        self.counts = (_rebin(self.counts, target - self.exponent)
                       + _rebin(counts, target - exponent))
        self.exponent = target

    @property
    def bounds(self) -> np.ndarray:
        """Per channel, the top of the counted range: 2^(exponent + 1)."""
        return np.ldexp(1.0, self.exponent + 1)


def _rebin(counts: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``counts`` (channels, bins + 1) moved to bounds 2^shift times larger (bin k becomes bin
    ceil(k / 2^shift))."""
    counts = np.asarray(counts, np.int64)
    rows = np.flatnonzero((shift > 0) & counts.any(axis=1))  # empty rows (the first add) stay empty
    if not len(rows):
        return counts
    width = counts.shape[1]
    steps = np.minimum(shift[rows], HISTOGRAM_BINS.bit_length())[:, None]  # beyond: all in bin 1
    moved = (np.arange(width)[None, :] + (1 << steps) - 1) >> steps
    result = counts.copy()
    result[rows] = 0
    np.add.at(result, (rows[:, None], moved), counts[rows])
    return result


#: Fractions of the observed maximum tried as activation range.
RANGE_SEARCH = np.linspace(0.05, 1.0, 96)


def search_range(counts: np.ndarray, upper: np.ndarray, levels: int, per_tensor: bool,
                 bounds: np.ndarray | None = None):
    """Return the activation range (per channel) with the least squared quantization error.

    The error of a step s is sum_k n_k (c_k - q_k)^2 over the bins (centre c_k, count n_k), with
    q_k = s · min(round(c_k / s), levels). The bins of one level j form a run, so it is
    sum n c^2 - sum_j (2 s j S_j - s^2 j^2 N_j) with N_j, S_j the run's counts and count-weighted
    centres, read from prefix sums: the work grows with the levels, not with the bins.

    Args:
        counts: (channels, bins) histogram of positive values over ``[0, bounds]`` in equal bins,
            each bin's values taken at its centre.
        upper: (channels,) observed maxima (> 0): the ranges tried are ``RANGE_SEARCH · upper``.
        levels: ``2**bits - 1``.
        per_tensor: one range shared by all channels.
        bounds: (channels,) tops of the histograms (default: ``upper``).

    Returns:
        (channels,) ranges; among equal errors, the smallest.
    """
    upper = np.asarray(upper, np.float64)
    bounds = upper if bounds is None else np.asarray(bounds, np.float64)
    counts = np.asarray(counts, np.float64)
    channels, bins = counts.shape
    width = bounds / bins
    centers = (np.arange(bins) + 0.5) * width[:, None]
    total = np.einsum("ij,ij,ij->i", counts, centers, centers)
    prefix_n = np.zeros((channels, bins + 1))
    prefix_s = np.zeros((channels, bins + 1))
    np.cumsum(counts, axis=1, out=prefix_n[:, 1:])
    np.cumsum(counts * centers, axis=1, out=prefix_s[:, 1:])
    top = np.full(channels, upper.max()) if per_tensor else upper
    level = np.arange(1, levels + 1, dtype=np.float64)
    rows = (np.arange(channels) * (bins + 1))[:, None]  # offsets of the channels in the prefixes
    flat_n, flat_s = prefix_n.ravel(), prefix_s.ravel()
    errors = np.empty((len(RANGE_SEARCH), channels))
    for index, fraction in enumerate(RANGE_SEARCH):  # small arrays: one fraction at a time
        step = (fraction * top / levels)[:, None]
        # level j's run starts at the first bin whose centre reaches (j - 1/2)·s, and ends where
        # j+1's starts (the last at the end: min(., levels) puts everything above in it)
        starts = np.ceil((level - 0.5) * (step / width[:, None]) - 0.5)
        starts = np.clip(starts, 0, bins).astype(np.int64) + rows
        ends = np.empty_like(starts)
        ends[:, :-1] = starts[:, 1:]
        ends[:, -1] = rows[:, 0] + bins
        run_n = flat_n[ends] - flat_n[starts]
        run_s = flat_s[ends] - flat_s[starts]
        errors[index] = total - (step * level * (2 * run_s - step * level * run_n)).sum(axis=1)
    if per_tensor:
        errors = np.broadcast_to(errors.sum(axis=1, keepdims=True), errors.shape)
    best = np.argmin(errors, axis=0)  # the first (smallest) fraction among equal errors
    return RANGE_SEARCH[best] * top


def random_samples(input_shape, bits: int, num_samples: int, seed: int = 0) -> np.ndarray:
    """Random integer inputs in [0, 2**bits - 1] (used when no samples are given)."""
    warnings.warn("No calibration samples: calibrating on random integer inputs; ranges will be "
                  "poor. Pass samples=... for a useful model.", UserWarning, stacklevel=3)
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2**bits, (num_samples,) + tuple(input_shape)).astype(np.float32)
