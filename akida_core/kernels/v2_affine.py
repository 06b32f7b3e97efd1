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

Where float32 would round (|acc·S| beyond 2**24, e.g. an input convolution's sums of uint8 pixels with
an output shift below -17) but every `acc·M + K` within the static bound fits int32, the map runs in
int32 instead of float64: `(acc·M + K) >> r` with M = S·2**max(s, 0), K = (B·S + h)·2**max(s, 0) and
r = max(-s, 0) is the same floor exactly (an arithmetic right shift is the floor of a division by
2**r), and the same interval argument holds, as integer arithmetic without overflow is monotone too.
On 4-byte values it takes about 30% less time than the float64 map (an 8-bit InputConv2D's 64x64x32
float32 sums: 213-250 -> 153 µs).
"""
import dataclasses

import numpy as np

from .v2 import output_dtype


@dataclasses.dataclass(frozen=True)
class AffinePost:
    """Per-channel constants of `affine_post` (m, c in `dtype`; int32 maps also the right shift) and the
    output clip."""

    dtype: np.dtype
    m: np.ndarray
    c: np.ndarray
    low: int
    high: int
    floor: bool
    out_dtype: np.dtype
    shift: np.ndarray = None  # int32 maps only: the right shift r per channel (one int32 scalar when uniform)
    _tiles: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def tiled(self, repeats):
        """(m, c, shift) repeated `repeats` times along the channels (made once per count)."""
        found = self._tiles.get(repeats)
        if found is None:
            found = self._tiles[repeats] = tuple(v if v is None or np.ndim(v) == 0 else np.tile(v, repeats)
                                                 for v in (self.m, self.c, self.shift))
        return found


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
        dtype: np.float32 or np.float64, the float type y is computed in; or np.int32 (the
            integer map `(acc·M + K) >> r`, taken only where no value overflows).
        ceiling: per-channel ReLU ceiling sat_pb(R(max_value, max_value_shift)); None without ReLU.
        rule: "standard" sat_pb(sat_bb(acc) + B), or "input" sat_bb(acc + B) (InputConv2D).

    Returns:
        AffinePost, or None.
    """
    dtype = np.dtype(dtype)
    integer = np.issubdtype(dtype, np.integer)
    # integers are exact at any size (their overflow is checked below): no float limit
    exact = 1 << (62 if integer else 24 if dtype == np.float32 else 53)
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
    if integer:
        return _int32_constants(b, s, sh, half, acc_bound, low, high, ob)
    power = np.ldexp(1.0, sh)  # float64, exact for |s| <= 31
    m = (s * power).astype(dtype)
    c = ((b * s + half) * power).astype(dtype)
    return AffinePost(dtype=dtype, m=m, c=c, low=low, high=high, floor=low < 0,
                      out_dtype=np.dtype(output_dtype(ob)))


INT32_MAX = (1 << 31) - 1


def _int32_constants(b, s, sh, half, acc_bound, low, high, ob):
    """The int32 AffinePost (M, K, r), or None when some |acc·M + K| within ±acc_bound may pass INT32_MAX."""
    lift = np.maximum(sh, 0)
    m, c = s << lift, (b * s + half) << lift
    # float64 holds these products exactly below 2**53, and beyond that they are far past INT32_MAX
    reach = acc_bound.astype(np.float64) * m + np.abs(c)
    if np.any(acc_bound > INT32_MAX) or np.any(reach > INT32_MAX):
        return None
    shift = np.maximum(-sh, 0).astype(np.int32)
    if shift.size and np.all(shift == shift[0]):
        shift = np.int32(shift[0])  # one scalar shift: 3x faster than a per-channel array
    return AffinePost(dtype=np.dtype(np.int32), m=m.astype(np.int32), c=c.astype(np.int32), low=low, high=high,
                      floor=False, out_dtype=np.dtype(output_dtype(ob)), shift=shift)


TILE_CHANNELS = 64
"""Below this many channels, `affine_post` views the sums as rows of whole output rows (width·C values) with its
constants repeated to match: numpy's inner loops then run over the row instead of C values (32 channels: 103 ->
82 µs float32, 135 -> 97 µs int32 for 64x64 sums); from 64 channels on it gained nothing."""

CHUNK_VALUES = 1 << 16
"""`affine_post` works through the sums in chunks of about this many values (256-512 KB), so that its three
passes reuse the chunk from the cache: 20-25% less time than whole-array passes at batch 16 (measured)."""


