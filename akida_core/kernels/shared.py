"""Integer kernels shared by both generations: padding, convolution, pooling, dense, saturation.

Plain numpy functions, exact by construction. Every function takes integer arrays and explicit
parameters and returns an integer array. The convolutions and matrix products run on float32 (or
float64) copies of the integers because numpy has no integer BLAS; this is exact as long as every
partial sum is an integer of magnitude < 2**24 (float32) or < 2**53 (float64), whatever the
summation order. `accumulator_dtype` picks the narrowest exact type
from the static bound max|w| * max|x| * fan_in, and refuses anything beyond float64's exact range.

The readable loop references these are tested against live in tests/akida_core/reference.py.
"""
import numpy as np

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


def output_size(size, kernel, stride, padding):
    """Return the output length of one spatial axis (Keras rules: Same ceil(n/s), Valid floor((n-k)/s)+1).

    SameUpper (Akida 2.0) has the sizes of Same.
    """
    if Padding(padding) in (Padding.Same, Padding.SameUpper):
        return -(-size // stride)
    return (size - kernel) // stride + 1


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
    if Padding(padding) != Padding.Valid:
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


def _im2col(padded, kernel, strides, out_h, out_w, dtype):
    """Columns (n·oh·ow, kh·kw·c) of the strided kernel windows, in `dtype`, one copy per kernel tap."""
    n, c = padded.shape[0], padded.shape[3]
    kh, kw = kernel
    cols = np.empty((n, out_h, out_w, kh, kw, c), dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = padded[:, i:i + out_h * strides[0]:strides[0],
                                            j:j + out_w * strides[1]:strides[1]]
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


def conv2d_prepared(inputs, kernel_matrix, kernel_size, strides=(1, 1), padding=Padding.Same, padding_value=0):
    """`conv2d` with its kernel prepared once: the weights as a (kh·kw·c, filters) matrix of the float
    accumulator dtype.

    The caller proves that dtype exact for every input it passes (`accumulator_dtype` of a static bound:
    max|w| · largest possible input or padding value · kh·kw·c); `conv2d` is this function with the
    bound taken from the data.

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
        cols = cols.reshape(-1, c)
    else:
        cols = _im2col(padded, (kh, kw), strides, out_h, out_w, dtype)
    return (cols @ kernel_matrix).reshape(n, out_h, out_w, -1)


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
    out = np.zeros((n, out_h, out_w, c), kernel.dtype)
    tap = np.empty_like(out)
    # A loop over the kh·kw kernel taps only; each step is vectorised over samples and pixels.
    for i in range(kh):
        for j in range(kw):
            np.multiply(padded[:, i:i + out_h * strides[0]:strides[0],
                               j:j + out_w * strides[1]:strides[1]], kernel[i, j], out=tap)
            out += tap
    return out


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
    flat = partial.reshape(-1, c).astype(matrix.dtype, copy=False)
    return (flat @ matrix).reshape(n, out_h, out_w, -1)


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
    if np.issubdtype(potentials.dtype, np.floating):
        lowest = -np.inf
    else:
        lowest = np.iinfo(potentials.dtype).min
    padded = _pad(potentials, (ph, pw), pool_stride, padding, lowest)
    out = np.full((n, out_h, out_w, c), lowest, potentials.dtype)
    for i in range(ph):
        for j in range(pw):
            np.maximum(out, padded[:, i:i + out_h * pool_stride[0]:pool_stride[0],
                                   j:j + out_w * pool_stride[1]:pool_stride[1]], out=out)
    return out


def saturate(values, bits):
    """Clip exact integer values to the signed `bits`-bit range [−2**(bits−1), 2**(bits−1) − 1].

    Returns:
        an array of the input dtype (integers or integer-valued floats), clipped.
    """
    return np.clip(values, -2 ** (bits - 1), 2 ** (bits - 1) - 1)


def global_sum_pool(potentials, bits):
    """Akida 1.0 global 'average' pooling: a saturating SUM of the potentials over H·W.

    The chip accumulates in a `bits`-bit signed register, pixel by pixel in row-major order
    (y, then x), clipping after every addition: acc = clip(acc + p[y, x]). No division.
    The result depends on the order only where a running sum touches a bound, so the exact
    plain sum is kept for every (sample, channel) whose prefix sums all stay inside the range,
    and the sequential clip runs, vectorised over the others, from the first pixel where any
    of them leaves it.

    Args:
        potentials: (n, h, w, c) exact integer potentials (any dtype; |p| < 2**31).
        bits: width of the accumulator register (20 on Akida 1.0).

    Returns:
        (n, 1, 1, c) int64 pooled potentials in [−2**(bits−1), 2**(bits−1) − 1].
    """
    n, h, w, c = potentials.shape
    low, high = -2 ** (bits - 1), 2 ** (bits - 1) - 1
    # int64: h·w < 2**21 (the model caps sizes) terms of |p| < 2**31 cannot overflow.
    flat = potentials.reshape(n, h * w, c).astype(np.int64)
    prefix = np.cumsum(flat, axis=1)
    out = prefix[:, -1, :].copy()
    outside = (prefix < low) | (prefix > high)
    touched = outside.any(axis=1)
    if touched.any():
        rows, cols = np.nonzero(touched)
        start = int(np.argmax(outside[rows, :, cols], axis=1).min())
        acc = prefix[rows, start - 1, cols] if start else np.zeros(rows.size, np.int64)
        terms = np.ascontiguousarray(flat[rows, start:, cols].T)  # one contiguous row per pixel
        for term in terms:  # clip(acc + term) = min(max(acc + term, low), high), without np.clip's wrapper
            np.add(acc, term, out=acc)
            np.maximum(acc, low, out=acc)
            np.minimum(acc, high, out=acc)
        out[rows, cols] = acc
    return out.reshape(n, 1, 1, c)
