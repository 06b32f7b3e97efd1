"""Akida 2.0 POST as one affine map in float, taken only where the layer's constants prove it exact.

POST (akida2-layers.md §3) without LUT or global pooling maps each raw sum `acc` of channel f to
`OUT_ob(R(sat_pb(A·S), s))` with `A = sat_pb(sat_bb(acc) + B)` (InputConv2D: `sat_bb(acc + B)`) and an
optional ReLU `min(max(A, 0), ceiling)`. Where no saturation acts this is
`floor((acc + B)·S·2**s + h·2**s)` clipped to the output range, with `h = 2**(-s-1)` for s < 0
(round half up) and 0 otherwise; a ReLU only raises the low end of the clip to 0 (the map is
nondecreasing and gives 0 at A = 0). `affine_post` computes `y = acc·m + c` (m = S·2**s,
c = (B·S + h)·2**s) in one float dtype, floors and clips.

Why it is exact: on the "faithful" interval [a_lo, a_hi] of acc where no saturation acts and every
integer involved has magnitude <= 2**p (p = 24 float32, 53 float64), the products, the sum and the
powers of two are exact, so y is the true value. Both the true map and the float one are
nondecreasing in acc (S >= 0, saturation and float rounding are monotone). Outside the interval,
acc > a_hi gives values >= those at a_hi in both maps: when the output at a_hi is already the top of
the output range, both give the top. Likewise below a_lo. `affine_constants` checks, per channel,
that the static bound of |acc| lies inside the interval or that its ends saturate the output; else it
returns None and the layer runs the general path. Max pooling commutes with nondecreasing maps, so
it may run on the outputs.
"""
import dataclasses

import numpy as np

from .v2 import output_dtype


@dataclasses.dataclass(frozen=True)
class AffinePost:
    """Per-channel constants of `affine_post` (m, c in `dtype`) and the output clip."""

    dtype: np.dtype
    m: np.ndarray
    c: np.ndarray
    low: int
    high: int
    floor: bool
    out_dtype: np.dtype


def _output_range(bits, relu):
    low, high = (0, (1 << bits) - 1) if bits <= 4 else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return (max(low, 0) if relu else low), high


