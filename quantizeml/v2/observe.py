"""Calibration statistics of the Akida 2.0 scheme: ``max|x|`` at block ends per channel and per
tensor, each with quantizeml's moving average over batches (momentum 0.9, first batch assigned):
a per-tensor quantizer averages the per-batch tensor maximum, which is not the largest of the
per-channel averages."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..errors import CalibrationError

MOMENTUM = 0.9


def moving_average(average, batch_max):
    """quantizeml's update ``r ← r − (1 − momentum)·(r − batch_max)``."""
    return average - (1 - MOMENTUM) * (average - batch_max)


def observe_ranges(float_model: keras.Model, names: list, batches: list) -> dict:
    """Run ``float_model`` on ``batches``.

    Returns:
        ``{"ranges": {name: per-channel max|x| (moving average)}, "tensor_ranges": {name:
        per-tensor max|x| (moving average)}, "input": {"abs": per-channel max|x|, "min", "max",
        "integer": whether every input is an integer, "channel_min", "channel_max": per-channel
        extremes}, "traces": times the step was traced}``.
    """
    observer = keras.Model(float_model.inputs,
                           [float_model.get_layer(name).output for name in names])

    # one trace whatever the batch sizes (a shorter last batch would retrace); autograph=False:
    # the Python loop is over layers, and converting the code costs ~0.3 s
    @tf.function(input_signature=[tf.TensorSpec((None,) + tuple(float_model.inputs[0].shape[1:]),
                                                tf.float32)], autograph=False)
    def step(x):
        values = observer(x, training=False)
        values = values if isinstance(values, (list, tuple)) else [values]
        axes = list(range(len(x.shape) - 1))
        # the input statistics in the same graph: TF's threads, no extra numpy passes
        inputs = [tf.reduce_max(tf.abs(x), axis=axes), tf.reduce_min(x), tf.reduce_max(x),
                  tf.reduce_all(tf.equal(x, tf.round(x))), tf.reduce_min(x, axis=axes),
                  tf.reduce_max(x, axis=axes)]
        return inputs + [tf.reduce_max(tf.abs(v), axis=list(range(len(v.shape) - 1)))
                         for v in values]

    ranges, tensor_ranges, absmax, lows, highs = None, None, None, None, None
    low, high, integer = np.inf, -np.inf, True
    for batch in batches:
        returned = step(tf.constant(batch))
        channel_abs, batch_low, batch_high, batch_integer, channel_low, channel_high = (
            np.asarray(v) for v in returned[:6])
        batch_max = [np.asarray(v, np.float64) for v in returned[6:]]
        batch_tensor = [m.max(initial=0.0) for m in batch_max]
        if ranges is None:
            ranges, tensor_ranges = batch_max, batch_tensor
        else:
            ranges = [moving_average(r, m) for r, m in zip(ranges, batch_max)]
            tensor_ranges = [moving_average(r, m) for r, m in zip(tensor_ranges, batch_tensor)]
        absmax = channel_abs if absmax is None else np.maximum(absmax, channel_abs)
        channel_low, channel_high = channel_low.astype(np.float64), channel_high.astype(np.float64)
        lows = channel_low if lows is None else np.minimum(lows, channel_low)
        highs = channel_high if highs is None else np.maximum(highs, channel_high)
        low, high = min(low, float(batch_low)), max(high, float(batch_high))
        integer = integer and bool(batch_integer)
    if ranges is None:
        raise CalibrationError("calibration: no samples were given.")
    bad = [name for name, r in zip(names, ranges) if not np.all(np.isfinite(r))]
    if bad:
        raise CalibrationError(f"calibration: the float model's outputs overflow to Inf/NaN at "
                               f"layer(s) {', '.join(map(repr, bad))}; check the weights.")
    return {"ranges": dict(zip(names, ranges)), "tensor_ranges": dict(zip(names, tensor_ranges)),
            "traces": step.experimental_get_tracing_count(),
            "input": {"abs": absmax, "min": low, "max": high, "integer": integer,
                      "channel_min": lows, "channel_max": highs}}
