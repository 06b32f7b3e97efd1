"""Integer kernels of the Akida 2.0 layers: shifts, saturations, the 32-bit wrap and the exact sums.

Plain numpy functions, written from `docs/semantics.md` (Akida 2.0 part). Integers are held in int64
(the layers bound their operands so that nothing here overflows 64 bits: |values| < 2**32 before a
shift, shifts |s| <= 31, see `round_shift`), or, in the per-pixel post-processing, as exact integers
in float64 (see `float_round_shift` for why every step is exact there). Products and sums of many
terms are formed on float32/float64 copies only when a bound computed from the operands proves them
exact (`kernels.accumulator_dtype`), else the operand is split into 16-bit halves, each half summed
exactly in float64 (`exact_matmul`). The loop references these are tested against live in
tests/akida_core/reference_v2.py.
"""
import numpy as np

from . import shared as kernels
from . import windows
from ..enums import Padding

MAX_SHIFT = 31
"""Largest |shift| of any shift variable (the vendor crashes at 32 and beyond)."""
_SPLIT = 16
_BIG = 2 ** 62


# --- saturation, wrap and shifts --------------------------------------------------------------------

def sat(values, bits):
    """Clip int64 values to the signed `bits`-bit range [-2**(bits-1), 2**(bits-1) - 1] (saturate)."""
    return np.clip(values, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def usat(values, bits):
    """Clip int64 values to the unsigned `bits`-bit range [0, 2**bits - 1]."""
    return np.clip(values, 0, (1 << bits) - 1)


def wrap32(values):
    """Two's-complement int32 wrap-around of exact int64 integers (returned as int64)."""
    return ((values + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def round_shift(values, shift):
    """R(v, s): `v·2**s` for s >= 0 (exact), `floor((v + 2**(-s-1)) / 2**-s)` for s < 0 (round half up).

    Args:
        values: int64 array (..., C).
        shift: int array broadcastable to `values` (per channel), |shift| <= 31.

    Returns:
        int64 array. Exact for |values| < 2**32 (the largest left shift reaches 2**63 - 1 at most).
    """
    shift = np.asarray(shift, np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    half = (np.int64(1) << right) >> 1  # 2**(n-1) for n > 0, 0 for n = 0
    return ((np.asarray(values, np.int64) << left) + half) >> right


def shift_multipliers(shift):
    """2.0**shift per channel, float64 (exact for |shift| <= 31)."""
    return np.ldexp(1.0, np.asarray(shift, np.int64))


def float_round_shift(values, multipliers):
    """R(v, s) in place on float64 exact integers: floor(v·2**s + 0.5), with `multipliers` = 2.0**s.

    Exact for |v| < 2**40: v·2**s only moves the exponent; for s < 0 the result is below 2**40 and
    adding 0.5 is exact; for s >= 0, v·2**s is an integer, exact below 2**52, and beyond 2**52 it is
    even (s >= 1) so v·2**s + 0.5 rounds back to it (a tie goes to the even neighbour, a smaller
    offset to the nearest). The floor then gives round-half-up exactly.
    """
    np.multiply(values, multipliers, out=values)
    values += 0.5
    return np.floor(values, out=values)


def clip_inplace(values, bits, unsigned=False):
    """sat_bits (or usat_bits) in place."""
    low, high = (0, (1 << bits) - 1) if unsigned else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return np.clip(values, low, high, out=values)


def clip_to_output(values, bits):
    """OUT_ob into a new array of the output dtype, in one pass (integers, or nonnegative floats whose
    truncation by the cast is the floor)."""
    low, high = (0, (1 << bits) - 1) if bits <= 4 else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    out = np.empty(values.shape, output_dtype(bits))
    return np.clip(values, low, high, out=out, casting="unsafe")


def output_clip(values, bits):
    """OUT_ob: bits <= 4 saturate unsigned (negatives become 0), wider widths saturate signed."""
    return usat(values, bits) if bits <= 4 else sat(values, bits)


def output_dtype(bits):
    """dtype of an `bits`-bit output: <= 4 uint8, 5..8 int8, 16 int16, every other width int32."""
    if bits <= 4:
        return np.uint8
    if bits <= 8:
        return np.int8
    return np.int16 if bits == 16 else np.int32


# --- exact sums ---------------------------------------------------------------------------------------

def _max_abs(array):
    return max(abs(int(array.min())), abs(int(array.max()))) if array.size else 0


def _split_if_needed(x, w, fan_in, compute):
    """compute(x_part) exactly, returning (sums, bound of |sums|).

    Directly when bound = max|x|·max|w|·fan_in < 2**53: `compute` may then return exact integers in
    a float dtype. Else on 16-bit halves, x = hi·2**16 + lo with 0 <= lo < 2**16: each half's sums
    are exact in float64 while |hi|·max|w|·fan_in < 2**53 (|x| < 2**40 here), and
    hi_sum·2**16 + lo_sum is exact in int64.
    """
    bound = _max_abs(x) * _max_abs(w) * fan_in
    if bound < kernels.FLOAT64_EXACT:
        return compute(x), bound
    x = x.astype(np.int64, copy=False)
    low = x & ((1 << _SPLIT) - 1)
    high = x >> _SPLIT
    return (compute(high).astype(np.int64) << _SPLIT) + compute(low).astype(np.int64), bound


def exact_matmul(x, w):
    """Exact integer product (M, K) @ (K, F) -> int64 (M, F), on BLAS when a bound proves it exact."""
    def compute(part):
        dtype = kernels.accumulator_dtype(_max_abs(w), _max_abs(part), x.shape[1])
        return (part.astype(dtype) @ w.astype(dtype)).astype(np.int64)
    return _split_if_needed(x, w, x.shape[1], compute)[0]


def wrap32_bounded(sums, bound):
    """wrap32 of exact sums whose |values| <= bound; a no-op (any dtype kept) when bound < 2**31."""
    if bound < 1 << 31:
        return sums
    return wrap32(sums.astype(np.int64, copy=False))


def pad2d(x, kernel, stride, padding, value=0, dtype=None):
    """Pad (n, h, w, c) inputs for a kernel/pool window per `padding`, in `dtype` (default x's) in one copy;
    `value` scalar or per channel."""
    dtype = x.dtype if dtype is None else np.dtype(dtype)
    top, bottom = kernels.padding_amounts(x.shape[1], kernel, stride, padding)
    left, right = kernels.padding_amounts(x.shape[2], kernel, stride, padding)
    if top == bottom == left == right == 0:
        return np.ascontiguousarray(x, dtype)
    n, h, w, c = x.shape
    out = np.empty((n, h + top + bottom, w + left + right, c), dtype)
    value = np.asarray(value, dtype)
    if value.ndim and np.all(value == value.flat[0]):
        value = value.flat[0]  # a scalar fill: several times faster than a per-channel broadcast
    out[:, :top] = value  # the border only: the inside is written once, by the copy of x
    out[:, top + h:] = value
    out[:, top:top + h, :left] = value
    out[:, top:top + h, left + w:] = value
    out[:, top:top + h, left:left + w] = x
    return out


def _crop(out, size_h, size_w):
    return out[:, :size_h, :size_w]


class ConvolutionKernel:
    """A convolution kernel prepared once (a layer keeps it until its weights change): flipped on both
    spatial axes for a true convolution (Akida 2.0 Conv2D; `flip=False` keeps it, for InputConv2D's
    cross-correlation), the sum of |w| per filter (`l1`: x_bound·l1 bounds every partial sum of that
    filter) and its casts to the float accumulator dtypes asked so far (the im2col matrix, or the
    (k, k, c) depthwise kernel).

    Args:
        w: (k, k, c, f) integers, or (k, k, c) with `depthwise`.
    """

    def __init__(self, w, depthwise=False, flip=True):
        self.flipped = np.ascontiguousarray(w[::-1, ::-1] if flip else w)
        self.max_abs = _max_abs(w)
        self.l1 = np.abs(w.astype(np.int64)).sum(axis=(0, 1) if depthwise else (0, 1, 2))
        self.depthwise = depthwise
        self._casts = {}
        self.casts_made = 0  # tests count the casts: one per dtype, not one per call

    def bound(self, x_bound):
        """Static bound of every partial sum when |inputs| <= x_bound."""
        return int(x_bound) * int(self.l1.max(initial=0))

    def cast(self, dtype):
        """The flipped kernel in `dtype` (an im2col matrix unless depthwise), made on first use."""
        dtype = np.dtype(dtype)
        found = self._casts.get(dtype)
        if found is None:
            found = self._casts[dtype] = self._matrix(dtype)
            self.casts_made += 1
        return found

    def _matrix(self, dtype):
        flipped = self.flipped
        return flipped.astype(dtype) if self.depthwise else flipped.reshape(-1, flipped.shape[3]).astype(dtype)


def float_dtype(bound):
    """float32 when sums bounded by `bound` are exact in it (< 2**24), else float64 (the caller checks 2**53)."""
    return np.float32 if bound < kernels.FLOAT32_EXACT else np.float64


def _input_bound(x, pad_value, x_bound):
    """max|x| and the padding value: `x_bound` when the caller proves it statically, else read from x."""
    if x_bound is None:
        x_bound = _max_abs(x)
    return max(int(x_bound), int(np.max(np.abs(pad_value), initial=0)))


def convolve2d(x, w, stride, padding, x_bound=None, pad_value=0, wrap=True):
    """True convolution (kernel flipped on both axes), zero padding, summed modulo 2**32 (wrap32).

    `w`: (k, k, c, f) integers or their ConvolutionKernel (flipped and cast once; with `flip=False`,
    `wrap=False` and `pad_value` (scalar or per channel) this is InputConv2D's exact cross-correlation).
    `x_bound` >= max|x| (static, from the input dtype) saves reading x; None reads it.

    Returns (exact integers: float32/float64 when the bound x_bound·max_f Σ|w[..., f]| proves the BLAS
    sums exact, else int64; bound of their magnitude).
    """
    kernel = w if isinstance(w, ConvolutionKernel) else ConvolutionKernel(w)
    k = kernel.flipped.shape[0]
    oh = kernels.output_size(x.shape[1], k, stride, padding)
    ow = kernels.output_size(x.shape[2], k, stride, padding)
    bound = kernel.bound(_input_bound(x, pad_value, x_bound))
    if bound < kernels.FLOAT64_EXACT:  # the kernel cast once, the padding made in the float dtype
        dtype = float_dtype(bound)
        padded = pad2d(x, k, stride, padding, pad_value, dtype)
        sums = kernels.conv2d_prepared(padded, kernel.cast(dtype), (k, k), (stride, stride), Padding.Valid)
    else:
        def compute(part):
            return kernels.conv2d(part, kernel.flipped, (stride, stride), Padding.Valid)
        padded = pad2d(x, k, stride, padding, pad_value)
        sums, bound = _split_if_needed(padded, kernel.flipped, k * k * x.shape[3], compute)
    if not wrap:
        return _crop(sums, oh, ow), bound
    return wrap32_bounded(_crop(sums, oh, ow), bound), min(bound, 1 << 31)


def correlate2d(x, w, stride, padding, pad_value=0, with_bound=False):
    """Exact cross-correlation of integer (n, h, w, c) with (k, k, c, f) integers -> (n, oh, ow, f),
    padded with `pad_value` (scalar or per input channel); `convolve2d` of the unflipped kernel."""
    sums, bound = convolve2d(x, ConvolutionKernel(w, flip=False), stride, padding, pad_value=pad_value, wrap=False)
    return (sums, bound) if with_bound else sums


def depthwise_convolve2d(x, w, stride, padding, x_bound=None):
    """Per-channel true convolution with w (k, k, c) (or its depthwise ConvolutionKernel), zero
    padding, wrap32. `x_bound` as in `convolve2d`.

    Returns ((n, oh, ow, c) exact integers, bound of their magnitude).
    """
    kernel = w if isinstance(w, ConvolutionKernel) else ConvolutionKernel(w, depthwise=True)
    k = kernel.flipped.shape[0]
    oh = kernels.output_size(x.shape[1], k, stride, padding)
    ow = kernels.output_size(x.shape[2], k, stride, padding)
    bound = kernel.bound(_input_bound(x, 0, x_bound))
    if bound < kernels.FLOAT64_EXACT:
        dtype = float_dtype(bound)
        if stride > 1 and x.shape[3] <= windows.PHASE_CHANNELS:
            sums = windows.strided_depthwise(x, kernel.cast(dtype), stride, padding, oh, ow)
        else:
            sums = windows.depthwise_windows(pad2d(x, k, stride, padding, 0, dtype), kernel.cast(dtype), stride,
                                             oh, ow)
    else:
        def compute(part):
            return kernels.depthwise_conv2d(part, kernel.flipped, (stride, stride), Padding.Valid)
        sums, bound = _split_if_needed(pad2d(x, k, stride, padding, 0), kernel.flipped, k * k, compute)
        sums = _crop(sums, oh, ow)
    return wrap32_bounded(sums, bound), min(bound, 1 << 31)


def transpose_padding(kernel):
    """Offset p of a stride-2 transposed convolution: floor(max(k - 2, 0) / 2)."""
    return max(kernel - 2, 0) // 2


class TransposeKernel(ConvolutionKernel):
    """The ConvolutionKernel of a stride-2 transposed convolution (no flip; `l1` bounds every output sum,
    which reads a subset of the taps): its cast is the (c, k·k·f) matrix of all taps, so one product gives
    every tap's contribution of every input (the (k, k, c) kernel when depthwise)."""

    def __init__(self, w, depthwise=False):
        super().__init__(w, depthwise, flip=False)

    def _matrix(self, dtype):
        w = self.flipped
        return w.astype(dtype) if self.depthwise else \
            np.ascontiguousarray(w.transpose(2, 0, 1, 3).reshape(w.shape[2], -1), dtype)


def conv2d_transpose(x, w, depthwise=False, x_bound=None):
    """Stride-2 'same' transposed convolution, summed modulo 2**32.

    `acc[2i+a-p, 2j+b-p, f] += x[i, j, c]·w[a, b, c, f]` (no flip), contributions outside
    [0, 2h) x [0, 2w) dropped. Depthwise: w (k, k, c, 1) applied per channel. `w` may be its
    TransposeKernel (cast once); `x_bound` >= max|x| (static) saves reading x.

    Where x_bound·max_f Σ|w[..., f]| proves every sum exact in float32 (< 2**24) or float64 (< 2**53),
    one product of the inputs with every tap's weights, then one strided add per tap, in that dtype;
    else int64 products per tap.

    Returns:
        ((n, 2h, 2w, f) exact integers (f = c when depthwise), bound of their magnitude).
    """
    kernel = w if isinstance(w, TransposeKernel) else TransposeKernel(w[..., 0] if depthwise else w, depthwise)
    n, h, wd, c = x.shape
    k = kernel.flipped.shape[0]
    p = transpose_padding(k)
    filters = c if depthwise else kernel.flipped.shape[3]
    bound = kernel.bound(_input_bound(x, 0, x_bound))
    exact = bound < kernels.FLOAT64_EXACT
    dtype = float_dtype(bound) if exact else np.int64
    out = np.zeros((n, 2 * h, 2 * wd, filters), dtype)  # int64: |sum| <= 2**31·128·c·k², far below 2**63
    if depthwise:
        xs = x.astype(dtype, copy=False)
        weights = kernel.cast(dtype) if exact else kernel.flipped.astype(np.int64)
        taps = None
    elif exact:
        products = x.reshape(-1, c).astype(dtype, copy=False) @ kernel.cast(dtype)
        taps = products.reshape(n, h, wd, k, k, filters)
    else:
        flat = x.reshape(-1, c)
        taps = None
    rows = [(a, *_tap_range(a, p, h)) for a in range(k)]
    cols = [(b, *_tap_range(b, p, wd)) for b in range(k)]
    for a, i0, i1 in rows:
        for b, j0, j1 in cols:
            if i0 > i1 or j0 > j1:
                continue
            target = out[:, 2 * i0 + a - p:2 * i1 + a - p + 1:2, 2 * j0 + b - p:2 * j1 + b - p + 1:2]
            if depthwise:
                target += xs[:, i0:i1 + 1, j0:j1 + 1] * weights[a, b]
            elif taps is not None:
                target += taps[:, i0:i1 + 1, j0:j1 + 1, a, b]
            else:
                target += exact_matmul(flat, kernel.flipped[a, b]).reshape(n, h, wd, filters)[:, i0:i1 + 1,
                                                                                              j0:j1 + 1]
    return wrap32_bounded(out, bound), min(bound, 1 << 31)


def _tap_range(a, p, size):
    """First and last input index i with 0 <= 2i + a - p < 2·size."""
    first = max(0, -(-(p - a) // 2))
    last = min(size - 1, (2 * size - 1 + p - a) // 2)
    return first, last


# --- pooling --------------------------------------------------------------------------------------------

def max_pool(values, pool_size, pool_stride, padding):
    """Max pooling of int64 values; padded cells never win (they act as -inf)."""
    return kernels.max_pool2d(values, (pool_size, pool_size), (pool_stride, pool_stride), padding)


def saturating_sum(values, bits):
    """Sum over axis 1 in order, in a register saturating to `bits` bits after every addition (start 0).

    Each step is s -> clip(s + v, lo, hi); such maps compose into one map of the same form
    (clip(clip(s + a, l1, h1) + b, l2, h2) = clip(s + a + b, clip(l1 + b, l2, h2), clip(h1 + b, l2, h2))),
    so the ordered sequence is reduced pairwise in log2(n) vectorised steps instead of a loop.

    Args:
        values: int64 (n, P, c), P >= 1, |values| < 2**40.

    Returns:
        int64 (n, c).
    """
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    shift = values
    low = np.full(values.shape, lo, np.int64)
    high = np.full(values.shape, hi, np.int64)
    while shift.shape[1] > 1:
        if shift.shape[1] % 2:
            pad = [(0, 0), (0, 1), (0, 0)]
            shift = np.pad(shift, pad)
            low = np.pad(low, pad, constant_values=-_BIG)
            high = np.pad(high, pad, constant_values=_BIG)
        b, l2, h2 = shift[:, 1::2], low[:, 1::2], high[:, 1::2]
        low, high = np.clip(low[:, 0::2] + b, l2, h2), np.clip(high[:, 0::2] + b, l2, h2)
        shift = shift[:, 0::2] + b
    return np.clip(shift[:, 0], low[:, 0], high[:, 0])


def global_sum(values, bits):
    """Akida 2.0 global average pooling: saturating row-major sum of (n, h, w, c) -> (n, 1, 1, c)."""
    n, h, w, c = values.shape
    flat = values.reshape(n, h * w, c).astype(np.int64)
    return saturating_sum(flat, bits).reshape(n, 1, 1, c).astype(values.dtype)


# --- activation and output ------------------------------------------------------------------------------

def relu(values, ceiling, bound=None):
    """min(max(v, 0), ceiling) in place, per-channel ceiling (float64 exact integers); the ceiling is
    skipped when `bound` >= max|v| shows it cannot act."""
    if bound is not None and bound <= ceiling.min(initial=0):
        return np.maximum(values, 0, out=values)
    return np.clip(values, 0, ceiling, out=values)


def lut_activation(values, scales, multipliers, table, pb):
    """LUT: v = R(sat_pb(A·scales), shift); A = table[clip(v, -1024, 1023) + 1024] (one shared table).

    `values` (float64 exact integers) is overwritten; `multipliers` = 2.0**shift, `table` float64.
    """
    values *= scales
    float_round_shift(clip_inplace(values, pb), multipliers)
    index = np.clip(values, -1024, 1023).astype(np.intp) + 1024
    return table[index]


def scale_output(values, scales, multipliers, pb, bits, bound=None, nonnegative=False):
    """v = R(sat_pb(A·scales), shift); OUT_ob(v) in the dtype of `bits`-bit outputs (values overwritten).

    With `bound` >= max|A| and bound·max(scales) < 2**(pb-1), sat_pb cannot act: it is skipped and
    the scale and the power of two are applied as one exact multiply (scales·2**s is exact, and so
    is its product with A, below 2**53). With `nonnegative` (A >= 0, as after a ReLU; scales are
    unsigned) v·2**s + 0.5 > 0, so the cast's truncation is the floor and the floor pass is skipped
    (clipping to integer bounds commutes with the floor).
    """
    if bound is not None and bound * int(scales.max(initial=0)) < 1 << (pb - 1):
        values *= scales * multipliers
        values += 0.5
    else:
        values *= scales
        np.multiply(clip_inplace(values, pb), multipliers, out=values)
        values += 0.5
    if not nonnegative:
        np.floor(values, out=values)
    return clip_to_output(values, bits)


# --- float edges ----------------------------------------------------------------------------------------------

def quantize(x, scales, zero_points, bits, signed):
    """Quantizer: round_half_away_from_zero(float32(x·scales)) + zero_points, saturated to `bits`.

    Returns:
        int8 (signed) or uint8 array.
    """
    product = (x.astype(np.float32) * scales.astype(np.float32)).astype(np.float64)
    rounded = np.sign(product) * np.floor(np.abs(product) + 0.5)  # exact: float32 values in float64
    rounded = np.clip(rounded, -2.0 ** 40, 2.0 ** 40)  # huge inputs saturate alike; the int cast stays defined
    q = rounded.astype(np.int64) + zero_points.astype(np.int64)
    return (sat(q, bits).astype(np.int8) if signed else usat(q, bits).astype(np.uint8))


def dequantize(x, scales):
    """Dequantizer: float32(x)·scales in float32."""
    return x.astype(np.float32) * scales.astype(np.float32)