def _floordiv(numerator, scales, none):
    """floor(numerator / scales) per channel, `none` where the scale is 0 (no limit)."""
    safe = np.maximum(scales, 1)
    return np.where(scales > 0, numerator // safe, none)


def _exact_outputs(acc, bias, scales, shift, half):
    """floor(((acc + B)·S + h)·2**s) per channel, without saturation (int64; the value is clamped to
    ±2**31 before a left shift: outputs are narrower, so the clamp keeps which end they reach)."""
    n = ((acc + bias) * scales + half) >> np.maximum(-shift, 0)
    return np.clip(n, -(1 << 31), 1 << 31) << np.maximum(shift, 0)


def affine_constants(bias, scales, shift, bb, pb, ob, acc_bound, dtype, ceiling=None, rule="standard"):
    """The AffinePost of one layer's POST, or None when its constants do not prove it exact.

    Args:
        bias: per-channel B = sat(R(bias, bias_shift)) (integers, any dtype).
        scales: per-channel output_scales (>= 0); shift: per-channel output_shift, |s| <= 31.
        bb, pb, ob: buffer_bits, post_op_buffer_bits, output_bits.
        acc_bound: static bound of |acc| per channel (or one int for all).
        dtype: np.float32 or np.float64, the float type y is computed in.
        ceiling: per-channel ReLU ceiling sat_pb(R(max_value, max_value_shift)); None without ReLU.
        rule: "standard" sat_pb(sat_bb(acc) + B), or "input" sat_bb(acc + B) (InputConv2D).

    Returns:
        AffinePost, or None.
    """
    dtype = np.dtype(dtype)
    exact = 1 << (24 if dtype == np.float32 else 53)
    b, s, sh = (np.asarray(v, np.int64) for v in (bias, scales, shift))
    relu = ceiling is not None
    low, high = _output_range(ob, relu)
    if high >= exact or np.any(s < 0):
        return None
    half = np.where(sh < 0, np.left_shift(1, np.maximum(-sh - 1, 0)), 0)
    if np.any(np.abs(b * s + half) > exact):  # c must be exact too
        return None
    big = 1 << 62
    acc_bound = np.broadcast_to(np.asarray(acc_bound, np.int64), b.shape)
    bb_hi, pb_hi = (1 << (bb - 1)) - 1, (1 << (pb - 1)) - 1
    if rule == "input":
        upper, lower = [bb_hi - b], [-(1 << (bb - 1)) - b]
    else:
        upper = [np.full(b.shape, bb_hi), pb_hi - b]
        lower = [np.full(b.shape, -(1 << (bb - 1))), -(1 << (pb - 1)) - b]
    if relu:
        upper.append(np.asarray(ceiling, np.int64) - b)
    upper += [_floordiv(pb_hi, s, big) - b, _floordiv(exact, s, big), _floordiv(exact - half, s, big) - b]
    lower += [-_floordiv(pb_hi + 1, s, big) - b, -_floordiv(exact, s, big), -_floordiv(exact + half, s, big) - b]
    a_hi, a_lo = np.minimum.reduce(upper), np.maximum.reduce(lower)
    if np.any(a_lo > a_hi):
        return None
    top_ok = (a_hi >= acc_bound) | (_exact_outputs(a_hi, b, s, sh, half) >= high)
    bottom_ok = (a_lo <= -acc_bound) | (_exact_outputs(a_lo, b, s, sh, half) <= low)
    if not (np.all(top_ok) and np.all(bottom_ok)):
        return None
    power = np.ldexp(1.0, sh)  # float64, exact for |s| <= 31
    m = (s * power).astype(dtype)
    c = ((b * s + half) * power).astype(dtype)
    return AffinePost(dtype=dtype, m=m, c=c, low=low, high=high, floor=low < 0,
                      out_dtype=np.dtype(output_dtype(ob)))


CHUNK_VALUES = 1 << 16
"""`affine_post` works through the sums in chunks of about this many values (256-512 KB), so that its three
passes reuse the chunk from the cache: 20-25% less time than whole-array passes at batch 16 (measured)."""


def affine_post(acc, constants, inplace=False):
    """OUT_ob(POST(acc)) as clip(floor(acc·m + c)) in `constants.dtype` (see the module docstring).

    Args:
        acc: (..., C) exact integer sums (float or int array) within the bound the constants were made for.
        constants: an AffinePost from `affine_constants`.
        inplace: `acc` may be overwritten (it is not used afterwards).

    Returns:
        the outputs, dtype of `ob`-bit outputs.
    """
    out = np.empty(acc.shape, constants.out_dtype)
    if not acc.flags.c_contiguous or acc.size <= CHUNK_VALUES:
        _affine_chunk(acc, constants, out, inplace and acc.dtype == constants.dtype)
        return out
    flat, flat_out = acc.reshape(-1, acc.shape[-1]), out.reshape(-1, acc.shape[-1])
    rows = max(1, CHUNK_VALUES // flat.shape[1])
    own = inplace and acc.dtype == constants.dtype
    buffer = None if own else np.empty((rows, flat.shape[1]), constants.dtype)
    for top in range(0, flat.shape[0], rows):
        part = flat[top:top + rows]
        _affine_chunk(part, constants, flat_out[top:top + rows], own,
                      None if own else buffer[:part.shape[0]])
    return out


def _affine_chunk(acc, constants, out, inplace, buffer=None):
    """out = clip(floor(acc·m + c)) for one chunk; y is computed in `acc` (inplace), `buffer` or a new array."""
    y = acc if inplace else buffer
    y = np.multiply(acc, constants.m, out=y, dtype=constants.dtype)
    y += constants.c
    if constants.floor:  # else y is clipped to >= 0, where the cast's truncation is the floor
        np.floor(y, out=y)
    np.clip(y, constants.low, constants.high, out=out, casting="unsafe")
