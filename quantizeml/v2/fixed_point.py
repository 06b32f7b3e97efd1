"""Akida 2.0 fixed-point arithmetic: pure functions (numpy for freezing, TensorFlow for the layers).

The quantized Keras layers of the Akida 2.0 scheme compute on exact integers held in float64
(every value below 2**53: inputs of at most 32 bits times 8-bit scales), with the runtime's rules
(akida2-layers.md): ``R(v, s)`` rounds half **up**, saturations clip, Conv sums wrap at 32 bits.
The scale arithmetic that *chooses* integers (weights, bias, max_value, output scales) follows
quantizeml's (conversion-v2.md §2): round half to even, ``cl2 = ceil(log2(·))``.
Gradients are straight-through (identity) wherever an integer rounding or saturation happens.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

#: Akida 2.0 shift variables must stay within |s| <= 31 (larger ones crash the vendor runtime).
MAX_SHIFT = 31
#: Bits of the output scale S (quantizeml's OutputQuantizer scale_bits).
SCALE_BITS = 8


# ---- numpy: choosing the integers (run once, when the model is frozen) ----

def ceil_log2(x) -> np.ndarray:
    """``ceil(log2(x))`` per value, float64; ``-inf`` for 0 (exact on powers of two)."""
    x = np.asarray(x, np.float64)
    with np.errstate(divide="ignore"):
        return np.ceil(np.log2(x))


def value_bits(bits: int, signed: bool) -> int:
    """Magnitude bits of a ``bits``-bit integer: ``bits - 1`` signed, ``bits`` unsigned."""
    return bits - 1 if signed else bits


def frac_bits(range_max, bits: int, signed: bool) -> np.ndarray:
    """Fractional bits of an output quantizer: ``min(vb − cl2(range), vb)`` (0 range: ``vb``)."""
    vb = value_bits(bits, signed)
    r = np.asarray(range_max, np.float64)
    return np.minimum(vb - ceil_log2(np.where(r > 0, r, 0.0)), vb).astype(np.float64)


def weight_scale(kernel, bits: int, axis: int) -> np.ndarray:
    """quantizeml's WeightQuantizer scale: ``max(max|w| / (2**(b−1) − 1), 1e-6)`` over every axis
    but ``axis`` (float32, as the layer stores it)."""
    kernel = np.asarray(kernel, np.float64)
    axis = axis % kernel.ndim
    reduce = tuple(i for i in range(kernel.ndim) if i != axis)
    scale = np.max(np.abs(kernel), axis=reduce) / (2 ** (bits - 1) - 1)
    return np.maximum(scale, 1e-6).astype(np.float32)


def aligned_frac_bits(value, unit, bits: int, signed: bool, limit) -> np.ndarray:
    """Fractional bits of an AlignedWeightQuantizer (bias, max_value): the most that keep
    ``value / unit`` within ``bits``, capped by the accumulator's ``limit`` and kept within
    ``limit − 31`` (a longer shift is not an Akida 2.0 shift)."""
    vb = value_bits(bits, signed)
    ratio = np.abs(np.asarray(value, np.float64)) / np.asarray(unit, np.float64)
    fb = np.minimum(np.minimum(vb - ceil_log2(ratio), vb), limit)
    return np.maximum(fb, np.asarray(limit, np.float64) - MAX_SHIFT)


def output_scale(scale) -> tuple[np.ndarray, np.ndarray]:
    """The 8-bit output scale of a QFloat: ``S = rne(s·2**(8−c))`` (256 saturates to 255),
    ``c = cl2(s)``; returns ``(S, f_S = 8 − c)``."""
    s = np.asarray(scale, np.float64)
    c = ceil_log2(s)
    f_s = SCALE_BITS - c
    big = np.round(s * 2.0**f_s)
    return np.minimum(big, 2**SCALE_BITS - 1), f_s


# ---- TensorFlow: the integer dataflow (run on every sample) ----

def _straight_through(fn):
    """``fn`` in the forward pass, the identity gradient in the backward pass."""
    @tf.custom_gradient
    def apply(x):
        return fn(x), lambda upstream: upstream
    return apply


def ste_round(x):
    """Round half to even with an identity gradient."""
    return _straight_through(tf.round)(x)


def sat(x, bits: int):
    """Clip to the signed ``bits``-bit range (identity gradient)."""
    high = float(2 ** (bits - 1) - 1)
    return _straight_through(lambda v: tf.clip_by_value(v, -high - 1.0, high))(x)


def usat(x, bits: int):
    """Clip to ``[0, 2**bits − 1]`` (identity gradient)."""
    return _straight_through(lambda v: tf.clip_by_value(v, 0.0, float(2**bits - 1)))(x)


def out_clip(x, bits: int):
    """Akida 2.0 ``OUT_ob``: unsigned for ``bits <= 4`` (negatives become 0), signed above."""
    return usat(x, bits) if bits <= 4 else sat(x, bits)


def wrap32(x):
    """Two's-complement int32 wrap of exact integers (identity gradient)."""
    return _straight_through(
        lambda v: v - 2.0**32 * tf.floor((v + 2.0**31) / 2.0**32))(x)


def round_shift(x, shift):
    """``R(v, s)``: ``v·2**s``; for ``s < 0`` rounded half up, ``floor(v·2**s + 0.5)``. Exact on
    float64 integers below 2**52 (the product only moves the exponent)."""
    shift = tf.cast(shift, tf.float64)
    scaled = x * tf.pow(tf.constant(2.0, tf.float64), shift)
    return _straight_through(
        lambda v: tf.where(shift < 0, tf.floor(v + 0.5), v))(scaled)


def round_half_away(x):
    """Round half away from zero (the runtime Quantizer's rule), identity gradient."""
    return _straight_through(lambda v: tf.sign(v) * tf.floor(tf.abs(v) + 0.5))(x)
