"""Calibration statistics of the Akida 2.0 scheme: per-channel ``max|x|`` at block ends, with
quantizeml's moving average over batches (momentum 0.9, first batch assigned)."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..errors import CalibrationError

MOMENTUM = 0.9


def observe_ranges(float_model: keras.Model, names: list, batches: list) -> dict:
    """Run ``float_model`` on ``batches``.

    Returns:
        ``{"ranges": {name: per-channel max|x| (moving average)}, "input": {"abs": per-channel
        max|x|, "min", "max", "integer": whether every input is an integer, "channel_min",
        "channel_max": per-channel extremes}}``.
    """
    observer = keras.Model(float_model.inputs,
                           [float_model.get_layer(name).output for name in names])

    @tf.function
    def step(x):
        values = observer(x, training=False)
        values = values if isinstance(values, (list, tuple)) else [values]
        return [tf.reduce_max(tf.abs(v), axis=list(range(len(v.shape) - 1))) for v in values]

    ranges, absmax, lows, highs = None, None, None, None
    low, high, integer = np.inf, -np.inf, True
    for batch in batches:
        batch_max = [np.asarray(v, np.float64) for v in step(tf.constant(batch))]
        if ranges is None:
            ranges = batch_max
        else:
            ranges = [r - (1 - MOMENTUM) * (r - m) for r, m in zip(ranges, batch_max)]
        axes = tuple(range(batch.ndim - 1))
        channel_abs = np.max(np.abs(batch), axis=axes)
        absmax = channel_abs if absmax is None else np.maximum(absmax, channel_abs)
        channel_low = np.min(batch, axis=axes).astype(np.float64)
        channel_high = np.max(batch, axis=axes).astype(np.float64)
        lows = channel_low if lows is None else np.minimum(lows, channel_low)
        highs = channel_high if highs is None else np.maximum(highs, channel_high)
        low, high = min(low, float(batch.min())), max(high, float(batch.max()))
        integer = integer and bool(np.all(batch == np.round(batch)))
    if ranges is None:
        raise CalibrationError("calibration: no samples were given.")
    bad = [name for name, r in zip(names, ranges) if not np.all(np.isfinite(r))]
    if bad:
        raise CalibrationError(f"calibration: the float model's outputs overflow to Inf/NaN at "
                               f"layer(s) {', '.join(map(repr, bad))}; check the weights.")
    return {"ranges": dict(zip(names, ranges)),
            "input": {"abs": absmax, "min": low, "max": high, "integer": integer,
                      "channel_min": lows, "channel_max": highs}}
