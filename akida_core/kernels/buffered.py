"""Buffered kernels: the kernels of shared.py and v1.py for one fixed input shape, with every buffer, padded
border and strided view made once.

Why: at batch 1 the benchmark models' layers are small (an MNIST-style 3×3 convolution is 3.6 M MACs, about
75 µs of float32 BLAS), and the plain kernels spend about as long again allocating, padding and building
strided views on every call. A buffered kernel is a function of its input alone that writes into buffers it
owns: the padded input keeps its border from one call to the next, the im2col view over it is built once,
the product, pooling and activation write in place. The arithmetic is that of the plain kernels, in the
same dtypes, so the integers are the same (tests/akida_core/test_buffered.py compares them).

A buffered kernel returns its own buffer, which its next call overwrites: the caller consumes (or copies)
the result before calling it again, and one buffered kernel serves one thread at a time.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import v1
from .shared import FLOAT32_EXACT, TRANSPOSED_IM2COL_WIDTH, _windows, output_group, output_size, padding_amounts


def _padded_buffer(input_shape, kernel_size, strides, padding, value, dtype):
    """(buffer, interior view): the input shape with its border of `value`, made once (the border never
    changes; each call copies the input into the interior)."""
    n, h, w, c = input_shape
    top, bottom = padding_amounts(h, kernel_size[0], strides[0], padding)
    left, right = padding_amounts(w, kernel_size[1], strides[1], padding)
    padded = np.full((n, top + h + bottom, left + w + right, c), value, dtype)
    return padded, padded[:, top:top + h, left:left + w]


def conv2d(input_shape, kernel_matrix, kernel_size, strides, padding, padding_value=0, pool_size=None,
           input_bound=None):
    """`shared.conv2d_prepared` for inputs of `input_shape`: a function of the (n, h, w, c) integer inputs
    returning the (n, oh, ow, filters) exact potentials in the kernel matrix's dtype (its own buffer).

    With `pool_size` (ph, pw), windows that tile the potentials exactly (see `tiles_exactly`), the function
    returns their max pooling instead: the im2col rows are ordered window position first, so the pooling is
    one reduction over ph·pw contiguous blocks (3× cheaper than maxima of strided views). A 3×3 stride-1
    convolution (alone or with a 2×2 pooling) computes by Winograd's F(2×2, 3×3) instead when `input_bound` (the
    largest |input| or padding value) keeps its sums exact (`winograd_exact`): 2.25× fewer products.

    The caller proves the kernel's dtype exact for every input it passes, as for `conv2d_prepared`.
    """
    n, h, w, c = input_shape
    kh, kw = kernel_size
    assert kernel_matrix.shape[0] == kh * kw * c, (kernel_matrix.shape, kernel_size, c)
    dtype = kernel_matrix.dtype
    out_h = output_size(h, kh, strides[0], padding)
    out_w = output_size(w, kw, strides[1], padding)
    ph, pw = pool_size or (1, 1)
    assert out_h % ph == 0 and out_w % pw == 0, ((out_h, out_w), pool_size)
    if (ph, pw) in ((1, 1), (2, 2)) and (kh, kw) == (3, 3) and tuple(strides) == (1, 1) \
            and min(c, kernel_matrix.shape[1]) >= WINOGRAD_CHANNELS and input_bound is not None \
            and winograd_exact(kernel_matrix, c, input_bound):
        return _winograd(input_shape, kernel_matrix, padding, padding_value, out_h, out_w, pooled=ph == 2)
    padded, interior = _padded_buffer(input_shape, kernel_size, strides, padding, padding_value, dtype)
    s_n, s_h, s_w, s_c = padded.strides
    sy, sx = s_h * strides[0], s_w * strides[1]
    # output positions in the order (pool row, pool column, sample, pooled row, pooled column)
    positions = (ph, pw, n, out_h // ph, out_w // pw)
    position_strides = (sy, sx, s_n, sy * ph, sx * pw)
    count = n * out_h * out_w
    if kw * c < TRANSPOSED_IM2COL_WIDTH:
        # (kh, kw, c, positions): each row of the copy runs along output positions of one kernel tap
        view = as_strided(padded, (kh, kw, c, *positions), (s_h, s_w, s_c, *position_strides), writeable=False)
        cols = np.empty(view.shape, dtype)
        matrix = cols.reshape(kh * kw * c, count).T
    else:
        # (positions, kh, kw·c): a window row of kw·c values is contiguous in the padded buffer
        view = as_strided(padded, (*positions, kh, kw * c), (*position_strides, s_h, s_c), writeable=False)
        cols = np.empty(view.shape, dtype)
        matrix = cols.reshape(count, kh * kw * c)
    filters = kernel_matrix.shape[1]
    out = np.empty((count, filters), dtype)
    if pool_size is None:
        result = out.reshape(n, out_h, out_w, filters)
        blocks = pooled = None
    else:
        blocks = out.reshape(ph * pw, -1)
        result = np.empty((n, out_h // ph, out_w // pw, filters), dtype)
        pooled = result.reshape(-1)

    def run(inputs):
        np.copyto(interior, inputs, casting="unsafe")  # integers, exact in `dtype`
        np.copyto(cols, view)
        np.matmul(matrix, kernel_matrix, out=out)
        if blocks is not None:
            np.maximum.reduce(blocks, axis=0, out=pooled)
        return result
    return run


# Winograd F(2×2, 3×3) (Lavin & Gray 2016) with integer transforms: Bᵀ (inputs), 2G (weights: 4·G g Gᵀ is an
# integer kernel), Aᵀ (outputs, 4× the potentials).
_WINOGRAD_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
_WINOGRAD_2G = np.array([[2, 0, 0], [1, 1, 1], [1, -1, 1], [0, 0, 2]])
_WINOGRAD_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]])
WINOGRAD_CHANNELS = 32
"""Winograd needs at least this many input channels and filters: the transforms cost per tile about what the
products save per input channel and filter (batch 1, 3×3 convolutions: 14×14×32 -> 64 88 -> 58 µs pooled,
7×7×64 -> 64 45 -> 38 µs, 32×32×64 -> 64 832 -> 759 µs; 16×16×16 -> 32 34 µs either way)."""
WINOGRAD_GROWTH = 4 * 9 * 9
"""|transformed sums| <= WINOGRAD_GROWTH · c · max|x| · max|w|: an input transform adds 4 inputs, a weight
transform 9 weights (row sums of |2G| are at most 3), an output transform 9 products' sums (rows of Aᵀ⊗Aᵀ)."""


