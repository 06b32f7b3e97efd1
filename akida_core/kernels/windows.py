"""Exact depthwise sums over strided windows of a padded input, as einsum over views (no im2col copy).

Used by the Akida 2.0 depthwise convolution (kernels/v2.py). Every product and partial sum is an
exact integer in the float dtype (the caller proves it with a static bound), so the summation order,
the grouping of outputs (shared.grouped_windows) and the split by column phase below cannot change the
result.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from .shared import grouped_windows, padding_amounts

PHASE_CHANNELS = 128
"""Strided depthwise sums split the columns by phase (one padded copy either way) up to this many channels:
then the outputs of a phase can be grouped (1.4-1.7x faster at 64 channels); at 256 channels the plain
strided view was faster (measured)."""


def depthwise_windows(padded, kernel, stride, oh, ow):
    """out[n, i, j, c] = Σ_ab padded[n, i·s + a, j·s + b, c]·kernel[a, b, c] for the first oh x ow windows
    of a C-contiguous padded input (n, h, w, c) and a float kernel (k, k, c); stride 1 groups outputs."""
    if stride == 1:
        return grouped_windows(padded, kernel, 1, oh, ow)
    k, c = kernel.shape[0], kernel.shape[2]
    s_n, s_h, s_w, s_c = padded.strides
    windows = as_strided(padded, (padded.shape[0], oh, ow, k, k, c), (s_n, s_h * stride, s_w * stride, s_h, s_w, s_c),
                         writeable=False)
    return np.einsum("nyxijc,ijc->nyxc", windows, kernel)


def phase_padded(x, kernel_size, stride, padding, dtype):
    """x zero-padded per `padding`, in `dtype`, with its columns split by phase: (n, h', s, ⌈w'/s⌉, c) where
    [:, :, p, u] is padded column u·s + p. One copy, as the plain padding; only the border is zeroed (a zeroed
    allocation costs a fresh page per 4 KiB written: 20% of this function at 8x64x64x64)."""
    n, h, w, c = x.shape
    top, bottom = padding_amounts(h, kernel_size, stride, padding)
    left, right = padding_amounts(w, kernel_size, stride, padding)
    out = np.empty((n, top + h + bottom, stride, -(-(left + w + right) // stride), c), dtype)
    out[:, :top] = 0
    out[:, top + h:] = 0
    for phase in range(stride):
        first = (phase - left) % stride  # the first input column landing in this phase
        columns = x[:, :, first::stride]
        start = (left + first) // stride
        rows = out[:, top:top + h, phase]
        rows[:, :, :start] = 0
        rows[:, :, start + columns.shape[2]:] = 0
        rows[:, :, start:start + columns.shape[2]] = columns
    return out


def strided_depthwise(x, kernel, stride, padding, oh, ow):
    """The zero-padded depthwise sums of a strided convolution from the phase-split input: the taps of each
    column phase read contiguous columns, so their outputs are grouped as in `grouped_windows`."""
    phases = phase_padded(x, kernel.shape[0], stride, padding, kernel.dtype)
    out = None
    for phase in range(min(stride, kernel.shape[1])):
        part = grouped_windows(phases[:, :, phase], kernel[:, phase::stride], stride, oh, ow)
        out = part if out is None else np.add(out, part, out=out)
    return out
