"""Calibration: observe a float model on samples and record input statistics and ReLU ranges.

Pass 1 records maxima, pass 2 per-channel histograms used by ``search_range``. Maxima are reduced
across replicas with a MAX (gather then max; never MEAN) and counts with a SUM, so calibration
under a ``tf.distribute`` strategy gives exactly the single-device ranges.
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


def _run_step(step, batch) -> list:
    """``step`` on one batch; each output as a numpy array whose first axis holds the replicas.

    Under a ``tf.distribute`` strategy the batch is split across replicas and every replica's
    result gathered; without one, ``step`` runs directly (a tf.data pipeline and a distributed
    iterator per batch cost about 0.1 s each for nothing).
    """
    if not tf.distribute.has_strategy():
        return [np.asarray(value) for value in step(tf.constant(batch))]
    strategy = tf.distribute.get_strategy()
    dataset = tf.data.Dataset.from_tensor_slices(batch).batch(len(batch))
    values = None
    for x in strategy.experimental_distribute_dataset(dataset):
        per_replica = strategy.run(step, args=(x,))
        values = [np.asarray(strategy.gather(value, axis=0)) for value in per_replica]
    return values


def _keeps_outputs(observer: keras.Model, batches) -> bool:
    """Whether the observed outputs of every batch fit ``KEEP_OUTPUTS_BYTES`` (then pass 2 reads
    them instead of running the model again); never under a distribution strategy."""
    if tf.distribute.has_strategy() or not isinstance(batches, list):
        return False
    per_sample = sum(int(np.prod(tensor.shape[1:])) for tensor in observer.outputs) * 4
    return per_sample * sum(len(batch) for batch in batches) <= KEEP_OUTPUTS_BYTES


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
    """Run ``float_model`` on ``batches``; return per-channel statistics.

    Returns:
        ``{"input_min", "input_max", "input_fraction"}`` (per input channel: min, max, largest
        distance to an integer), ``{"layers": {name: per-channel max of its output}}`` and
        ``"outputs"``: {name: that layer's output per batch} when they fit
        ``KEEP_OUTPUTS_BYTES``, else None.
    """
    outputs = [float_model.get_layer(name).output for name in layer_names]
    observer = keras.Model(float_model.inputs, outputs)
    keep = bool(layer_names) and _keeps_outputs(observer, batches)

    # autograph=False: Python loops over layers only; converting the code costs ~0.3 s a trace
    @tf.function(autograph=False)
    def step(x):
        values = observer(x, training=False)
        values = values if isinstance(values, (list, tuple)) else [values]
        axes = list(range(len(x.shape) - 1))
        stats = [tf.reduce_max(-x, axis=axes), tf.reduce_max(x, axis=axes),
                 tf.reduce_max(tf.abs(x - tf.round(x)), axis=axes)]
        stats += [tf.reduce_max(v, axis=list(range(len(v.shape) - 1))) for v in values]
        return [stat[None] for stat in stats] + (list(values) if keep else [])

    progbar = keras.utils.Progbar(total, verbose=plain_verbose(verbose), unit_name="batch")
    result, count, kept = None, 0, [[] for _ in layer_names] if keep else None
    for batch in batches:
        if keep:
            returned = step(tf.constant(batch))
            for store, value in zip(kept, returned[-len(layer_names):]):
                store.append(value)
            returned = [np.asarray(value) for value in returned[:-len(layer_names)]]
        else:
            returned = _run_step(step, batch)
        # tf.distribute.ReduceOp has only SUM/MEAN: gather every replica's maxima, then MAX.
        reduced = [np.max(value, axis=0) for value in returned]
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
            "outputs": dict(zip(layer_names, kept)) if keep else None}


#: Observed outputs kept in memory by pass 1 for pass 2 up to this size (pass 2 then does not
#: run the model again).
KEEP_OUTPUTS_BYTES = 256 * 2**20
#: Histogram bins per channel used by the activation range search.
HISTOGRAM_BINS = 256
#: Fractions of the observed maximum tried as activation range.
RANGE_SEARCH = np.linspace(0.05, 1.0, 96)


def _histograms(values, bounds) -> list:
    """Per-channel counts of the positive ``values`` in HISTOGRAM_BINS bins over [0, bound]."""
    counts = []
    for value, bound in zip(values, bounds):
        channels = bound.shape[0]
        flat = tf.reshape(value, [-1, channels])
        index = tf.cast(tf.floor(flat / bound * HISTOGRAM_BINS), tf.int32)
        index = tf.minimum(index, HISTOGRAM_BINS - 1) + tf.range(channels) * HISTOGRAM_BINS
        # zeros quantize exactly (no error): they go to one extra bin, dropped after counting (an
        # elementwise select costs less than gathering the positive values: pass 2 4.7 -> 3.9 s on
        # the AkidaNet-like benchmark)
        index = tf.where(flat > 0, index, channels * HISTOGRAM_BINS)
        count = tf.math.bincount(tf.reshape(index, [-1]), minlength=channels * HISTOGRAM_BINS + 1,
                                 maxlength=channels * HISTOGRAM_BINS + 1, dtype=tf.float64)
        counts.append(tf.reshape(count[:-1], [1, channels, HISTOGRAM_BINS]))
    return counts


def _numpy_histogram(value: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """``_histograms`` of one output in numpy: the same float32 operations, the same counts.

    For positive values the integer cast is the floor; values <= 0 land in bin 0 (clip) and are
    taken out of it afterwards (cheaper than masking them out first).
    """
    channels = bound.shape[0]
    flat = value.reshape(-1, channels)
    scaled = np.divide(flat, bound, dtype=np.float32)
    scaled *= np.float32(HISTOGRAM_BINS)
    index = scaled.astype(np.int32)
    np.clip(index, 0, HISTOGRAM_BINS - 1, out=index)
    index += np.arange(channels, dtype=np.int32) * HISTOGRAM_BINS
    count = np.bincount(index.ravel(), minlength=channels * HISTOGRAM_BINS)
    count = count.reshape(channels, HISTOGRAM_BINS)
    # TF flushes subnormals to zero: its ``flat > 0`` is false for them too
    count[:, 0] -= np.count_nonzero(flat < np.finfo(np.float32).tiny, axis=0)
    return count.astype(np.float64)


def observe_histograms(float_model: keras.Model, upper: dict, batches, outputs=None) -> dict:
    """Per-channel histograms of the positive outputs of layers ``upper`` (name -> per-channel
    upper bound, > 0) over ``[0, upper]``; counts are summed across replicas (exact).

    ``outputs``: the layers' outputs per batch kept by ``observe``: counted without running the
    model again (the same float values, so the same counts).
    """
    names = list(upper)
    if outputs is not None:  # numpy: tracing the TF version cost more than the counting
        return {name: sum(_numpy_histogram(np.asarray(value), np.float32(upper[name]))
                          for value in outputs[name]) for name in names}
    bounds = [tf.constant(np.asarray(upper[name], np.float32)) for name in names]
    observer = keras.Model(float_model.inputs,
                           [float_model.get_layer(name).output for name in names])

    @tf.function(autograph=False)
    def step(x):
        values = observer(x, training=False)
        return _histograms(values if isinstance(values, (list, tuple)) else [values], bounds)

    totals = None
    for batch in batches:
        counts = [np.sum(value, axis=0) for value in _run_step(step, batch)]
        totals = counts if totals is None else [a + b for a, b in zip(totals, counts)]
    return dict(zip(names, totals))


def search_range(counts: np.ndarray, upper: np.ndarray, levels: int, per_tensor: bool):
    """Return the activation range (per channel) with the least squared quantization error.

    Args:
        counts: (channels, bins) histogram of positive values over ``[0, upper]``.
        upper: (channels,) observed maxima (> 0).
        levels: ``2**bits - 1``.
        per_tensor: one range shared by all channels.
    """
    upper = np.asarray(upper, np.float64)
    centers = (np.arange(HISTOGRAM_BINS) + 0.5) / HISTOGRAM_BINS * upper[:, None]
    top = upper.max() if per_tensor else upper[:, None]
    best, best_error = np.broadcast_to(upper.max() if per_tensor else upper, upper.shape).copy(), \
        None
    for fraction in RANGE_SEARCH:
        step = fraction * top / levels
        quantized = np.clip(np.round(centers / step), 0, levels) * step
        error = (counts * (centers - quantized) ** 2).sum(axis=1)
        if per_tensor:
            error = np.full_like(error, error.sum())
        candidate = np.broadcast_to(fraction * (top if per_tensor else upper), upper.shape)
        better = error < best_error if best_error is not None else np.ones_like(error, bool)
        best = np.where(better, candidate, best)
        best_error = error if best_error is None else np.minimum(error, best_error)
    return best


def random_samples(input_shape, bits: int, num_samples: int, seed: int = 0) -> np.ndarray:
    """Random integer inputs in [0, 2**bits - 1] (used when no samples are given)."""
    warnings.warn("No calibration samples: calibrating on random integer inputs; ranges will be "
                  "poor. Pass samples=... for a useful model.", UserWarning, stacklevel=3)
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2**bits, (num_samples,) + tuple(input_shape)).astype(np.float32)