@dataclasses.dataclass(frozen=True)
class LutPost:
    """POST with a LUT activation in two steps: the table index, an AffinePost (the index is
    clip(R(sat_pb(A·S_act), s_act), -1024, 1023), a nondecreasing map of acc like the POST without LUT), then
    per channel a table of the final outputs OUT_ob(R(sat_pb(LUT[i]·S), s)) for the 2048 indices, made once
    by the general path's own function (`lut_post`), so each output is the general path's value.

    Max pooling runs on the indices (the index map is nondecreasing, the LUT need not be)."""

    index: AffinePost
    tables: np.ndarray  # (C·2048,) outputs, channel by channel
    offsets: np.ndarray  # (C,) int32: 1024 + c·2048, the start of channel c's table plus the index offset

    def lookup(self, index):
        """The outputs of `index` (..., C) int32 indices in [-1024, 1023] (overwritten)."""
        np.add(index, self.offsets, out=index)
        return np.take(self.tables, index)


LUT_SIZE = 2048
"""Entries of an Akida 2.0 activation table (indices -1024..1023)."""


def lut_post(index, outputs_of, lut):
    """The LutPost of an index AffinePost (output range [-1024, 1023]): its tables are `outputs_of(values)` (the
    general path's steps after the LUT, on a (2048, C) float64 array of the table's values for every channel)
    laid out channel by channel."""
    channels = len(index.m)
    values = np.repeat(np.asarray(lut, np.float64)[:, None], channels, axis=1)
    tables = np.ascontiguousarray(outputs_of(values).T).reshape(-1)
    offsets = (LUT_SIZE // 2 + LUT_SIZE * np.arange(channels)).astype(np.int32)
    return LutPost(index=index, tables=tables, offsets=offsets)


def affine_post(acc, constants, inplace=False):
    """OUT_ob(POST(acc)) as clip(floor(acc·m + c)) in `constants.dtype` (see the module docstring); a LutPost's
    index map, then its tables.

    Args:
        acc: (..., C) exact integer sums (float or int array) within the bound the constants were made for.
        constants: an AffinePost from `affine_constants`, or a LutPost.
        inplace: `acc` may be overwritten (it is not used afterwards).

    Returns:
        the outputs, dtype of `ob`-bit outputs.
    """
    if isinstance(constants, LutPost):
        return constants.lookup(affine_post(acc, constants.index, inplace))
    out = np.empty(acc.shape, constants.out_dtype)
    m, c, shift = constants.m, constants.c, constants.shift
    if acc.flags.c_contiguous and acc.ndim >= 3 and 1 < acc.shape[-2] and acc.shape[-1] < TILE_CHANNELS:
        repeats = acc.shape[-2]  # rows of whole output rows, the constants repeated along them
        m, c, shift = constants.tiled(repeats)
        flat, flat_out = acc.reshape(-1, repeats * acc.shape[-1]), out.reshape(-1, repeats * acc.shape[-1])
    elif acc.flags.c_contiguous:
        flat, flat_out = acc.reshape(-1, acc.shape[-1]), out.reshape(-1, acc.shape[-1])
    else:
        _affine_chunk(acc, (m, c, shift), constants, out, inplace and acc.dtype == constants.dtype)
        return out
    own = inplace and acc.dtype == constants.dtype
    rows = max(1, CHUNK_VALUES // flat.shape[1])
    buffer = None if own else np.empty((min(rows, flat.shape[0]), flat.shape[1]), constants.dtype)
    for top in range(0, flat.shape[0], rows):
        part = flat[top:top + rows]
        _affine_chunk(part, (m, c, shift), constants, flat_out[top:top + rows], own,
                      None if own else buffer[:part.shape[0]])
    return out


def _affine_chunk(acc, tiles, constants, out, inplace, buffer=None):
    """out = clip(floor(acc·m + c)) for one chunk; y is computed in `acc` (inplace), `buffer` or a new array.
    `tiles`: (m, c, shift) as broadcast against `acc`'s last axis."""
    m, c, shift = tiles
    y = acc if inplace else buffer
    if shift is not None:  # int32: (acc·M + K) >> r, the floor exactly
        y = np.empty(acc.shape, np.int32) if y is None else y
        np.copyto(y, acc, casting="unsafe")  # exact integers of magnitude < 2**31 (see _int32_constants)
        y *= m
        y += c
        if np.ndim(shift) or shift:
            np.right_shift(y, shift, out=y)
        # the clip in int32 then the cast: 40% less time than numpy's casting clip from int32 to int8
        np.clip(y, constants.low, constants.high, out=y)
        np.copyto(out, y, casting="unsafe")
        return
    y = np.multiply(acc, m, out=y, dtype=constants.dtype)
    y += c
    if constants.floor:  # else y is clipped to >= 0, where the cast's truncation is the floor
        np.floor(y, out=y)
    np.clip(y, constants.low, constants.high, out=out, casting="unsafe")
