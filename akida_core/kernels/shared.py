"""Integer kernels shared by both generations: padding, convolution, pooling, dense, saturation.

Plain numpy functions, exact by construction. Every function takes integer arrays and explicit
parameters and returns an integer array. The convolutions and matrix products run on float32 (or
float64) copies of the integers because numpy has no integer BLAS; this is exact as long as every
partial sum is an integer of magnitude < 2**24 (float32) or < 2**53 (float64), whatever the
summation order. `accumulator_dtype` picks the narrowest exact type
from the static bound max|w| * max|x| * fan_in, and refuses anything beyond float64's exact range.

The readable loop references these are tested against live in tests/akida_core/reference.py.
"""
import functools

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..enums import Padding

FLOAT32_EXACT = 2 ** 24
FLOAT64_EXACT = 2 ** 53


def accumulator_dtype(max_abs_weight, max_abs_input, fan_in):
    """Return the float dtype in which sums of `fan_in` products are exact integers.

    Args:
        max_abs_weight: largest |weight| (int).
        max_abs_input: largest |input| (int).
        fan_in: number of products summed into one potential.

    Returns:
        np.float32 when the bound max|w|·max|x|·fan_in < 2**24, else np.float64.

    Raises:
        OverflowError: when the bound reaches 2**53 (no exact float accumulator exists).
    """
    # Python ints: no overflow in the bound itself.
    bound = int(max_abs_weight) * int(max_abs_input) * int(fan_in)
    if bound < FLOAT32_EXACT:
        return np.float32
    if bound < FLOAT64_EXACT:
        return np.float64
    raise OverflowError(f"potential bound {bound} exceeds 2**53: no exact accumulator")


def _max_abs(array):
    if not array.size:
        return 0
    return max(abs(int(array.min())), abs(int(array.max())))