def winograd_exact(kernel_matrix, channels, input_bound):
    """Whether every partial sum of `conv2d`'s Winograd path stays an exact integer in the kernel's dtype: the
    bound WINOGRAD_GROWTH · channels · input_bound · max|w| below 2**24 (float32; float64 kernels never take it)."""
    if kernel_matrix.dtype != np.float32 or not kernel_matrix.size:
        return False
    largest = int(np.abs(kernel_matrix).max())
    return WINOGRAD_GROWTH * channels * int(input_bound) * largest < FLOAT32_EXACT


def _winograd(input_shape, kernel_matrix, padding, padding_value, out_h, out_w, pooled):
    """A 3×3 stride-1 correlation by Winograd F(2×2, 3×3), or (`pooled`) its 2×2 max pooling: the 2×2 outputs of
    a tile are one pooling window, so the pooling is the maximum over the 4 rows of the output transform. Every
    value is an integer below 2**24 (`winograd_exact`), so each step is exact."""
    n, h, w, c = input_shape
    filters = kernel_matrix.shape[1]
    ty, tx = -(-out_h // 2), -(-out_w // 2)
    tiles = n * ty * tx
    top, _ = padding_amounts(h, 3, 1, padding)
    left, _ = padding_amounts(w, 3, 1, padding)
    # the padded input, grown to whole tiles: values past the padding only reach outputs that are dropped
    padded = np.full((n, 2 * ty + 2, 2 * tx + 2, c), padding_value, np.float32)
    interior = padded[:, top:top + h, left:left + w]
    weights = kernel_matrix.reshape(3, 3, c, filters).astype(np.int64)
    transformed = np.einsum("ai,ijcf,bj->abcf", _WINOGRAD_2G, weights, _WINOGRAD_2G)  # 4·G g Gᵀ, integers
    u = np.ascontiguousarray(transformed.reshape(16, c, filters), np.float32)
    input_transform = np.kron(_WINOGRAD_BT, _WINOGRAD_BT).astype(np.float32)
    output_transform = np.kron(_WINOGRAD_AT, _WINOGRAD_AT).astype(np.float32)
    s_n, s_h, s_w, s_c = padded.strides
    # the 4×4 input tile of outputs (2y..2y+1, 2x..2x+1) starts at padded row 2y, column 2x
    view = as_strided(padded, (4, 4, n, ty, tx, c), (s_h, s_w, s_n, 2 * s_h, 2 * s_w, s_c), writeable=False)
    d = np.empty(view.shape, np.float32)
    v = np.empty((16, tiles * c), np.float32)
    m = np.empty((16, tiles, filters), np.float32)
    y = np.empty((4, tiles * filters), np.float32)
    quarter = np.float32(0.25)  # exact: the transformed sums are 4× the integer potentials
    if pooled:
        result = np.empty((n, ty, tx, filters), np.float32)
        flat = result.reshape(-1)
    else:
        # y's rows are the tile positions (a, b): put them back in place, cropped to the outputs
        whole = np.empty((n, ty, 2, tx, 2, filters), np.float32)
        placed = y.reshape(2, 2, n, ty, tx, filters).transpose(2, 3, 0, 4, 1, 5)
        result = whole.reshape(n, 2 * ty, 2 * tx, filters)[:, :out_h, :out_w]

    def run(inputs):
        np.copyto(interior, inputs, casting="unsafe")
        np.copyto(d, view)
        np.matmul(input_transform, d.reshape(16, -1), out=v)
        np.matmul(v.reshape(16, tiles, c), u, out=m)  # 16 products of (tiles, c) @ (c, filters)
        np.matmul(output_transform, m.reshape(16, -1), out=y)  # 4× the 4 potentials of each tile
        if pooled:
            np.maximum.reduce(y, axis=0, out=flat)
            np.multiply(flat, quarter, out=flat)
        else:
            np.multiply(placed, quarter, out=whole)
        return result
    return run


def tiles_exactly(shape, pool_size, pool_stride, padding):
    """Whether max pooling of (n, h, w, c) `shape` has windows that tile it exactly (stride = size, no border),
    the case `conv2d` can pool as it computes."""
    h, w = shape[1], shape[2]
    ph, pw = pool_size
    return (ph, pw) == tuple(pool_stride) and ph * pw > 1 and h % ph == 0 and w % pw == 0 \
        and padding_amounts(h, ph, ph, padding) == (0, 0) and padding_amounts(w, pw, pw, padding) == (0, 0)


def separable_conv2d(input_shape, depthwise, pointwise, strides, padding):
    """`shared.separable_conv2d_prepared` for inputs of `input_shape` (both kernels in one float dtype the
    caller proved exact): a function of the inputs returning the (n, oh, ow, filters) potentials (its own
    buffer)."""
    n, h, w, c = input_shape
    kh, kw, _ = depthwise.shape
    assert depthwise.dtype == pointwise.dtype, (depthwise.dtype, pointwise.dtype)
    out_h = output_size(h, kh, strides[0], padding)
    out_w = output_size(w, kw, strides[1], padding)
    padded, interior = _padded_buffer(input_shape, (kh, kw), strides, padding, 0, depthwise.dtype)
    partial = np.empty((n, out_h, out_w, c), depthwise.dtype)
    flat = partial.reshape(-1, c)
    if tuple(strides) == (1, 1):
        # g neighbouring outputs of a row read g·c contiguous values at each tap: einsum's inner loop runs over
        # g·c values against the taps tiled g times (shared.grouped_windows), 1.2–2× faster than over c
        g = output_group(out_w, c)
        s_n, s_h, s_w, s_c = padded.strides
        windows = as_strided(padded, (n, out_h, out_w // g, kh, kw, g * c), (s_n, s_h, s_w * g, s_h, s_w, s_c),
                             writeable=False)
        depthwise = np.tile(depthwise, (1, 1, g))
        sums = partial.reshape(n, out_h, out_w // g, g * c)
    else:
        windows = _windows(padded, (kh, kw), strides, out_h, out_w)
        sums = partial
    out = np.empty((n * out_h * out_w, pointwise.shape[1]), pointwise.dtype)
    result = out.reshape(n, out_h, out_w, -1)

    def run(inputs):
        np.copyto(interior, inputs, casting="unsafe")
        # every product and partial sum is an exact integer in the kernels' dtype: any order gives the same
        np.einsum("nyxijc,ijc->nyxc", windows, depthwise, out=sums)
        np.matmul(flat, pointwise, out=out)
        return result
    return run


TRANSPOSED_DENSE_SAMPLES = 16
"""Up to this many samples, `dense` keeps its matrix in Fortran order (units × inputs rows in memory): BLAS then
reads each unit's weights contiguously, 1.5–3× faster for a few samples (slower for many)."""


def dense(input_shape, matrix, bits):
    """FullyConnected potentials for inputs of `input_shape`: the flattened inputs @ `matrix` (a float dtype
    the caller proved exact), saturated to the signed `bits`-bit register (as `shared.saturate`)."""
    n = input_shape[0]
    if n <= TRANSPOSED_DENSE_SAMPLES:
        matrix = np.asfortranarray(matrix)
    flat = np.empty((n, matrix.shape[0]), matrix.dtype)
    out = np.empty((n, matrix.shape[1]), matrix.dtype)
    low, high = matrix.dtype.type(-2 ** (bits - 1)), matrix.dtype.type(2 ** (bits - 1) - 1)  # exact: bits < 24

    def run(inputs):
        np.copyto(flat, inputs.reshape(n, -1), casting="unsafe")
        np.matmul(flat, matrix, out=out)
        return np.clip(out, low, high, out=out)
    return run


def max_pool2d(input_shape, dtype, pool_size, pool_stride, padding):
    """`shared.max_pool2d` for potentials of `input_shape` and `dtype` (a float dtype): a function of the
    potentials returning the pooled maxima (its own buffer). Same padding ignores the border (-inf)."""
    n, h, w, c = input_shape
    ph, pw = pool_size
    out_h = output_size(h, ph, pool_stride[0], padding)
    out_w = output_size(w, pw, pool_stride[1], padding)
    out = np.empty((n, out_h, out_w, c), dtype)
    if tiles_exactly(input_shape, pool_size, pool_stride, padding):
        rows = np.empty((n, out_h, out_w, pw, c), dtype)

        def tiled(potentials):
            # the maximum over the window rows, then over its columns (as shared._tiled_max_pool)
            tiles = potentials.reshape(n, out_h, ph, out_w, pw, c)
            _maximum_of(tiles[:, :, 0], [tiles[:, :, i] for i in range(1, ph)], rows)
            return _maximum_of(rows[:, :, :, 0], [rows[:, :, :, j] for j in range(1, pw)], out)
        return tiled
    padded, interior = _padded_buffer(input_shape, pool_size, pool_stride, padding, -np.inf, dtype)
    taps = [padded[:, i:i + out_h * pool_stride[0]:pool_stride[0], j:j + out_w * pool_stride[1]:pool_stride[1]]
            for i in range(ph) for j in range(pw)]

    def general(potentials):
        np.copyto(interior, potentials)
        return _maximum_of(taps[0], taps[1:], out)
    return general


def _maximum_of(first, others, out):
    """The elementwise maximum of `first` and the `others` (same shapes), written into `out`."""
    if not others:
        np.copyto(out, first)
        return out
    np.maximum(first, others[0], out=out)
    for other in others[1:]:
        np.maximum(out, other, out=out)
    return out


def activate(input_shape, threshold, step, act_bits):
    """`v1.activate` for potentials of `input_shape`: clip(ceil((p − T) / s), 0, 2**b − 1) as uint8, computed
    in `step`'s dtype (which `v1.activation_step` chose exact); returns its own uint8 buffer. Same operations on
    the same values as `v1.activate`, over whole output rows (`v1.row_view`)."""
    q = np.empty(input_shape, step.dtype)
    out = np.empty(input_shape, np.uint8)
    (rows_q, rows_out), row_threshold, row_step = v1.row_view((q, out), threshold, step)
    # bounds of q's own type: Python ints would take numpy's slower mixed-type path (2× the clip's time)
    bottom, top = step.dtype.type(0), step.dtype.type(2 ** act_bits - 1)

    def run(potentials):
        if potentials.flags.c_contiguous:  # else (a cropped view) per channel, without a copy
            np.subtract(potentials.reshape(rows_q.shape), row_threshold, out=rows_q, dtype=step.dtype)
            np.divide(rows_q, row_step, out=rows_q)
        else:
            np.subtract(potentials, threshold, out=q, dtype=step.dtype)
            np.divide(q, step, out=q)
        np.ceil(q, out=q)
        q.clip(bottom, top, out=out, casting="unsafe")
        return out
    return run


def to_int32(input_shape):
    """`v1.to_int32` for potentials of `input_shape`: the exact integer potentials as int32 (own buffer)."""
    out = np.empty(input_shape, np.int32)

    def run(potentials):
        np.copyto(out, potentials, casting="unsafe")  # integers within int32 (the model bounds them)
        return out
    return run
