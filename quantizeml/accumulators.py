"""Akida 1.0 potential registers: the 20-bit signed saturation of FullyConnected potentials and of
the global average pooling sum, as TensorFlow functions (straight-through gradients) with numpy
twins.

Facts (probed on the vendor runtime; docs/quantization.md §2):

* a FullyConnected potential is ``clip(Σ w·x, −2**19, 2**19 − 1)`` before its threshold;
* a global average pooling adds the bias-free potentials of its H·W positions in row-major order
  into a 20-bit signed saturating register, ``acc = clip(acc + p[y, x], −2**19, 2**19 − 1)``; the
  threshold (which holds H·W · bias) applies to ``acc`` afterwards;
* Convolutional and SeparableConvolutional potentials are not clipped.

Each function takes the layer's static bound of ``|p|``: when it proves that no value (or no
running sum) can leave the register, the plain value or sum is returned unchanged.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from .quantizers import ste_clip

#: Signed bits of Akida 1.0's potential register (FullyConnected and global average pooling).
POTENTIAL_BITS = 20
POTENTIAL_MIN = -(2 ** (POTENTIAL_BITS - 1))
POTENTIAL_MAX = 2 ** (POTENTIAL_BITS - 1) - 1


def saturate_potentials(potentials: tf.Tensor, bound: int) -> tf.Tensor:
    """Clip exact integer potentials to the 20-bit signed register (straight-through gradient).

    Args:
        potentials: ``Σ w·x`` without bias (float32/float64 holding exact integers).
        bound: static bound of ``|potentials|``; at most ``POTENTIAL_MAX`` means no clip is
            possible and the tensor is returned as is.
    """
    if bound <= POTENTIAL_MAX:
        return potentials
    return ste_clip(potentials, float(POTENTIAL_MIN), float(POTENTIAL_MAX))


def _compose(shift, low, high):
    """Halve the positions by composing neighbours: position 2i then 2i + 1.

    ``f(a) = clip(a + s, lo, hi)`` functions are closed under composition:
    ``g(f(a)) = clip(a + s1 + s2, clip(lo1 + s2, lo2, hi2), clip(hi1 + s2, lo2, hi2))``.
    """
    if shift.shape[1] % 2:  # pad with the identity on the register's range
        pads = [[0, 0], [0, 1], [0, 0]]
        shift = tf.pad(shift, pads)
        low = tf.pad(low, pads, constant_values=float(POTENTIAL_MIN))
        high = tf.pad(high, pads, constant_values=float(POTENTIAL_MAX))
    s1, s2 = shift[:, 0::2], shift[:, 1::2]
    lo2, hi2 = low[:, 1::2], high[:, 1::2]
    return (s1 + s2, tf.clip_by_value(low[:, 0::2] + s2, lo2, hi2),
            tf.clip_by_value(high[:, 0::2] + s2, lo2, hi2))


def _sequential_saturating_sum(flat: tf.Tensor) -> tf.Tensor:
    """Row-major saturating sum of ``flat`` (n, positions, c) in log2(positions) vector steps."""
    shift = flat
    low = tf.fill(tf.shape(flat), tf.constant(float(POTENTIAL_MIN), flat.dtype))
    high = tf.fill(tf.shape(flat), tf.constant(float(POTENTIAL_MAX), flat.dtype))
    while shift.shape[1] > 1:
        shift, low, high = _compose(shift, low, high)
    # The composed register update applied to acc = 0.
    return tf.clip_by_value(shift[:, 0], low[:, 0], high[:, 0])


def saturating_global_sum(potentials: tf.Tensor, bound: int | None) -> tf.Tensor:
    """Akida's global pooling register: the row-major saturating sum over H and W, exactly.

    When no running sum leaves the register (the usual case) this is the plain sum; only then
    is the sequential clip evaluated (a log-depth composition of the per-position updates).

    Args:
        potentials: (n, h, w, c) bias-free integer potentials, static h and w.
        bound: static bound of ``|potentials|`` (None: unknown). When ``h·w·bound`` fits the
            register the plain sum is returned without any check.

    Returns:
        (n, c) float64 sums; the gradient is the plain sum's (straight-through).
    """
    p = tf.cast(potentials, tf.float64)
    height, width, channels = (int(d) for d in p.shape[1:])
    total = tf.reduce_sum(p, axis=[1, 2])
    if bound is not None and height * width * bound <= POTENTIAL_MAX:
        return total
    flat = tf.stop_gradient(tf.reshape(p, [-1, height * width, channels]))  # row-major (y, x)
    prefix = tf.cumsum(flat, axis=1)
    leaves = tf.reduce_any(tf.logical_or(prefix < POTENTIAL_MIN, prefix > POTENTIAL_MAX))
    saturated = tf.cond(leaves, lambda: _sequential_saturating_sum(flat),
                        lambda: tf.stop_gradient(total))
    return total + tf.stop_gradient(saturated - total)


def saturating_global_sum_np(potentials) -> np.ndarray:
    """Numpy twin of ``saturating_global_sum`` (int64): (n, h, w, c) -> (n, c)."""
    p = np.asarray(potentials, np.int64)
    acc = np.zeros((p.shape[0], p.shape[3]), np.int64)
    for y in range(p.shape[1]):
        for x in range(p.shape[2]):
            acc = np.clip(acc + p[:, y, x], POTENTIAL_MIN, POTENTIAL_MAX)
    return acc