def same_padding(size, kernel, stride):
    """Return (before, after) padding of Keras' 'same' mode for one spatial axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@functools.lru_cache(maxsize=4096)
def output_size(size, kernel, stride, padding):
    """Return the output length of one spatial axis (Keras rules: Same ceil(n/s), Valid floor((n-k)/s)+1).

    SameUpper (Akida 2.0) has the sizes of Same.
    """
    if Padding(padding) in (Padding.Same, Padding.SameUpper):
        return -(-size // stride)
    return (size - kernel) // stride + 1


@functools.lru_cache(maxsize=4096)
def padding_amounts(size, kernel, stride, padding):
    """Return (before, after) padding of one axis: Valid none, Same as Keras (extra after), SameUpper
    `floor((k - 1) / 2)` before and whatever the last window needs after (never negative)."""
    padding = Padding(padding)
    if padding == Padding.Valid:
        return 0, 0
    if padding == Padding.Same:
        return same_padding(size, kernel, stride)
    before = (kernel - 1) // 2
    needed = (output_size(size, kernel, stride, padding) - 1) * stride + kernel
    return before, max(needed - size - before, 0)


def _pad(inputs, kernel, strides, padding, value, dtype=None):
    """`inputs` with its border of `value` (in `dtype`, default the input's); the input itself when nothing
    is padded and no cast is asked. One allocation and one copy (np.pad's generic machinery costs more
    than the copy at batch 1)."""
    dtype = inputs.dtype if dtype is None else np.dtype(dtype)
    top = bottom = left = right = 0
    if padding is not Padding.Valid and Padding(padding) != Padding.Valid:
        (top, bottom) = padding_amounts(inputs.shape[1], kernel[0], strides[0], padding)
        (left, right) = padding_amounts(inputs.shape[2], kernel[1], strides[1], padding)
    if top == bottom == left == right == 0:
        return inputs.astype(dtype, copy=False)
    n, h, w, c = inputs.shape
    padded = np.empty((n, top + h + bottom, left + w + right, c), dtype)
    padded[:, :top] = value
    padded[:, top + h:] = value
    padded[:, top:top + h, :left] = value
    padded[:, top:top + h, left + w:] = value
    padded[:, top:top + h, left:left + w] = inputs
    return padded


def _windows(padded, kernel, strides, out_h, out_w):
    """Read-only view (n, oh, ow, kh, kw, c) of the strided kernel windows of `padded` (no copy)."""
    s_n, s_h, s_w, s_c = padded.strides
    return as_strided(padded, (padded.shape[0], out_h, out_w, kernel[0], kernel[1], padded.shape[3]),
                      (s_n, s_h * strides[0], s_w * strides[1], s_h, s_w, s_c), writeable=False)


TRANSPOSED_IM2COL_WIDTH = 16
"""Below this many contiguous values per window row (kw·c, e.g. an image input's 3×1 or 3×3), im2col copies
in the transposed layout (kh·kw·c rows of the output positions), whose inner loop runs along a whole output
row instead of a few values: 2–3× cheaper for a 28×28×1 input (buffered forwards); an 8-bit 128×128×3 input
convolution (3×3, stride 2, 32 filters) 0.32–0.35 -> 0.26–0.32 ms at batch 1, 16.8–17.5 -> 15.2–16.0 ms at
batch 64, its product reading the columns transposed (BLAS takes either layout)."""


def _im2col(padded, kernel, strides, out_h, out_w, dtype):
    """Columns (n·oh·ow, kh·kw·c) of the strided kernel windows, in `dtype`: one casting copy of a
    strided view (a window row of kw·c values is contiguous in `padded`); below TRANSPOSED_IM2COL_WIDTH values
    per window row, the transpose of a (kh·kw·c, n·oh·ow) copy (a Fortran-ordered view)."""
    n, c = padded.shape[0], padded.shape[3]
    kh, kw = kernel
    s_n, s_h, s_w, s_c = padded.strides
    if kw * c < TRANSPOSED_IM2COL_WIDTH:
        view = as_strided(padded, (kh, kw, c, n, out_h, out_w),
                          (s_h, s_w, s_c, s_n, s_h * strides[0], s_w * strides[1]), writeable=False)
        cols = np.empty(view.shape, dtype)
        np.copyto(cols, view, casting="unsafe")  # integers (or integer-valued floats) exact in `dtype`
        return cols.reshape(kh * kw * c, n * out_h * out_w).T
    rows = as_strided(padded, (n, out_h, out_w, kh, kw * c), (s_n, s_h * strides[0], s_w * strides[1], s_h, s_c),
                      writeable=False) if s_w == c * s_c else _windows(padded, kernel, strides, out_h, out_w)
    cols = np.empty(rows.shape, dtype)
    np.copyto(cols, rows, casting="unsafe")  # integers (or integer-valued floats) exact in `dtype`
    return cols.reshape(n * out_h * out_w, kh * kw * c)


def conv2d(inputs, weights, strides=(1, 1), padding=Padding.Same, padding_value=0):
    """Cross-correlate integer inputs with integer kernels (Keras Conv2D maths on integers).

    Args:
        inputs: (n, h, w, c) integer array.
        weights: (kh, kw, c, filters) integer array.
        strides: (sy, sx).
        padding: Padding.Same (Keras 'same', pad with `padding_value`) or Padding.Valid.
        padding_value: integer value of the padded border.

    Returns:
        (n, oh, ow, filters) exact integer potentials, stored in the float accumulator dtype.
    """
    kh, kw, wc, filters = weights.shape
    assert wc == inputs.shape[3], (wc, inputs.shape[3])
    dtype = accumulator_dtype(_max_abs(weights), max(_max_abs(inputs), abs(int(padding_value))),
                              kh * kw * wc)
    return conv2d_prepared(inputs, weights.reshape(kh * kw * wc, filters).astype(dtype), (kh, kw), strides,
                           padding, padding_value)


SPARSE_CHANNELS = 0.75
"""`live_channels` reports the live channels when at most this fraction of them holds a non-zero value. Chosen,
not tuned: the gathers cost about one pass over the input and the kept kernel rows, far less than the products
they remove below 3/4 (AkidaNet-like with silent channels: 20–35% less CPU time per sample, docs/akida_core.md)."""


def live_channels(inputs, limit=SPARSE_CHANNELS):
    """Indices of the input channels that hold a non-zero value somewhere in `inputs` (n, h, w, c), or None
    when more than `limit` (a fraction) of them do.

    Why: a channel that is zero everywhere adds nothing to any sum of a zero-padded convolution, so the
    kernel rows of the other channels give the same potentials with fewer products (Akida itself only
    processes events). Thresholds set per neuron leave whole channels silent often.
    """
    c = inputs.shape[-1]
    # a channel holds at most size / c non-zero values: more than limit·size of them need more than limit·c
    # channels. Counting them is 4-5x cheaper than the per-channel reduction on small inputs (14×14×32: 0.8
    # against 4.3 µs), and MNIST-style inputs at batch 1 are that dense.
    if inputs.size < BLOCKED_MAXIMA_VALUES and np.count_nonzero(inputs) > limit * inputs.size:
        return None
    flat = inputs.reshape(-1, c)
    # unsigned activations: the maximum is non-zero exactly where a value is (and costs less than any())
    peaks = _column_maxima(flat) if inputs.dtype.kind == "u" else flat.any(axis=0)
    if np.count_nonzero(peaks) > limit * c:
        return None
    return np.flatnonzero(peaks)


BLOCKED_MAXIMA_VALUES = 16384
"""`_column_maxima` of at least this many values reduces blocks of rows first: a reduction over the rows of a
narrow array runs one short inner loop per row (65,536 × 32 values: 870 µs), one over rows of ~4096 values runs
long ones (51 µs); below it the extra step costs more than it saves."""


def _column_maxima(flat):
    """np.maximum.reduce(flat, axis=0) of a (rows, c) array, by rows of about 4096 values first when large."""
    rows, c = flat.shape
    block = max(1, min(rows, 4096 // c))
    if flat.size < BLOCKED_MAXIMA_VALUES or block == 1:
        return np.maximum.reduce(flat, axis=0)
    whole = rows - rows % block
    peaks = np.maximum.reduce(np.maximum.reduce(flat[:whole].reshape(-1, block * c), axis=0).reshape(block, c),
                              axis=0)
    if whole < rows:
        np.maximum(peaks, np.maximum.reduce(flat[whole:], axis=0), out=peaks)
    return peaks


def conv2d_prepared(inputs, kernel_matrix, kernel_size, strides=(1, 1), padding=Padding.Same, padding_value=0,
                    bands=1, run=None):
    """`conv2d` with its kernel prepared once: the weights as a (kh·kw·c, filters) matrix of the float
    accumulator dtype.

    The caller proves that dtype exact for every input it passes (`accumulator_dtype` of a static bound:
    max|w| · largest possible input or padding value · kh·kw·c); `conv2d` is this function with the
    bound taken from the data. With `bands` > 1 (one sample only), the output rows are computed in that many
    bands, each an im2col of its rows and a product written in place, handed to `run` (a callable that
    calls every function of a list, possibly on several threads; default: one after the other). The bands
    are the same sums on disjoint outputs, so the result does not depend on them.

    Returns:
        (n, oh, ow, filters) exact integer potentials in the kernel's dtype.
    """
    n, h, w, c = inputs.shape
    kh, kw = kernel_size
    assert kernel_matrix.shape[0] == kh * kw * c, (kernel_matrix.shape, kernel_size, c)
    dtype = kernel_matrix.dtype
    out_h = output_size(h, kh, strides[0], padding)
    out_w = output_size(w, kw, strides[1], padding)
    padded = _pad(inputs, (kh, kw), strides, padding, padding_value)
    if kh == kw == 1:
        cols = np.ascontiguousarray(padded[:, ::strides[0], ::strides[1]][:, :out_h, :out_w], dtype)
        return (cols.reshape(n * out_h * out_w, c) @ kernel_matrix).reshape(n, out_h, out_w, -1)
    if n != 1 or bands <= 1 or out_h < 2:
        return (_im2col(padded, (kh, kw), strides, out_h, out_w, dtype) @ kernel_matrix).reshape(n, out_h, out_w, -1)
    out = np.empty((1, out_h, out_w, kernel_matrix.shape[1]), dtype)

    def band(top, bottom):
        rows = padded[:, top * strides[0]:(bottom - 1) * strides[0] + kh]
        cols = _im2col(rows, (kh, kw), strides, bottom - top, out_w, dtype)
        np.matmul(cols, kernel_matrix, out=out[0, top:bottom].reshape(-1, out.shape[3]))
    _run_bands(band, out_h, bands, run)
    return out


def _run_bands(band, rows, bands, run):
    """Call band(top, bottom) for `bands` consecutive row ranges covering [0, rows), through `run`."""
    count = min(bands, rows)
    edges = [rows * i // count for i in range(count + 1)]
    tasks = [lambda top=top, bottom=bottom: band(top, bottom) for top, bottom in zip(edges, edges[1:])]
    if run is None:
        for task in tasks:
            task()
    else:
        run(tasks)


def depthwise_conv2d(inputs, weights, strides=(1, 1), padding=Padding.Same):
    """Per-channel cross-correlation: weights (kh, kw, c) applied to channel c only.

    Returns:
        (n, oh, ow, c) exact integer potentials in the float accumulator dtype.
    """
    kh, kw, wc = weights.shape
    assert wc == inputs.shape[3], (wc, inputs.shape[3])
    dtype = accumulator_dtype(_max_abs(weights), _max_abs(inputs), kh * kw)
    return depthwise_conv2d_prepared(inputs, weights.astype(dtype), strides, padding)


def depthwise_conv2d_prepared(inputs, kernel, strides=(1, 1), padding=Padding.Same):
    """`depthwise_conv2d` with its (kh, kw, c) kernel already in a float accumulator dtype that the caller
    proved exact (static bound max|w| · largest input · kh·kw)."""
    n, h, w, c = inputs.shape
    kh, kw, wc = kernel.shape
    assert wc == c, (wc, c)
    out_h = output_size(h, kh, strides[0], padding)
    out_w = output_size(w, kw, strides[1], padding)
    padded = _pad(inputs, (kh, kw), strides, padding, 0, kernel.dtype)
    return _depthwise_sums(padded, kernel, strides, out_h, out_w)


def _depthwise_sums(padded, kernel, strides, out_h, out_w):
    """Σ_ij padded[n, y·sy + i, x·sx + j, c]·kernel[i, j, c] for the first out_h × out_w windows of a padded
    input contiguous along (w, c).

    One einsum over a strided view of the windows (no copy): every product and partial sum is an exact integer
    in the kernel's dtype, so einsum's summation order cannot change the result. At stride 1, neighbouring
    outputs are summed in groups (`grouped_windows`: 1.2–2× faster, the same sums).
    """
    if tuple(strides) == (1, 1):
        return grouped_windows(padded, kernel, 1, out_h, out_w)
    return np.einsum("nyxijc,ijc->nyxc", _windows(padded, kernel.shape[:2], strides, out_h, out_w), kernel)


GROUP_VALUES = 2048
"""Neighbouring output pixels are grouped so that einsum's inner loop runs over about this many values (g·c)
rather than c: 2-4x faster for 32-128 channels (measured), the same exact sums. Below 128 channels a group may
span more than 16 outputs (64x64x32: whole rows of 64 outputs, 206 -> 176 µs at batch 1, 776 -> 657 µs at
batch 4); beyond 2048 values it gained nothing."""


def output_group(ow, c):
    """How many neighbouring outputs of a row (dividing `ow`) `grouped_windows` sums together: as many as keep
    g·c within GROUP_VALUES."""
    largest = min(ow, max(GROUP_VALUES // c, 1))
    return max(g for g in range(1, largest + 1) if ow % g == 0)


def grouped_windows(columns, taps, row_stride, oh, ow):
    """Σ_ab columns[n, i·row_stride + a, j + b, c]·taps[a, b, c] -> (n, oh, ow, c), columns contiguous
    along (w, c).

    The windows of g neighbouring outputs at one tap are g·c contiguous values, so a view of
    (n, oh, ow/g, ka, kb, g·c) against the taps tiled g times gives the same products.
    """
    c = taps.shape[2]
    group = output_group(ow, c)
    s_n, s_h, s_w, s_c = columns.strides
    windows = as_strided(columns, (columns.shape[0], oh, ow // group, taps.shape[0], taps.shape[1], group * c),
                         (s_n, s_h * row_stride, s_w * group, s_h, s_w, s_c), writeable=False)
    tiled = np.tile(taps, (1, 1, group)) if group > 1 else taps
    return np.einsum("nyxijc,ijc->nyxc", windows, tiled).reshape(columns.shape[0], oh, ow, c)


def separable_conv2d(inputs, depthwise, pointwise, strides=(1, 1), padding=Padding.Same):
    """Depthwise then pointwise convolution, one exact potential (no rounding in between).

    Args:
        inputs: (n, h, w, c) integers.
        depthwise: (kh, kw, c) integers.
        pointwise: (c, filters) integers.

    Returns:
        (n, oh, ow, filters) exact integer potentials in the float accumulator dtype.
    """
    kh, kw, c = depthwise.shape
    partial = depthwise_conv2d(inputs, depthwise, strides, padding)
    dtype = accumulator_dtype(_max_abs(pointwise), _max_abs(partial), c)
    return pointwise_prepared(partial, pointwise.astype(dtype))


def pointwise_prepared(partial, matrix):
    """(n, h, w, c) exact partial sums @ a (c, filters) matrix in a float accumulator dtype the caller
    proved exact (static bound max|pw| · max|partial| · c)."""
    n, out_h, out_w, c = partial.shape
    flat = partial.reshape(n * out_h * out_w, c).astype(matrix.dtype, copy=False)
    return (flat @ matrix).reshape(n, out_h, out_w, -1)


def separable_conv2d_prepared(inputs, depthwise, pointwise, strides=(1, 1), padding=Padding.Same, bands=1,
                              run=None):
    """`depthwise_conv2d_prepared` then `pointwise_prepared` (kernels in float accumulator dtypes the caller
    proved exact). With `bands` > 1 (one sample only), output rows go in bands through `run`, as in
    `conv2d_prepared`.

    Returns:
        (n, oh, ow, filters) exact integer potentials in the pointwise matrix's dtype.
    """
    n, h, w, c = inputs.shape
    kh, kw, _ = depthwise.shape
    out_h = output_size(h, kh, strides[0], padding)
    if n != 1 or bands <= 1 or out_h < 2:
        return pointwise_prepared(depthwise_conv2d_prepared(inputs, depthwise, strides, padding), pointwise)
    out_w = output_size(w, kw, strides[1], padding)
    padded = _pad(inputs, (kh, kw), strides, padding, 0, depthwise.dtype)
    out = np.empty((1, out_h, out_w, pointwise.shape[1]), pointwise.dtype)

    def band(top, bottom):
        rows = padded[:, top * strides[0]:(bottom - 1) * strides[0] + kh]
        partial = _depthwise_sums(rows, depthwise, strides, bottom - top, out_w)
        np.matmul(partial.reshape((bottom - top) * out_w, c).astype(pointwise.dtype, copy=False), pointwise,
                  out=out[0, top:bottom].reshape(-1, out.shape[3]))
    _run_bands(band, out_h, bands, run)
    return out


def dense(inputs, weights):
    """Integer matrix product: (n, N) @ (N, units) -> (n, units) exact potentials (float accumulator)."""
    dtype = accumulator_dtype(_max_abs(weights), _max_abs(inputs), inputs.shape[1])
    return inputs.astype(dtype, copy=False) @ weights.astype(dtype)


def max_pool2d(potentials, pool_size, pool_stride, padding=Padding.Same):
    """Max pooling of potentials; Same padding ignores the border (as Keras does).

    Returns:
        (n, oh, ow, c) array of the input dtype (float potentials or integers).
    """
    n, h, w, c = potentials.shape
    ph, pw = pool_size
    out_h = output_size(h, ph, pool_stride[0], padding)
    out_w = output_size(w, pw, pool_stride[1], padding)
    if potentials.dtype.kind == "f":
        lowest = -np.inf
    else:
        lowest = np.iinfo(potentials.dtype).min
    padded = _pad(potentials, (ph, pw), pool_stride, padding, lowest)
    if padded is potentials and (ph, pw) == tuple(pool_stride) and (out_h * ph, out_w * pw) == (h, w) \
            and ph * pw > 1:
        return _tiled_max_pool(potentials, ph, pw)
    taps = [padded[:, i:i + out_h * pool_stride[0]:pool_stride[0], j:j + out_w * pool_stride[1]:pool_stride[1]]
            for i in range(ph) for j in range(pw)]
    if len(taps) == 1:
        return taps[0].copy()
    out = np.maximum(taps[0], taps[1])
    for tap in taps[2:]:
        np.maximum(out, tap, out=out)
    return out


def _tiled_max_pool(potentials, ph, pw):
    """max_pool2d of windows that tile the input exactly (stride = size, no padding): a reshaped view, the
    maximum over the window rows, then over its columns (fewer and larger ufunc calls than one per tap)."""
    n, h, w, c = potentials.shape
    tiles = potentials.reshape(n, h // ph, ph, w // pw, pw, c)
    rows = tiles[:, :, 0]
    for i in range(1, ph):
        rows = np.maximum(rows, tiles[:, :, i]) if i == 1 else np.maximum(rows, tiles[:, :, i], out=rows)
    out = rows[:, :, :, 0]
    for j in range(1, pw):
        out = np.maximum(out, rows[:, :, :, j]) if j == 1 else np.maximum(out, rows[:, :, :, j], out=out)
    return out


def saturate(values, bits):
    """Clip exact integer values to the signed `bits`-bit range [−2**(bits−1), 2**(bits−1) − 1].

    Returns:
        an array of the input dtype (integers or integer-valued floats), clipped.
    """
    return np.clip(values, -2 ** (bits - 1), 2 ** (bits - 1) - 1)
